package bpf

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// vethPair makes two namespaces joined by a veth pair, hbva (10.199.0.1)
// in the first and hbvb (10.199.0.2) in the second. Everything vanishes
// with the namespaces when the test ends, pass or fail.
func vethPair(t testing.TB) (nsA, nsB netns.NsHandle) {
	t.Helper()
	nsA, nsB = newNetns(t), newNetns(t)
	hA, hB := nlHandle(t, nsA), nlHandle(t, nsB)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "hbva"}, PeerName: "hbvb",
		PeerNamespace: netlink.NsFd(int(nsB))}
	if err := hA.LinkAdd(veth); err != nil {
		t.Fatalf("create veth: %v", err)
	}
	for _, side := range []struct {
		h    *netlink.Handle
		name string
		addr string
	}{{hA, "hbva", "10.199.0.1/24"}, {hB, "hbvb", "10.199.0.2/24"}} {
		l, err := side.h.LinkByName(side.name)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := netlink.ParseAddr(side.addr)
		if err := side.h.AddrAdd(l, a); err != nil {
			t.Fatal(err)
		}
		if err := side.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return nsA, nsB
}

var (
	vethA = netip.MustParseAddrPort("10.199.0.1:7100")
	vethB = netip.MustParseAddrPort("10.199.0.2:7100")
)

func TestVethEndToEnd(t *testing.T) {
	requireNetAdmin(t)
	nsA, nsB := vethPair(t)
	pinRoot, lockDir := testPinRoot(t), t.TempDir()
	secret := testSecret()
	cfgA := Config{Key: keyA, Bind: vethA, Interface: "hbva", PinRoot: pinRoot, LockDir: lockDir, Secret: secret, Logf: t.Logf}
	cfgB := Config{Key: keyB, Bind: vethB, Interface: "hbvb", PinRoot: pinRoot, LockDir: lockDir, Secret: secret, Logf: t.Logf}

	t.Run("xdp", func(t *testing.T) {
		a := newXDPIn(t, nsA, cfgA)
		defer a.Close()
		b := newXDPIn(t, nsB, cfgB)
		defer b.Close()
		t.Logf("attach modes: %s %s, %s %s", a.Interface(), a.AttachMode(), b.Interface(), b.AttachMode())
		must(t, a.SetPeers([]Peer{{Key: keyB, Addr: vethB}}))
		must(t, b.SetPeers([]Peer{{Key: keyA, Addr: vethA}}))
		const rounds = 20
		exchange(t, rounds, a, b)
		sa, sb := sampleOfPeer(t, a, keyB), sampleOfPeer(t, b, keyA)
		stA, _ := a.Stats()
		stB, _ := b.Stats()
		t.Logf("a: %+v %+v", sa, stA)
		t.Logf("b: %+v %+v", sb, stB)
		// Every PING was answered by the peer's kernel, and no heartbeat
		// reached either socket: no userspace replied.
		if stA.PingTx != rounds || stB.PingTx != rounds || stA.PongRx != rounds || stB.PongRx != rounds {
			t.Fatalf("kernel counters: a %+v b %+v", stA, stB)
		}
		if stA.SlowPingTx+stA.SlowPongRx+stB.SlowPingTx+stB.SlowPongRx != 0 {
			t.Fatalf("heartbeats reached userspace: a %+v b %+v", stA, stB)
		}
		if sa.PingsRecv != rounds || sa.PongsRecv != rounds || sa.Progress < rounds-1 {
			t.Fatalf("a's sample of b: %+v", sa)
		}
		if !sa.Kernel || !sb.Kernel {
			t.Fatalf("the kernels answered, but the samples say kernel a=%v b=%v", sa.Kernel, sb.Kernel)
		}

		// b hangs: its kernel keeps answering, its progress stops.
		must(t, a.SendPings())
		waitPongs(t, a, keyB, rounds+1)
		before := sampleOfPeer(t, a, keyB)
		if before.Progress != rounds {
			t.Fatalf("b's progress %d, want %d", before.Progress, rounds)
		}
		for i := 0; i < 5; i++ {
			must(t, a.Tick())
			must(t, a.SendPings())
		}
		waitPongs(t, a, keyB, before.PongsRecv+5)
		after := sampleOfPeer(t, a, keyB)
		if after.Progress != before.Progress || after.LastPong <= before.LastPong {
			t.Fatalf("hung peer: before %+v after %+v", before, after)
		}
	})
	if t.Failed() {
		return
	}
	if xdpAttached(t, nsA, "hbva") || xdpAttached(t, nsB, "hbvb") {
		t.Fatal("XDP still attached after Close")
	}

	t.Run("udp", func(t *testing.T) {
		a := newUDPIn(t, nsA, cfgA)
		b := newUDPIn(t, nsB, cfgB)
		must(t, a.SetPeers([]Peer{{Key: keyB, Addr: vethB}}))
		must(t, b.SetPeers([]Peer{{Key: keyA, Addr: vethA}}))
		const rounds = 20
		exchange(t, rounds, a, b)
		sa := sampleOfPeer(t, a, keyB)
		stA, _ := a.Stats()
		t.Logf("a: %+v %+v", sa, stA)
		if sa.PingsRecv != rounds || sa.PongsRecv != rounds || sa.Progress < rounds-1 || stA.PingTx != rounds || stA.PongRx != rounds {
			t.Fatalf("a: %+v %+v", sa, stA)
		}
		if sa.Kernel {
			t.Fatalf("b's userspace answered, but a's sample says kernel: %+v", sa)
		}
	})

	t.Run("mixed", func(t *testing.T) {
		// XDP on one side, the fallback on the other: same packets. Native
		// XDP_TX on veth needs a program on the peer end, so use generic.
		cfg := cfgA
		cfg.XDPMode = AttachGeneric
		a := newXDPIn(t, nsA, cfg)
		defer a.Close()
		b := newUDPIn(t, nsB, cfgB)
		must(t, a.SetPeers([]Peer{{Key: keyB, Addr: vethB}}))
		must(t, b.SetPeers([]Peer{{Key: keyA, Addr: vethA}}))
		exchange(t, 5, a, b)
		// Each side sees which path of the other answered: a's kernel
		// recorded b's userspace PONGs, b's socket a's kernel PONGs.
		if sa, sb := sampleOfPeer(t, a, keyB), sampleOfPeer(t, b, keyA); sa.Kernel || !sb.Kernel {
			t.Fatalf("mixed: a sees kernel=%v (want false), b sees kernel=%v (want true)", sa.Kernel, sb.Kernel)
		}
	})
}

func waitPongs(t *testing.T, h Heartbeater, key, n uint64) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if sampleOfPeer(t, h, key).PongsRecv >= n {
			return
		}
		sleepMS(10)
	}
	t.Fatalf("waited for %d PONGs: %+v", n, sampleOfPeer(t, h, key))
}
