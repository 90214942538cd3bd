package bpf

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/hearsay/hearsay/bpf/hbpacket"
	"github.com/hearsay/hearsay/internal/testenv"
)

const (
	xdpAborted = 0
	xdpDrop    = 1
	xdpPass    = 2
	xdpTx      = 3
)

const (
	portA  = 7000 // pinger
	portB  = 7001 // responder: the local node in the program
	keyA   = uint64(0xa1a2a3a4a5a6a7a8)
	keyB   = uint64(0xb1b2b3b4b5b6b7b8)
	progB  = uint64(4242)
	keyBad = uint64(0xdeadbeef)
)

var (
	ip4A = netip.MustParseAddr("10.0.0.1")
	ip4B = netip.MustParseAddr("10.0.0.2")
	ip6A = netip.MustParseAddr("fd00::a")
	ip6B = netip.MustParseAddr("fd00::b")
)

func testSecret() *hbpacket.Key {
	k := hbpacket.Key{}
	copy(k[:], "0123456789abcdef")
	return &k
}

// requireBPF skips the test unless BPF programs can be loaded and run.
func requireBPF(tb testing.TB) {
	tb.Helper()
	testenv.RequireRoot(tb, "BPF_PROG_TEST_RUN (CAP_BPF)")
}

// testProg is an unattached instance of the program with local node B.
type testProg struct {
	objs   heartbeatObjects
	secret *hbpacket.Key
}

func newTestProg(tb testing.TB, secret *hbpacket.Key) *testProg {
	tb.Helper()
	requireBPF(tb)
	tp := &testProg{secret: secret}
	if err := loadHeartbeatObjects(&tp.objs, nil); err != nil {
		if errors.Is(err, unix.EPERM) {
			testenv.Skipf(tb, "needs CAP_BPF to load programs: %v", err)
		}
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tp.objs.Close() })
	node := nodeEntry(keyB, secret)
	port := uint32(portB)
	must(tb, tp.objs.HbNodes.Update(&port, &node, ebpf.UpdateAny))
	must(tb, tp.objs.HbProgress.Update(&port, progB, ebpf.UpdateAny))
	peer := peerEntry(keyA, secret)
	must(tb, tp.objs.HbPeers.Update(&heartbeatHbPeerKey{PeerKey: keyA, LocalPort: portB}, &peer, ebpf.UpdateAny))
	return tp
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func (tp *testProg) run(tb testing.TB, in []byte, repeat uint32) (uint32, []byte) {
	tb.Helper()
	out := make([]byte, len(in)+256)
	opts := ebpf.RunOptions{Data: in, DataOut: out, Repeat: repeat}
	ret, err := tp.objs.HearsayHeartbeat.Run(&opts)
	if err != nil {
		tb.Fatal(err)
	}
	return ret, opts.DataOut
}

func (tp *testProg) peer(tb testing.TB, key uint64) (heartbeatHbPeer, bool) {
	var v heartbeatHbPeer
	err := tp.objs.HbPeers.Lookup(&heartbeatHbPeerKey{PeerKey: key, LocalPort: portB}, &v)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return v, false
	}
	must(tb, err)
	return v, true
}

func (tp *testProg) stats(tb testing.TB) [statCount]uint64 {
	c, err := readStats(tp.objs.HbStats)
	must(tb, err)
	return c
}

func pingFrame(v6 bool, p hbpacket.Packet, key *hbpacket.Key) []byte {
	f := frameSpec{v6: v6, srcMAC: macA, dstMAC: macB, src: ip4A, dst: ip4B,
		sport: portA, dport: portB, ttl: 61, ipID: 0x1234, payload: payload(p, key)}
	if v6 {
		f.src, f.dst = ip6A, ip6B
	}
	return f.build()
}

func TestPingToPong(t *testing.T) {
	requireBPF(t)
	for _, v6 := range []bool{false, true} {
		// Flags 0 takes the precomputed MAC prefixes (the PONG's with
		// FlagKernel added); other flags the full MAC.
		for _, c := range []struct {
			secret *hbpacket.Key
			flags  uint8
		}{{nil, 0}, {testSecret(), 0}, {testSecret(), 0x5}} {
			secret := c.secret
			name := map[bool]string{false: "ipv4", true: "ipv6"}[v6] + map[bool]string{false: "/noauth", true: "/auth"}[secret != nil] + fmt.Sprintf("/flags%d", c.flags)
			t.Run(name, func(t *testing.T) {
				tp := newTestProg(t, secret)
				ping := hbpacket.Packet{Type: hbpacket.Ping, Flags: c.flags, Sender: keyA, Seq: 77, SendTime: 123456789, Progress: 9}
				in := pingFrame(v6, ping, secret)

				// The expected PONG, built independently in Go.
				want := frameSpec{v6: v6, srcMAC: macB, dstMAC: macA, src: ip4B, dst: ip4A,
					sport: portB, dport: portA, ttl: 64, ipID: 0x1234,
					payload: payload(ping.KernelReply(keyB, progB), secret)}
				if v6 {
					want.src, want.dst = ip6B, ip6A
				}
				wantBytes := want.build()

				ret, out := tp.run(t, in, 1)
				if ret != xdpTx {
					t.Fatalf("verdict %d, want XDP_TX", ret)
				}
				if !bytes.Equal(out, wantBytes) {
					t.Fatalf("PONG bytes:\n got %x\nwant %x", out, wantBytes)
				}
				if ipOK, udpOK := verifyChecksums(out); !ipOK || !udpOK {
					t.Fatalf("checksums: ip %v udp %v", ipOK, udpOK)
				}
				var pong hbpacket.Packet
				if err := pong.Unmarshal(out[len(out)-hbpacket.Size:], secret); err != nil {
					t.Fatal(err)
				}
				if pong.Flags != c.flags|hbpacket.FlagKernel {
					t.Fatalf("PONG flags %#x, want the PING's %#x with FlagKernel", pong.Flags, c.flags)
				}
				if p, _ := tp.peer(t, keyA); p.PingsRx != 1 || p.PongsRx != 0 {
					t.Fatalf("peer %+v", p)
				}
				if s := tp.stats(t); s[statPingTx] != 1 {
					t.Fatalf("stats %v", s)
				}

				// Idempotent under Repeat: many runs give the same bytes.
				ret, out = tp.run(t, in, 1000)
				if !bytes.Equal(out, wantBytes) {
					t.Fatalf("Repeat changed the output:\n got %x\nwant %x (verdict %d)", out, wantBytes, ret)
				}
			})
		}
	}
}

// TestPongRecorded: a PONG is recorded with its flags, so the node knows
// whether the peer's XDP program (FlagKernel) or its userspace answered;
// both MAC paths are taken (the kernel PONG's prefix, and the full MAC for
// a userspace PONG without the flag).
func TestPongRecorded(t *testing.T) {
	requireBPF(t)
	for _, v6 := range []bool{false, true} {
		for _, flags := range []uint8{hbpacket.FlagKernel, 0} {
			tp := newTestProg(t, testSecret())
			sent := MonotonicNow() - 5*time.Millisecond
			pong := hbpacket.Packet{Type: hbpacket.Pong, Flags: flags, Sender: keyA, Seq: 31, SendTime: uint64(sent), Progress: 555}
			f := frameSpec{v6: v6, srcMAC: macA, dstMAC: macB, src: ip4A, dst: ip4B, sport: portA, dport: portB,
				payload: payload(pong, tp.secret)}
			if v6 {
				f.src, f.dst = ip6A, ip6B
			}
			in := f.build()
			before := MonotonicNow()
			ret, out := tp.run(t, in, 1)
			after := MonotonicNow()
			if ret != xdpDrop {
				t.Fatalf("flags %d: verdict %d, want XDP_DROP", flags, ret)
			}
			if !bytes.Equal(out, in) {
				t.Fatal("PONG was modified")
			}
			p, _ := tp.peer(t, keyA)
			last := time.Duration(p.LastPongNs)
			if p.PongsRx != 1 || p.PingsRx != 0 || p.Progress != 555 || p.Seq != 31 || p.PongFlags != uint32(flags) ||
				last < before || last > after || time.Duration(p.RttNs) != last-sent {
				t.Fatalf("peer %+v (window %v..%v, sent %v, flags %d)", p, before, after, sent, flags)
			}
			if s := sampleOf(keyA, &p); s.Kernel != (flags == hbpacket.FlagKernel) {
				t.Fatalf("flags %d: sample says kernel=%v", flags, s.Kernel)
			}
			if s := tp.stats(t); s[statPongRx] != 1 {
				t.Fatalf("stats %v", s)
			}
		}
	}
}

// TestBadHeartbeats sends malformed datagrams to the heartbeat port: each
// is dropped, bumps exactly its counter and leaves the peer map alone.
func TestBadHeartbeats(t *testing.T) {
	requireBPF(t)
	secret := testSecret()
	good := hbpacket.Packet{Type: hbpacket.Ping, Sender: keyA, Seq: 1}
	mut := func(f func(b []byte)) []byte {
		b := payload(good, secret)
		f(b)
		return b
	}
	build := func(v6 bool, pl []byte) []byte {
		f := frameSpec{v6: v6, srcMAC: macA, dstMAC: macB, src: ip4A, dst: ip4B, sport: portA, dport: portB, payload: pl}
		if v6 {
			f.src, f.dst = ip6A, ip6B
		}
		return f.build()
	}
	cases := []struct {
		name  string
		frame func(v6 bool) []byte
		stat  int
	}{
		{"short", func(v6 bool) []byte { return build(v6, payload(good, secret)[:47]) }, statBadLen},
		{"long", func(v6 bool) []byte { return build(v6, append(payload(good, secret), 0)) }, statBadLen},
		{"empty", func(v6 bool) []byte { return build(v6, nil) }, statBadLen},
		{"truncated", func(v6 bool) []byte { b := build(v6, payload(good, secret)); return b[:len(b)-5] }, statBadLen},
		{"magic", func(v6 bool) []byte { return build(v6, mut(func(b []byte) { b[0] = 'X' })) }, statBadMagic},
		{"type", func(v6 bool) []byte { return build(v6, mut(func(b []byte) { b[4] = 9 })) }, statBadType},
		{"mac", func(v6 bool) []byte { return build(v6, mut(func(b []byte) { b[40] ^= 0x80 })) }, statBadMAC},
		{"body", func(v6 bool) []byte { return build(v6, mut(func(b []byte) { b[17] ^= 1 })) }, statBadMAC},
		{"unknown", func(v6 bool) []byte {
			p := good
			p.Sender = keyBad
			return build(v6, payload(p, secret))
		}, statUnknownPeer},
	}
	for _, v6 := range []bool{false, true} {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				tp := newTestProg(t, secret)
				in := c.frame(v6)
				ret, _ := tp.run(t, in, 1)
				if ret != xdpDrop {
					t.Fatalf("v6=%v verdict %d, want XDP_DROP", v6, ret)
				}
				s := tp.stats(t)
				for i, v := range s {
					want := uint64(0)
					if i == c.stat {
						want = 1
					}
					if v != want {
						t.Fatalf("v6=%v stats %v, want only counter %d at 1", v6, s, c.stat)
					}
				}
				if p, _ := tp.peer(t, keyA); p != peerEntry(keyA, tp.secret) {
					t.Fatalf("peer changed: %+v", p)
				}
			})
		}
	}
}

// TestPassThrough checks that everything that is not a heartbeat passes
// untouched.
func TestPassThrough(t *testing.T) {
	requireBPF(t)
	secret := testSecret()
	ping := payload(hbpacket.Packet{Type: hbpacket.Ping, Sender: keyA}, secret)
	v4 := func() []byte { return pingFrame(false, hbpacket.Packet{Type: hbpacket.Ping, Sender: keyA}, secret) }
	v6 := func() []byte { return pingFrame(true, hbpacket.Packet{Type: hbpacket.Ping, Sender: keyA}, secret) }
	cases := map[string][]byte{
		"tiny":       {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14},
		"arp":        func() []byte { b := v4(); b[12], b[13] = 0x08, 0x06; return b }(),
		"tcp":        func() []byte { b := v4(); b[14+9] = 6; return b }(),
		"tcp6":       func() []byte { b := v6(); b[14+6] = 6; return b }(),
		"v6exthdr":   func() []byte { b := v6(); b[14+6] = 0; return b }(),
		"otherport":  frameSpec{srcMAC: macA, dstMAC: macB, src: ip4A, dst: ip4B, sport: portA, dport: 53, payload: ping}.build(),
		"otherport6": frameSpec{v6: true, srcMAC: macA, dstMAC: macB, src: ip6A, dst: ip6B, sport: portA, dport: 53, payload: ping}.build(),
		"ipopts":     func() []byte { b := v4(); b[14] = 0x46; return b }(),
		"fragMF":     func() []byte { b := v4(); b[14+6] = 0x20; return b }(),
		"fragOffset": func() []byte { b := v4(); b[14+7] = 0x10; return b }(),
		"ipv4hdrcut": v4()[:30],
		"udphdrcut":  v4()[:38],
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			tp := newTestProg(t, secret)
			ret, out := tp.run(t, in, 1)
			if ret != xdpPass {
				t.Fatalf("verdict %d, want XDP_PASS", ret)
			}
			if !bytes.Equal(out, in) {
				t.Fatal("packet modified")
			}
			if s := tp.stats(t); s[statPass] != 1 {
				t.Fatalf("stats %v", s)
			}
		})
	}
}
