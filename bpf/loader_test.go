package bpf

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func newXDPIn(t testing.TB, ns netns.NsHandle, cfg Config) *XDP {
	t.Helper()
	var x *XDP
	err := inNetns(ns, func() (err error) {
		x, err = NewXDP(cfg)
		return err
	})
	if err != nil {
		t.Fatalf("NewXDP(%v): %v", cfg.Bind, err)
	}
	return x
}

func newUDPIn(t testing.TB, ns netns.NsHandle, cfg Config) *UDP {
	t.Helper()
	var u *UDP
	err := inNetns(ns, func() (err error) {
		u, err = NewUDP(cfg)
		return err
	})
	if err != nil {
		t.Fatalf("NewUDP(%v): %v", cfg.Bind, err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// sampleOfPeer returns h's sample for key.
func sampleOfPeer(t testing.TB, h Heartbeater, key uint64) Sample {
	t.Helper()
	ss, err := h.Samples(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.PeerKey == key {
			return s
		}
	}
	t.Fatalf("no sample for peer %x in %+v", key, ss)
	return Sample{}
}

// exchange runs rounds of Tick+SendPings on every heartbeater and waits
// until each has seen a PONG with the expected seq from all its peers.
func exchange(t *testing.T, rounds int, hs ...Heartbeater) {
	t.Helper()
	for r := 0; r < rounds; r++ {
		for _, h := range hs {
			if err := h.Tick(); err != nil {
				t.Fatal(err)
			}
			if err := h.SendPings(); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, h := range hs {
		for {
			ss, err := h.Samples(nil)
			if err != nil {
				t.Fatal(err)
			}
			done := len(ss) > 0
			for _, s := range ss {
				if s.PongsRecv < uint64(rounds) {
					done = false
				}
			}
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s heartbeater: PONGs missing after %d rounds: %+v", h.Mode(), rounds, ss)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func pinExists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

func xdpAttached(t testing.TB, ns netns.NsHandle, ifname string) bool {
	t.Helper()
	l, err := nlHandle(t, ns).LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
}

// TestSharedAttachLo runs simulated nodes sharing one program on lo (in a
// private network namespace, so real nodes on the host are not touched).
func TestSharedAttachLo(t *testing.T) {
	requireNetAdmin(t)
	ns := newNetns(t)
	pinRoot, lockDir := testPinRoot(t), t.TempDir()
	cfg := func(key uint64, port uint16) Config {
		return Config{Key: key, Bind: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port),
			Interface: "lo", PinRoot: pinRoot, LockDir: lockDir, Secret: testSecret(), Logf: t.Logf}
	}
	a := newXDPIn(t, ns, cfg(keyA, portA))
	defer a.Close()
	if a.AttachMode() != AttachGeneric {
		t.Errorf("lo attach mode %s, want generic", a.AttachMode())
	}
	b := newXDPIn(t, ns, cfg(keyB, portB))
	defer b.Close()
	dir := a.PinDir()
	for _, name := range append([]string{pinLink, pinProg}, pinnedMaps...) {
		if !pinExists(dir, name) {
			t.Fatalf("pin %s missing", name)
		}
	}
	lo := netip.MustParseAddr("127.0.0.1")
	must(t, a.SetPeers([]Peer{{Key: keyB, Addr: netip.AddrPortFrom(lo, portB)}}))
	must(t, b.SetPeers([]Peer{{Key: keyA, Addr: netip.AddrPortFrom(lo, portA)}}))
	exchange(t, 3, a, b)
	if s := sampleOfPeer(t, a, keyB); s.Progress < 2 || s.Progress > 3 || s.PingsRecv != 3 || s.RTT <= 0 {
		t.Fatalf("a's sample of b: %+v", s)
	}
	st, err := a.Stats()
	must(t, err)
	if st.PingTx != 6 || st.PongRx != 6 || st.PingsSent != 3 {
		t.Fatalf("stats %+v", st)
	}

	// A crashed run left entries for port 7999 with a dead PID.
	dead := exec.Command("true")
	must(t, dead.Run())
	port := uint32(7999)
	must(t, a.ifc.objs.HbOwners.Update(&port, &heartbeatHbOwner{Pid: uint32(dead.Process.Pid), StartTime: 1}, ebpf.UpdateAny))
	must(t, a.ifc.objs.HbNodes.Update(&port, &heartbeatHbNode{OwnKey: 1, Flags: nodeActive}, ebpf.UpdateAny))
	must(t, a.ifc.objs.HbPeers.Update(&heartbeatHbPeerKey{PeerKey: 5, LocalPort: port}, &heartbeatHbPeer{}, ebpf.UpdateAny))
	c := newXDPIn(t, ns, cfg(0xc, 7002))
	var n heartbeatHbNode
	must(t, a.ifc.objs.HbNodes.Lookup(&port, &n))
	var o heartbeatHbOwner
	if err := a.ifc.objs.HbOwners.Lookup(&port, &o); n != (heartbeatHbNode{}) || !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Fatalf("stale node entry not removed: %+v %v", n, err)
	}
	if ss, _ := b.Samples(nil); len(ss) != 1 {
		t.Fatalf("live node's peers disturbed: %+v", ss)
	}
	must(t, c.Close())

	// a leaves: b keeps working.
	must(t, a.Close())
	if !pinExists(dir, pinLink) || !xdpAttached(t, ns, "lo") {
		t.Fatal("program detached while b is still there")
	}
	ss, err := b.Samples(nil)
	must(t, err)
	if len(ss) != 1 || ss[0].PongsRecv != 3 {
		t.Fatalf("b's samples after a left: %+v", ss)
	}
	// The last node detaches and unpins.
	must(t, b.Close())
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("pin dir still there: %v", err)
	}
	if xdpAttached(t, ns, "lo") {
		t.Fatal("XDP still attached to lo after the last node left")
	}
}

// TestStalePinsAfterCrash: a node process dies without Close; its pinned
// link keeps the program attached. The next node finds no live owner,
// replaces the stale pins and attaches afresh.
func TestStalePinsAfterCrash(t *testing.T) {
	if os.Getenv("HEARSAY_CRASH_CHILD") != "" {
		return // handled by TestCrashChild
	}
	requireNetAdmin(t)
	ns := newNetns(t)
	pinRoot, lockDir := testPinRoot(t), t.TempDir()
	err := inNetns(ns, func() error {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "HEARSAY_CRASH_CHILD=1", "PIN_ROOT="+pinRoot, "LOCK_DIR="+lockDir)
		out, err := cmd.CombinedOutput()
		if err != nil || !pinExists(filepath.Join(pinRoot, "lo"), pinLink) {
			t.Logf("child output: %s", out)
		}
		return err
	})
	must(t, err)
	if !xdpAttached(t, ns, "lo") {
		t.Fatal("child did not leave its program attached")
	}
	var logs []string
	cfg := Config{Key: keyB, Bind: netip.MustParseAddrPort("127.0.0.1:7301"), Interface: "lo",
		PinRoot: pinRoot, LockDir: lockDir, Logf: func(f string, a ...any) { logs = append(logs, f); t.Logf(f, a...) }}
	x := newXDPIn(t, ns, cfg)
	var owners []uint32
	var p uint32
	var o heartbeatHbOwner
	it := x.ifc.objs.HbOwners.Iterate()
	for it.Next(&p, &o) {
		owners = append(owners, p)
	}
	if len(owners) != 1 || owners[0] != 7301 {
		t.Fatalf("owners after restart: %v", owners)
	}
	found := false
	for _, l := range logs {
		found = found || l == "heartbeat: %s: removing stale pins from a previous run"
	}
	if !found {
		t.Fatalf("stale pins not reported; logs %q", logs)
	}
	must(t, x.Close())
	if xdpAttached(t, ns, "lo") {
		t.Fatal("still attached")
	}
}

// TestCrashChild is the crashing node of TestStalePinsAfterCrash.
func TestCrashChild(t *testing.T) {
	if os.Getenv("HEARSAY_CRASH_CHILD") == "" {
		return // only a helper process of TestStalePinsAfterCrash; not a skip, so CI output shows none
	}
	_, err := NewXDP(Config{Key: keyA, Bind: netip.MustParseAddrPort("127.0.0.1:7300"), Interface: "lo",
		PinRoot: os.Getenv("PIN_ROOT"), LockDir: os.Getenv("LOCK_DIR")})
	if err != nil {
		t.Fatal(err)
	}
	os.Exit(0) // crash: no Close
}

// TestSixNodesConcurrent starts and stops six nodes on lo at once, as the
// local demo does: joins and leaves are serialised by the lock, every pair
// exchanges heartbeats through the one shared program, and nothing is left
// behind.
func TestSixNodesConcurrent(t *testing.T) {
	requireNetAdmin(t)
	ns := newNetns(t)
	pinRoot, lockDir := testPinRoot(t), t.TempDir()
	lo := netip.MustParseAddr("127.0.0.1")
	const n = 6
	nodes := make([]*XDP, n)
	errs := make(chan error, n)
	for i := range nodes {
		go func() {
			errs <- inNetns(ns, func() (err error) {
				nodes[i], err = NewXDP(Config{Key: uint64(100 + i), Bind: netip.AddrPortFrom(lo, uint16(7500+i)),
					Interface: "lo", PinRoot: pinRoot, LockDir: lockDir, Secret: testSecret()})
				return err
			})
		}()
	}
	for range nodes {
		must(t, <-errs)
	}
	hs := make([]Heartbeater, n)
	for i, x := range nodes {
		var peers []Peer
		for j := range nodes {
			if j != i {
				peers = append(peers, Peer{Key: uint64(100 + j), Addr: netip.AddrPortFrom(lo, uint16(7500+j))})
			}
		}
		must(t, x.SetPeers(peers))
		hs[i] = x
	}
	exchange(t, 3, hs...)
	st, err := nodes[0].Stats()
	must(t, err)
	if st.PingTx != n*(n-1)*3 || st.SlowPingTx != 0 {
		t.Fatalf("shared stats %+v", st)
	}
	// Stop the first half one by one: the others keep working.
	for _, x := range nodes[:n/2] {
		must(t, x.Close())
	}
	rest := hs[n/2:]
	for i, h := range rest {
		var peers []Peer
		for j := range rest {
			if j != i {
				peers = append(peers, Peer{Key: uint64(100 + n/2 + j), Addr: netip.AddrPortFrom(lo, uint16(7500+n/2+j))})
			}
		}
		must(t, h.SetPeers(peers))
	}
	exchange(t, 2, rest...)
	for _, x := range nodes[n/2:] {
		go func() { errs <- x.Close() }()
	}
	for range rest {
		must(t, <-errs)
	}
	if xdpAttached(t, ns, "lo") {
		t.Fatal("still attached")
	}
	if _, err := os.Stat(filepath.Join(pinRoot, "lo")); !os.IsNotExist(err) {
		t.Fatalf("pins left: %v", err)
	}
}

// TestSlowPath: XDP on a veth interface while the peer on the same host
// talks over lo. The program never sees those heartbeats; the socket
// answers and records them, and the samples look the same.
func TestSlowPath(t *testing.T) {
	requireNetAdmin(t)
	ns := newNetns(t)
	h := nlHandle(t, ns)
	must(t, h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "hbd0"}, PeerName: "hbd1"}))
	l, err := h.LinkByName("hbd0")
	must(t, err)
	addr, _ := netlink.ParseAddr("10.198.0.1/24")
	must(t, h.AddrAdd(l, addr))
	must(t, h.LinkSetUp(l))
	pinRoot, lockDir := testPinRoot(t), t.TempDir()
	aAddr, bAddr := netip.MustParseAddrPort("10.198.0.1:7400"), netip.MustParseAddrPort("10.198.0.1:7401")
	a := newXDPIn(t, ns, Config{Key: keyA, Bind: aAddr, PinRoot: pinRoot, LockDir: lockDir, Secret: testSecret()})
	defer a.Close()
	if a.Interface() != "hbd0" {
		t.Fatalf("default interface %q, want hbd0", a.Interface())
	}
	b := newUDPIn(t, ns, Config{Key: keyB, Bind: bAddr, Secret: testSecret()})
	must(t, a.SetPeers([]Peer{{Key: keyB, Addr: bAddr}}))
	must(t, b.SetPeers([]Peer{{Key: keyA, Addr: aAddr}}))
	exchange(t, 4, a, b)
	st, err := a.Stats()
	must(t, err)
	if st.SlowPingTx != 4 || st.SlowPongRx != 4 || st.PingTx != 0 {
		t.Fatalf("stats %+v", st)
	}
	if s := sampleOfPeer(t, a, keyB); s.PingsRecv != 4 || s.Progress < 3 || s.RTT <= 0 || s.Kernel {
		t.Fatalf("sample %+v (b's userspace answered: want Kernel false)", s)
	}
	if s := sampleOfPeer(t, b, keyA); s.Kernel {
		t.Fatalf("b's sample %+v: a answered on its socket path, not in the kernel", s)
	}
}

// TestMonotonicNowIsClockMonotonic checks that MonotonicNow (vDSO) reads
// the clock of clock_gettime(CLOCK_MONOTONIC), which bpf_ktime_get_ns uses.
func TestMonotonicNowIsClockMonotonic(t *testing.T) {
	for i := 0; i < 100; i++ {
		before := MonotonicNow()
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			t.Fatal(err)
		}
		after := MonotonicNow()
		if sys := time.Duration(ts.Nano()); sys < before || sys > after {
			t.Fatalf("clock_gettime(CLOCK_MONOTONIC) %v outside [%v, %v]", sys, before, after)
		}
	}
}

// TestSetKey: a node that takes a new key (CLUSTER RESET HARD gives a new
// ID) is answered and recorded under it by a peer that learned the new
// key, in both modes: the kernel stamps and MACs PONGs with it.
func TestSetKey(t *testing.T) {
	requireNetAdmin(t)
	const keyC = 0x0c0c0c0c0c0c0c0c
	lo := netip.MustParseAddr("127.0.0.1")
	for _, mode := range []Mode{ModeXDP, ModeUDP} {
		t.Run(string(mode), func(t *testing.T) {
			ns := newNetns(t)
			pinRoot, lockDir := testPinRoot(t), t.TempDir()
			cfg := func(key uint64, port uint16) Config {
				return Config{Key: key, Bind: netip.AddrPortFrom(lo, port),
					Interface: "lo", PinRoot: pinRoot, LockDir: lockDir, Secret: testSecret(), Logf: t.Logf}
			}
			var a, b Heartbeater
			if mode == ModeXDP {
				x, y := newXDPIn(t, ns, cfg(keyA, portA)), newXDPIn(t, ns, cfg(keyB, portB))
				defer x.Close()
				defer y.Close()
				a, b = x, y
			} else {
				a, b = newUDPIn(t, ns, cfg(keyA, portA)), newUDPIn(t, ns, cfg(keyB, portB))
			}
			must(t, a.SetPeers([]Peer{{Key: keyB, Addr: netip.AddrPortFrom(lo, portB)}}))
			must(t, b.SetPeers([]Peer{{Key: keyA, Addr: netip.AddrPortFrom(lo, portA)}}))
			exchange(t, 2, a, b)

			must(t, b.SetKey(keyC))
			must(t, a.SetPeers([]Peer{{Key: keyC, Addr: netip.AddrPortFrom(lo, portB)}}))
			exchange(t, 2, a, b)
			if s := sampleOfPeer(t, a, keyC); s.PongsRecv < 2 || s.PingsRecv < 2 {
				t.Fatalf("a's sample of b under its new key: %+v", s)
			}
			st, err := b.Stats()
			must(t, err)
			if st.BadMAC != 0 {
				t.Fatalf("b's stats after the key change: %+v", st)
			}
		})
	}
}
