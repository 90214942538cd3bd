package bpf

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/hearsay/hearsay/bpf/hbpacket"
)

// oracle is a Go model of heartbeat.c for the test program (local node B
// on portB, known peer A, authentication with testSecret). It returns the
// verdict, the counter that must move, and the sender key of a valid
// heartbeat.
func oracle(in []byte, secret *hbpacket.Key) (verdict uint32, stat int, sender uint64, typ hbpacket.Type) {
	pass := func() (uint32, int, uint64, hbpacket.Type) { return xdpPass, statPass, 0, 0 }
	drop := func(s int) (uint32, int, uint64, hbpacket.Type) { return xdpDrop, s, 0, 0 }
	if len(in) < 14 {
		return pass()
	}
	var udp int
	var ipv4, ipv6 []byte
	switch binary.BigEndian.Uint16(in[12:]) {
	case 0x0800:
		if len(in) < 34 {
			return pass()
		}
		ipv4 = in[14:34]
		if ipv4[0] != 0x45 || binary.BigEndian.Uint16(ipv4[6:])&0x3fff != 0 || ipv4[9] != 17 {
			return pass()
		}
		udp = 34
	case 0x86dd:
		if len(in) < 54 {
			return pass()
		}
		ipv6 = in[14:54]
		if ipv6[0]>>4 != 6 || ipv6[6] != 17 {
			return pass()
		}
		udp = 54
	default:
		return pass()
	}
	if len(in) < udp+8 {
		return pass()
	}
	if binary.BigEndian.Uint16(in[udp+2:]) != portB {
		return pass()
	}
	if len(in) < udp+8+hbpacket.Size || binary.BigEndian.Uint16(in[udp+4:]) != 56 ||
		(ipv4 != nil && binary.BigEndian.Uint16(ipv4[2:]) != 76) ||
		(ipv6 != nil && binary.BigEndian.Uint16(ipv6[4:]) != 56) {
		return drop(statBadLen)
	}
	// Order of the checks: magic and type, then the sender (whose entry
	// holds the MAC prefixes), then the MAC.
	var p hbpacket.Packet
	body := in[udp+8 : udp+8+hbpacket.Size]
	if err := p.Unmarshal(body, nil); err != nil {
		if bytes.Equal(in[udp+8:udp+12], []byte("HBT1")) {
			return drop(statBadType)
		}
		return drop(statBadMagic)
	}
	if p.Sender != keyA {
		return drop(statUnknownPeer)
	}
	if p.Unmarshal(body, secret) == hbpacket.ErrMAC {
		return drop(statBadMAC)
	}
	if p.Type == hbpacket.Ping {
		return xdpTx, statPingTx, p.Sender, p.Type
	}
	return xdpDrop, statPongRx, p.Sender, p.Type
}

type progSnapshot struct {
	peers map[heartbeatHbPeerKey]heartbeatHbPeer
	node  heartbeatHbNode
	stats [statCount]uint64
}

func (tp *testProg) snapshot(tb testing.TB) progSnapshot {
	s := progSnapshot{peers: map[heartbeatHbPeerKey]heartbeatHbPeer{}, stats: tp.stats(tb)}
	var k heartbeatHbPeerKey
	var v heartbeatHbPeer
	it := tp.objs.HbPeers.Iterate()
	for it.Next(&k, &v) {
		s.peers[k] = v
	}
	must(tb, it.Err())
	port := uint32(portB)
	must(tb, tp.objs.HbNodes.Lookup(&port, &s.node))
	return s
}

// checkOne runs in through the program and checks it against the oracle:
// the verdict, exactly one counter, untouched non-heartbeats, and peer
// state that changes only for valid heartbeats from the known peer.
func checkOne(t *testing.T, tp *testProg, in []byte) {
	t.Helper()
	if len(in) < 14 {
		return // the kernel refuses runs without an Ethernet header
	}
	wantV, wantStat, sender, typ := oracle(in, tp.secret)
	before := tp.snapshot(t)
	ret, out := tp.run(t, in, 1)
	after := tp.snapshot(t)
	if ret != wantV {
		t.Fatalf("verdict %d, oracle %d, input %x", ret, wantV, in)
	}
	for i := range after.stats {
		d := after.stats[i] - before.stats[i]
		if (i == wantStat) != (d == 1) || d > 1 {
			t.Fatalf("counter %d moved by %d (want counter %d), input %x", i, d, wantStat, in)
		}
	}
	if ret != xdpTx && !bytes.Equal(out, in) {
		t.Fatalf("verdict %d but packet modified, input %x", ret, in)
	}
	if after.node != before.node || len(after.peers) != len(before.peers) {
		t.Fatal("map entries added or removed")
	}
	for k, v := range after.peers {
		old := before.peers[k]
		if v == old {
			continue
		}
		if k.PeerKey != sender || k.LocalPort != portB {
			t.Fatalf("peer %+v changed for input %x", k, in)
		}
		switch typ {
		case hbpacket.Ping:
			if v.PingsRx != old.PingsRx+1 || v.PongsRx != old.PongsRx {
				t.Fatalf("PING changed peer %+v -> %+v", old, v)
			}
		case hbpacket.Pong:
			if v.PongsRx != old.PongsRx+1 || v.PingsRx != old.PingsRx {
				t.Fatalf("PONG changed peer %+v -> %+v", old, v)
			}
		default:
			t.Fatalf("peer changed by an invalid packet %x", in)
		}
	}
	if ret == xdpTx {
		if ipOK, udpOK := verifyChecksums(out); !ipOK || !udpOK {
			t.Fatalf("bad checksums in PONG %x", out)
		}
	}
}

func fuzzSeeds(secret *hbpacket.Key) [][]byte {
	ping := hbpacket.Packet{Type: hbpacket.Ping, Sender: keyA, Seq: 1, SendTime: 2, Progress: 3}
	pong := hbpacket.Packet{Type: hbpacket.Pong, Sender: keyA, Seq: 1, SendTime: 2, Progress: 3}
	return [][]byte{
		pingFrame(false, ping, secret),
		pingFrame(true, ping, secret),
		pingFrame(false, pong, secret),
		pingFrame(true, pong, secret),
		pingFrame(false, ping, nil),
	}
}

// FuzzProgram pushes arbitrary frames through the XDP program.
func FuzzProgram(f *testing.F) {
	for _, s := range fuzzSeeds(testSecret()) {
		f.Add(s)
	}
	tp := newTestProg(f, testSecret())
	f.Fuzz(func(t *testing.T, in []byte) {
		checkOne(t, tp, in)
	})
}

// TestProgramMutations is the deterministic part of the fuzzing: seeded
// random frames and single/multi-byte mutations of valid heartbeats.
func TestProgramMutations(t *testing.T) {
	requireBPF(t)
	tp := newTestProg(t, testSecret())
	rng := rand.New(rand.NewPCG(1, 2))
	seeds := fuzzSeeds(tp.secret)
	n := 4000
	if testing.Short() {
		n = 400
	}
	for i := 0; i < n; i++ {
		var in []byte
		switch i % 4 {
		case 0: // random bytes with an IPv4 or IPv6 ethertype
			in = make([]byte, 14+rng.IntN(120))
			for j := range in {
				in[j] = byte(rng.Uint32())
			}
			if rng.IntN(2) == 0 {
				in[12], in[13] = 0x08, 0x00
			} else {
				in[12], in[13] = 0x86, 0xdd
			}
		default: // mutate a valid heartbeat
			in = append([]byte(nil), seeds[rng.IntN(len(seeds))]...)
			for m := 1 + rng.IntN(3); m > 0; m-- {
				switch rng.IntN(5) {
				case 0:
					in = in[:14+rng.IntN(len(in)-13)]
				case 1:
					in = append(in, byte(rng.Uint32()))
				default:
					in[rng.IntN(len(in))] ^= byte(1 << rng.IntN(8))
				}
			}
		}
		checkOne(t, tp, in)
	}
	s := tp.snapshot(t)
	t.Logf("counters after %d frames: %v", n, s.stats)
	if s.stats[statPingTx] == 0 || s.stats[statBadMAC] == 0 || s.stats[statPass] == 0 {
		t.Fatalf("mutations did not reach every path: %v", s.stats)
	}
}
