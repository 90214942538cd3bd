package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/testenv"
)

// xdpCaps are the capabilities deploy/hearsay.service grants: measured on
// kernel 6.x with setpriv, CAP_BPF alone fails the map and program
// loads, without CAP_PERFMON the verifier rejects the program's pointer
// comparisons, and CAP_NET_ADMIN attaches it. No RLIMIT_MEMLOCK raise is
// needed (BPF memory is charged to the cgroup since 5.11).
const xdpCaps = "+bpf,+perfmon,+net_admin"

// nobody is the unprivileged uid and gid the nodes run as.
const nobody = "65534"

// unprivDirs prepares, as root, what the systemd unit prepares: a bpffs pin
// directory and a lock directory owned by the service user, and a state
// directory it can write. It runs in the mount namespace of a child test
// (ip netns exec gives it one), so the mounts go away with it.
func unprivDirs(t *testing.T) (stateRoot string) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/bpf", &st); err != nil || st.Type != 0xcafe4a11 {
		if err := syscall.Mount("bpf", "/sys/fs/bpf", "bpf", 0, ""); err != nil {
			t.Fatalf("mount bpffs: %v", err)
		}
	}
	uid, _ := strconv.Atoi(nobody)
	for _, d := range []string{"/sys/fs/bpf/hearsay", "/run/hearsay"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A private /run/hearsay: the host's stays root's.
	if err := syscall.Mount("tmpfs", "/run/hearsay", "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on /run/hearsay: %v", err)
	}
	for _, d := range []string{"/sys/fs/bpf/hearsay", "/run/hearsay"} {
		if err := os.Chown(d, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.MkdirTemp("", "hearsay-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// startUnprivNode starts `hearsay node` through setpriv as nobody with only
// caps (a setpriv capability list; "" for none) and waits for PING.
func startUnprivNode(t *testing.T, stateRoot, caps string, extra ...string) *proc {
	t.Helper()
	port := freePort(t)
	dir := filepath.Join(stateRoot, strconv.Itoa(port))
	uid, _ := strconv.Atoi(nobody)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	set := "-all"
	if caps != "" {
		set += "," + caps
	}
	argv := []string{"setpriv", "--reuid=" + nobody, "--regid=" + nobody, "--clear-groups",
		"--inh-caps=" + set, "--ambient-caps=" + set, "--bounding-set=" + set,
		binary, "node", "--port", strconv.Itoa(port), "--dir", dir, "--node-timeout", "1s",
		"--xdp-iface", "lo", "--log-level", "info"}
	p := spawnNode(t, port, t.TempDir(), append(argv, extra...))
	deadline := time.Now().Add(15 * time.Second)
	for {
		if r, err := rawCommand(p.addr(), "PING"); err == nil && r == "+PONG" {
			p.rc = redis.NewClient(&redis.Options{Addr: p.addr(), Protocol: 2, ReadTimeout: 5 * time.Second, MaxRetries: -1})
			return p
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("unprivileged node on %d did not start:\n%s", port, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procCreds reads the real uid and the effective capability set of pid.
func procCreds(t *testing.T, pid int) (uid string, capEff uint64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			uid = strings.Fields(v)[0]
		}
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			capEff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return uid, capEff
}

// TestHeartbeatXDPWithCapsOnly runs two nodes as user nobody holding only
// CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, as deploy/hearsay.service does:
// they attach XDP on lo and their PINGs are answered in the kernel. A third
// node without capabilities falls back to UDP and says why in one line.
func TestHeartbeatXDPWithCapsOnly(t *testing.T) {
	requireHeartbeatRoot(t)
	testenv.RequireBinary(t, "setpriv")
	if os.Getenv("HEARSAY_LO_CHILD") != "1" {
		runInOwnNetns(t, "TestHeartbeatXDPWithCapsOnly")
		return
	}
	root := unprivDirs(t)
	a := startUnprivNode(t, root, xdpCaps, "--heartbeat", "auto")
	b := startUnprivNode(t, root, xdpCaps, "--heartbeat", "auto")
	const want = 1<<39 | 1<<38 | 1<<12 // CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN
	for _, p := range []*proc{a, b} {
		if uid, eff := procCreds(t, p.cmd.Process.Pid); uid != nobody || eff != want {
			t.Fatalf("node %d runs as uid %s with CapEff %#x, want uid %s and %#x", p.port, uid, eff, nobody, uint64(want))
		}
		if m := hbInfo(t, p); m["heartbeat_mode"] != "xdp" || m["heartbeat_xdp_iface"] != "lo" {
			log, _ := os.ReadFile(p.log)
			t.Fatalf("node %d: heartbeat %v, want xdp on lo\n%s", p.port, m, log)
		}
	}
	do(t, a, "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(b.port))
	for _, p := range []*proc{a, b} {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d hears its peer", p.port), func() (bool, string) {
			m := hbInfo(t, p)
			return m["heartbeat_peers_answering"] == "1", fmt.Sprint(m)
		})
	}
	k0 := hbCount(t, a, "heartbeat_pings_answered_kernel")
	time.Sleep(3 * time.Second) // the ping interval at a 1 s timeout is 250 ms
	if k := hbCount(t, a, "heartbeat_pings_answered_kernel"); k <= k0 {
		t.Fatalf("the kernel answered no PINGs in 3 s (%d then %d)", k0, k)
	}
	if u := hbCount(t, a, "heartbeat_pings_answered_user"); u != 0 {
		t.Fatalf("%d PINGs were answered in userspace", u)
	}
	t.Logf("unprivileged XDP: kernel answered %d PINGs, userspace 0", hbCount(t, a, "heartbeat_pings_answered_kernel"))

	c := startUnprivNode(t, root, "", "--heartbeat", "auto")
	if m := hbInfo(t, c); m["heartbeat_mode"] != "udp" {
		t.Fatalf("node without capabilities: heartbeat %v, want udp", m)
	}
	c.stop(t)
	log, _ := os.ReadFile(c.log)
	var why []string
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "xdp unavailable") {
			why = append(why, line)
		}
	}
	if len(why) != 1 || !strings.Contains(why[0], "missing CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN") {
		t.Fatalf("want one log line saying why XDP is off, got %q in:\n%s", why, log)
	}
	t.Logf("fallback: %s", why[0])
	a.stop(t)
	b.stop(t)
}

// TestUnitGrantsTheTestedCaps keeps deploy/hearsay.service and the
// capabilities TestHeartbeatXDPWithCapsOnly proves enough in step.
func TestUnitGrantsTheTestedCaps(t *testing.T) {
	b, err := os.ReadFile("../deploy/hearsay.service")
	if err != nil {
		t.Fatal(err)
	}
	var tested []string
	for _, c := range strings.Split(xdpCaps, ",") {
		tested = append(tested, "CAP_"+strings.ToUpper(strings.TrimPrefix(c, "+")))
	}
	slices.Sort(tested)
	for _, key := range []string{"AmbientCapabilities=", "CapabilityBoundingSet="} {
		var got []string
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, key); ok {
				got = strings.Fields(v)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tested) {
			t.Errorf("deploy/hearsay.service %s%v, but the test grants %v", key, got, tested)
		}
	}
	for _, want := range []string{"User=hearsay", "ProtectSystem=strict", "StateDirectory=hearsay", "Restart=on-failure", "KillSignal=SIGTERM"} {
		if !strings.Contains(string(b), "\n"+want+"\n") {
			t.Errorf("deploy/hearsay.service lacks %s", want)
		}
	}
}
