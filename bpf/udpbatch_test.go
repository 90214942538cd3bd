package bpf

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/hearsay/hearsay/bpf/hbpacket"
)

// TestUDPBatchAnswersBurst sends the UDP fallback more PINGs at once than
// one recvmmsg takes (readBatch), interleaved with datagrams it must drop
// (a wrong length, a bad MAC, an unknown sender), and PONGs from a peer:
// every valid PING is answered exactly once with its seq echoed, every
// PONG is recorded, and the rejects are counted by kind, so a batch that
// holds bad datagrams or spans several reads loses none of its
// neighbours.
func TestUDPBatchAnswersBurst(t *testing.T) {
	secret := testSecret()
	lo := netip.MustParseAddr("127.0.0.1")
	u, err := NewUDP(Config{Key: keyA, Bind: netip.AddrPortFrom(lo, freeUDPPort(t)), Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	from := c.LocalAddr().(*net.UDPAddr).AddrPort()

	const pings = 2*readBatch + 5
	var peers []Peer
	for i := range pings {
		peers = append(peers, Peer{Key: uint64(0x1000 + i), Addr: from})
	}
	if err := u.SetPeers(peers); err != nil {
		t.Fatal(err)
	}
	to := u.LocalAddr()
	send := func(b []byte) {
		t.Helper()
		if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
			t.Fatal(err)
		}
	}
	var badLen, badMAC, unknown, pongs int
	for i := range pings {
		p := hbpacket.Packet{Type: hbpacket.Ping, Sender: peers[i].Key, Seq: uint64(i + 1), SendTime: uint64(MonotonicNow())}
		send(p.Marshal(make([]byte, hbpacket.Size), secret))
		switch i % 16 {
		case 3:
			send(make([]byte, hbpacket.Size+100)) // reads truncated: still a wrong length
			badLen++
		case 7:
			b := p.Marshal(make([]byte, hbpacket.Size), secret)
			b[hbpacket.MACOffset] ^= 1
			send(b)
			badMAC++
		case 11:
			q := hbpacket.Packet{Type: hbpacket.Ping, Sender: 0xdead, Seq: 1}
			send(q.Marshal(make([]byte, hbpacket.Size), secret))
			unknown++
		case 13:
			q := hbpacket.Packet{Type: hbpacket.Pong, Sender: peers[i].Key, Seq: 9, Progress: uint64(i)}
			send(q.Marshal(make([]byte, hbpacket.Size), secret))
			pongs++
		}
	}

	seen := make(map[uint64]bool)
	buf := make([]byte, 256)
	for len(seen) < pings {
		// A bound for a broken responder, not a timing requirement.
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d of %d PONGs: %v", len(seen), pings, err)
		}
		var pkt hbpacket.Packet
		if err := pkt.Unmarshal(buf[:n], secret); err != nil || pkt.Type != hbpacket.Pong || pkt.Sender != keyA {
			t.Fatalf("answer %+v: %v", pkt, err)
		}
		if seen[pkt.Seq] || pkt.Seq == 0 || pkt.Seq > pings {
			t.Fatalf("PONG with seq %d: a repeat or never asked for", pkt.Seq)
		}
		seen[pkt.Seq] = true
	}
	// The responder counts a PONG once its sendmmsg returns, which may
	// be after the PONG arrived here.
	var st Stats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if st, err = u.Stats(); err != nil {
			t.Fatal(err)
		}
		if st.PingTx >= pings || time.Now().After(deadline) {
			break
		}
	}
	if st.PingTx != pings || st.BadLen != uint64(badLen) || st.BadMAC != uint64(badMAC) ||
		st.UnknownPeer != uint64(unknown) || st.PongRx != uint64(pongs) {
		t.Fatalf("stats %+v, want %d answered, %d bad_len, %d bad_mac, %d unknown_peer, %d PONGs", st, pings, badLen, badMAC, unknown, pongs)
	}
	ss, err := u.Samples(nil)
	if err != nil {
		t.Fatal(err)
	}
	recorded := 0
	for _, s := range ss {
		if s.PongsRecv > 0 {
			recorded++
			if s.Seq != 9 || s.LastPong <= 0 {
				t.Fatalf("sample %+v", s)
			}
		}
	}
	if recorded != pongs {
		t.Fatalf("%d peers have a PONG recorded, want %d", recorded, pongs)
	}
}

// TestUDPBatchProcessDoesNotAllocate: handling a batch (decoding, the
// checks, the answers' sendmmsg) allocates nothing, so an idle node's
// heartbeats do not feed its garbage collector.
func TestUDPBatchProcessDoesNotAllocate(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	u, err := NewUDP(Config{Key: keyA, Bind: netip.AddrPortFrom(lo, freeUDPPort(t)), Secret: testSecret()})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	from := c.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := u.SetPeers([]Peer{{Key: keyB, Addr: from}}); err != nil {
		t.Fatal(err)
	}
	rc, err := u.p.conn.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	r := newBatchReader(rc, u.p) // a second reader on the socket, driven by hand
	const n = 8
	for i := range n {
		p := hbpacket.Packet{Type: hbpacket.Ping, Sender: keyB, Seq: uint64(i + 1)}
		p.Marshal(r.bufs[i*rxSlot:], testSecret())
		r.msgs[i].Len = hbpacket.Size
		namelen, _ := u.p.putSockaddr(&r.names[i], from)
		r.msgs[i].Hdr.Namelen = namelen
	}
	replied := func() {}
	allocs := testing.AllocsPerRun(50, func() { r.process(n, u.handle, replied) })
	if allocs != 0 {
		t.Fatalf("process allocated %.1f times per batch of %d", allocs, n)
	}
}
