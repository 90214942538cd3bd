package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vishvananda/netns"

	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/ring"
)

// These tests run real `hearsay node` processes with XDP or UDP heartbeats.
// They need root (XDP, network namespaces) and skip without it.

// requireHeartbeatRoot skips tests that attach XDP or create namespaces.
func requireHeartbeatRoot(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t, "attaches XDP (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN) and creates network namespaces")
	testenv.SkipShort(t, "starts node processes with XDP heartbeats")
	testenv.RequireBinary(t, "ip", "bpftool")
}

// startNodeArgs starts `hearsay node` with extra flags, optionally inside
// network namespace ns (through `ip netns exec`, which execs the node, so
// the PID is the node's), and waits until it answers PING. ip is the
// address the test reaches it on.
func startNodeArgs(t *testing.T, ns, ip string, port int, dir string, args ...string) *proc {
	t.Helper()
	argv := append([]string{binary, "node", "--bind", ip, "--port", strconv.Itoa(port), "--dir", dir, "--log-level", "info"}, args...)
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	p := spawnNode(t, port, dir, argv)
	logPath := p.log
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	p.rc = redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DialTimeout: time.Second,
		ReadTimeout: 5 * time.Second, MaxRetries: -1, Dialer: nsDialer(t, ns)})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if r, err := p.rc.Ping(context.Background()).Result(); err == nil && r == "PONG" {
			return p
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("node on %s did not start:\n%s", addr, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nsDialer dials TCP from inside the named network namespace (the root
// one when ns is empty). A socket stays in the namespace it was made in,
// so the connection is usable from any goroutine afterwards.
func nsDialer(t *testing.T, ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if ns == "" {
		return d.DialContext
	}
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("open netns %s: %v", ns, err)
	}
	t.Cleanup(func() { h.Close() })
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			runtime.LockOSThread()
			orig, err := netns.Get()
			if err != nil {
				ch <- res{nil, err}
				return
			}
			defer orig.Close()
			if err := netns.Set(h); err != nil {
				ch <- res{nil, err}
				return
			}
			c, err := d.DialContext(ctx, network, addr)
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread() // else the thread dies with the goroutine
			}
			ch <- res{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// hbInfo returns p's INFO heartbeat fields.
func hbInfo(t *testing.T, p *proc) map[string]string {
	t.Helper()
	s, err := p.rc.Info(context.Background(), "heartbeat").Result()
	if err != nil {
		t.Fatalf("INFO heartbeat on %d: %v", p.port, err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = v
		}
	}
	if m["heartbeat_mode"] == "" {
		t.Fatalf("INFO heartbeat on %d has no heartbeat_mode:\n%s", p.port, s)
	}
	return m
}

func hbCount(t *testing.T, p *proc, field string) uint64 {
	t.Helper()
	m := hbInfo(t, p)
	v, err := strconv.ParseUint(m[field], 10, 64)
	if err != nil {
		t.Fatalf("INFO heartbeat on %d: %s = %q", p.port, field, m[field])
	}
	return v
}

// waitFor polls cond every 10ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v: %s", what, timeout, detail)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flagsOf returns the flags of node id in p's CLUSTER NODES.
func flagsOf(t *testing.T, p *proc, id string) string {
	t.Helper()
	nodes, err := p.rc.ClusterNodes(context.Background()).Result()
	if err != nil {
		t.Fatalf("CLUSTER NODES on %d: %v", p.port, err)
	}
	for _, l := range strings.Split(nodes, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == id {
			return f[2]
		}
	}
	return "(unknown)"
}

func failing(flags string) bool {
	for _, f := range strings.Split(flags, ",") {
		if f == "fail?" || f == "fail" {
			return true
		}
	}
	return false
}

// xdpOnDev reports the XDP program IDs attached to dev (in the test's
// namespace), from bpftool.
func xdpOnDev(t *testing.T, dev string) []int {
	t.Helper()
	out, err := exec.Command("bpftool", "-j", "net", "show", "dev", dev).Output()
	if err != nil {
		t.Fatalf("bpftool net show dev %s: %v", dev, err)
	}
	var v []struct {
		XDP []struct {
			ID int `json:"id"`
		} `json:"xdp"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("bpftool output %q: %v", out, err)
	}
	var ids []int
	for _, e := range v {
		for _, x := range e.XDP {
			ids = append(ids, x.ID)
		}
	}
	return ids
}

// pinnedOwners counts the entries of a pinned hb_owners map: one per live
// node sharing the interface.
func pinnedOwners(t *testing.T, pinDir string, ps []*proc) int {
	t.Helper()
	pids, err := ownerPIDs(pinDir)
	if err != nil {
		t.Fatal(err)
	}
	// Count only this test's nodes: other packages' process tests may run
	// nodes on lo at the same time, and they share the program by design.
	n := 0
	for _, pid := range pids {
		for _, p := range ps {
			if p.cmd.Process != nil && p.cmd.Process.Pid == pid {
				n++
			}
		}
	}
	return n
}

// ownerPIDs lists the PIDs in a pinned hb_owners map, one per entry.
func ownerPIDs(pinDir string) ([]int, error) {
	out, err := exec.Command("bpftool", "-j", "map", "dump", "pinned", filepath.Join(pinDir, "hb_owners")).Output()
	if err != nil {
		return nil, fmt.Errorf("bpftool map dump %s/hb_owners: %v", pinDir, err)
	}
	var v []struct {
		Formatted struct {
			Value struct {
				PID int `json:"pid"`
			} `json:"value"`
		} `json:"formatted"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, fmt.Errorf("bpftool output %q: %v", out, err)
	}
	pids := make([]int, len(v))
	for i, e := range v {
		pids[i] = e.Formatted.Value.PID
	}
	return pids, nil
}

// TestHeartbeatXDPSixNodesOnLo runs six nodes on lo with --heartbeat xdp:
// they share one attached program (one XDP program on lo, one pin dir,
// six owners), every node hears the other five through it, stopping nodes
// one by one leaves the others' heartbeats working, and the last one to
// stop detaches the program and removes the pins.
func TestHeartbeatXDPSixNodesOnLo(t *testing.T) {
	requireHeartbeatRoot(t)
	if os.Getenv("HEARSAY_LO_CHILD") != "1" {
		runInOwnNetns(t, "TestHeartbeatXDPSixNodesOnLo")
		return
	}
	// Here the test has a network namespace to itself (its own lo) and,
	// through ip netns exec, a mount namespace whose /sys has no bpffs:
	// the first node mounts one, which the others share.
	const pinDir = "/sys/fs/bpf/hearsay/lo"
	if ids := xdpOnDev(t, "lo"); len(ids) != 0 {
		t.Fatalf("the fresh namespace's lo already carries XDP programs %v", ids)
	}
	ps := make([]*proc, 6)
	for i := range ps {
		ps[i] = startNodeArgs(t, "", "127.0.0.1", freePort(t), t.TempDir(),
			"--heartbeat", "xdp", "--node-timeout", "1s")
	}
	// One program on lo, shared: one pin dir with six owners.
	ids := xdpOnDev(t, "lo")
	if len(ids) != 1 {
		t.Fatalf("lo carries XDP programs %v, want exactly one", ids)
	}
	if n := pinnedOwners(t, pinDir, ps); n != 6 {
		t.Fatalf("%s/hb_owners has %d entries, want 6", pinDir, n)
	}
	for _, p := range ps {
		if m := hbInfo(t, p); m["heartbeat_mode"] != "xdp" || m["heartbeat_xdp_iface"] != "lo" || m["heartbeat_xdp_attach"] != "generic" {
			t.Fatalf("node %d: heartbeat %v, want xdp on lo in generic mode", p.port, m)
		}
	}
	createCluster(t, ps)
	waitAgree(t, ps, 20*time.Second)

	// Every node pings the five others and hears all of them.
	live := ps
	checkLive := func(stage string) {
		t.Helper()
		for _, p := range live {
			waitFor(t, 10*time.Second, fmt.Sprintf("%s: node %d hears its %d live peers", stage, p.port, len(live)-1), func() (bool, string) {
				m := hbInfo(t, p)
				return m["heartbeat_peers"] == "5" && m["heartbeat_peers_answering"] == strconv.Itoa(len(live)-1), fmt.Sprint(m)
			})
		}
		// Each live node keeps sending, and the shared program keeps
		// answering in the kernel.
		sent0 := map[*proc]uint64{}
		for _, p := range live {
			sent0[p] = hbCount(t, p, "heartbeat_pings_sent")
		}
		kernel0 := hbCount(t, live[0], "heartbeat_pings_answered_kernel")
		time.Sleep(500 * time.Millisecond)
		for _, p := range live {
			if s := hbCount(t, p, "heartbeat_pings_sent"); s <= sent0[p] {
				t.Fatalf("%s: node %d sent no PINGs in 500ms (%d)", stage, p.port, s)
			}
		}
		if len(live) > 1 {
			if k := hbCount(t, live[0], "heartbeat_pings_answered_kernel"); k <= kernel0 {
				t.Fatalf("%s: the kernel answered no PINGs in 500ms (%d)", stage, k)
			}
			if u := hbCount(t, live[0], "heartbeat_pings_answered_user"); u != 0 {
				t.Fatalf("%s: %d PINGs were answered in userspace on lo", stage, u)
			}
		}
		if got := xdpOnDev(t, "lo"); len(got) != 1 || got[0] != ids[0] {
			t.Fatalf("%s: lo carries XDP programs %v, want still %v", stage, got, ids)
		}
		if n := pinnedOwners(t, pinDir, live); n != len(live) {
			t.Fatalf("%s: %s/hb_owners has %d entries, want %d", stage, pinDir, n, len(live))
		}
	}
	checkLive("all six up")
	for len(live) > 1 {
		stopped := live[len(live)-1]
		stopped.stop(t)
		live = live[:len(live)-1]
		checkLive(fmt.Sprintf("after stopping %d", stopped.port))
	}
	live[0].stop(t)
	if got := xdpOnDev(t, "lo"); len(got) != 0 {
		t.Fatalf("after the last node stopped, lo still carries XDP programs %v", got)
	}
	if ents, err := os.ReadDir(pinDir); err == nil && len(ents) > 0 {
		t.Fatalf("after the last node stopped, %s still holds %d pins", pinDir, len(ents))
	}
}

// runInOwnNetns runs test again in a child test process inside a new
// network namespace (with lo up), so that no other test's nodes share its
// lo and it never needs to skip for them; it fails if the child fails or
// skips.
func runInOwnNetns(t *testing.T, test string) {
	t.Helper()
	ns := fmt.Sprintf("hs-lo-%d", os.Getpid()%100000)
	_ = exec.Command("ip", "netns", "del", ns).Run() // left over from a killed run
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v\n%s", ns, err, out)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "HEARSAY_LO_CHILD=1", "HEARSAY_TEST_BINARY="+binary)
	out, err := cmd.CombinedOutput()
	t.Logf("%s in netns %s:\n%s", test, ns, out)
	if err != nil {
		t.Fatalf("%s in its own netns: %v", test, err)
	}
	if strings.Contains(string(out), "--- SKIP") || !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("%s in its own netns did not pass", test)
	}
}

// netnsPair creates two named network namespaces joined by a veth pair,
// 10.201.0.1 and 10.201.0.2, and removes them (and the veth) at the end.
func netnsPair(t *testing.T) (nsA, nsB, ipA, ipB string) {
	t.Helper()
	suffix := strconv.Itoa(os.Getpid() % 100000)
	nsA, nsB = "hs-hb-a-"+suffix, "hs-hb-b-"+suffix
	ipA, ipB = "10.201.0.1", "10.201.0.2"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{nsA, nsB} {
		_ = exec.Command("ip", "netns", "del", ns).Run() // left over from a killed run
		run("netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		run("-n", ns, "link", "set", "lo", "up")
	}
	run("-n", nsA, "link", "add", "hbva", "type", "veth", "peer", "name", "hbvb", "netns", nsB)
	run("-n", nsA, "addr", "add", ipA+"/24", "dev", "hbva")
	run("-n", nsB, "addr", "add", ipB+"/24", "dev", "hbvb")
	run("-n", nsA, "link", "set", "hbva", "up")
	run("-n", nsB, "link", "set", "hbvb", "up")
	return nsA, nsB, ipA, ipB
}

// TestHeartbeatNetnsPFail runs two nodes in two network namespaces joined
// by a veth pair, each a master with half the slots, with node-timeout
// 300ms. Under xdp the counters show PINGs answered by the kernel with no
// userspace reply; a SIGSTOPped node is marked PFAIL by the other
// although its kernel keeps answering (the progress counter stopped), and
// recovers on SIGCONT. Under udp the stopped node stops answering
// entirely, and PFAIL and recovery happen the same way.
func TestHeartbeatNetnsPFail(t *testing.T) {
	requireHeartbeatRoot(t)
	for _, mode := range []string{"xdp", "udp"} {
		t.Run(mode, func(t *testing.T) { testNetnsPFail(t, mode) })
	}
}

func testNetnsPFail(t *testing.T, mode string) {
	const nodeTimeout = 300 * time.Millisecond
	nsA, nsB, ipA, ipB := netnsPair(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("netns-test-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--heartbeat", mode, "--node-timeout", nodeTimeout.String(), "--cluster-secret-file", secret}
	const port = 7000 // each node has its namespace to itself
	a := startNodeArgs(t, nsA, ipA, port, t.TempDir(), args...)
	b := startNodeArgs(t, nsB, ipB, port, t.TempDir(), args...)
	ctx := context.Background()
	half := ring.Slots / 2
	do(t, a, "CLUSTER", "ADDSLOTSRANGE", 0, half-1)
	do(t, b, "CLUSTER", "ADDSLOTSRANGE", half, ring.Slots-1)
	do(t, a, "CLUSTER", "MEET", ipB, port)
	for _, p := range []*proc{a, b} {
		waitFor(t, 15*time.Second, fmt.Sprintf("node %d: cluster ok with 2 nodes", p.port), func() (bool, string) {
			info, _ := p.rc.ClusterInfo(ctx).Result()
			return strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:2\r\n"), info
		})
	}
	idB := do(t, b, "CLUSTER", "MYID").(string)
	for _, p := range []*proc{a, b} {
		m := hbInfo(t, p)
		if m["heartbeat_mode"] != mode {
			t.Fatalf("node in %v: heartbeat mode %q, want %q", p.cmd.Args[3], m["heartbeat_mode"], mode)
		}
		waitFor(t, 10*time.Second, "heartbeats answered", func() (bool, string) {
			m := hbInfo(t, p)
			return m["heartbeat_peers"] == "1" && m["heartbeat_peers_answering"] == "1", fmt.Sprint(m)
		})
	}

	// Who answers: the kernel under xdp, the socket under udp.
	answered, other := "heartbeat_pings_answered_kernel", "heartbeat_pings_answered_user"
	pongs := "heartbeat_pongs_received_kernel"
	if mode == "udp" {
		answered, other = other, answered
		pongs = "heartbeat_pongs_received_user"
	}
	before := map[*proc][2]uint64{}
	for _, p := range []*proc{a, b} {
		before[p] = [2]uint64{hbCount(t, p, answered), hbCount(t, p, other)}
	}
	time.Sleep(time.Second)
	for _, p := range []*proc{a, b} {
		got, rest := hbCount(t, p, answered), hbCount(t, p, other)
		t.Logf("%s: %s %d -> %d in 1s, %s %d -> %d", p.cmd.Args[3], answered, before[p][0], got, other, before[p][1], rest)
		if got < before[p][0]+5 {
			t.Fatalf("%s: %s grew by %d in 1s, want at least 5", p.cmd.Args[3], answered, got-before[p][0])
		}
		if rest != before[p][1] || (mode == "xdp" && rest != 0) {
			t.Fatalf("%s: %s moved from %d to %d; the other path must not answer", p.cmd.Args[3], other, before[p][1], rest)
		}
		m := hbInfo(t, p)
		if m["heartbeat_bad_mac"] != "0" {
			t.Fatalf("%s: bad MACs with a shared secret: %v", p.cmd.Args[3], m)
		}
	}

	// Hang B. A must see it PFAIL within node-timeout and a little slack
	// (it was alive up to the stop; detection runs on 20ms ticks), even
	// though under xdp B's kernel keeps answering.
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	took := waitFor(t, nodeTimeout+time.Second, "A marks stopped B as PFAIL", func() (bool, string) {
		f := flagsOf(t, a, idB)
		return failing(f), f
	})
	t.Logf("%s: PFAIL seen %v after SIGSTOP (node-timeout %v)", mode, took, nodeTimeout)
	p0 := hbCount(t, a, pongs)
	time.Sleep(500 * time.Millisecond)
	p1 := hbCount(t, a, pongs)
	m := hbInfo(t, a)
	if mode == "xdp" {
		// B's kernel still answers: A keeps receiving PONGs (with a
		// progress counter that no longer moves).
		if p1 <= p0 {
			t.Fatalf("xdp: A received no PONGs from stopped B in 500ms (%d -> %d)", p0, p1)
		}
		if m["heartbeat_peers_answering"] != "1" {
			t.Fatalf("xdp: stopped B's kernel should still answer: %v", m)
		}
		t.Logf("xdp: B stopped, its kernel answered %d PINGs in 500ms, yet A flags it %s", p1-p0, flagsOf(t, a, idB))
	} else {
		if p1 != p0 {
			t.Fatalf("udp: A received PONGs from stopped B (%d -> %d)", p0, p1)
		}
		if m["heartbeat_peers_answering"] != "0" {
			t.Fatalf("udp: stopped B still counted as answering: %v", m)
		}
	}
	if f := flagsOf(t, a, idB); !failing(f) {
		t.Fatalf("A cleared B's PFAIL while B was stopped: %s", f)
	}
	t.Logf("%s: B stopped for %v", mode, time.Since(stopped).Round(time.Millisecond))

	// Resume B: A clears the flag.
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, 10*time.Second, "A clears B's PFAIL after SIGCONT", func() (bool, string) {
		f := flagsOf(t, a, idB)
		return !failing(f), f
	})
	t.Logf("%s: B recovered %v after SIGCONT", mode, took)
	a.stop(t)
	b.stop(t)
}
