package bpf

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/hearsay/hearsay/bpf/hbpacket"
)

// UDP is the userspace fallback Heartbeater: a goroutine reads the
// heartbeat socket in batches (batchReader), answers PINGs and records PONGs with the same rules
// and the same counters as the XDP program. Create it with NewUDP.
type UDP struct {
	p    *pinger
	rd   *batchReader
	done chan struct{}

	mu     sync.Mutex
	peers  map[uint64]*Sample
	stats  [statCount]uint64
	closed bool
}

var _ Heartbeater = (*UDP)(nil)

// NewUDP opens the heartbeat socket on cfg.Bind and starts answering.
func NewUDP(cfg Config) (*UDP, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	p, err := newPinger(&cfg, false)
	if err != nil {
		return nil, err
	}
	rc, ok := p.raw.(syscall.RawConn)
	if !ok {
		p.close()
		return nil, errors.New("heartbeat: the UDP socket has no raw descriptor")
	}
	u := &UDP{p: p, rd: newBatchReader(rc, p), done: make(chan struct{}), peers: map[uint64]*Sample{}}
	go u.serve()
	return u, nil
}

// Mode returns ModeUDP.
func (u *UDP) Mode() Mode { return ModeUDP }

// LocalAddr returns the socket's address.
func (u *UDP) LocalAddr() netip.AddrPort { return u.p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (u *UDP) serve() {
	defer close(u.done)
	u.rd.loop(u.handle, func() { u.count(statPingTx) })
}

func (u *UDP) count(i int) {
	u.mu.Lock()
	u.stats[i]++
	u.mu.Unlock()
}

// handle applies the XDP program's rules to one datagram and reports
// whether to answer it.
func (u *UDP) handle(b []byte, pkt *hbpacket.Packet, now time.Duration) bool {
	// The XDP program's order: magic and type, the sender, then the MAC.
	err := pkt.Unmarshal(b, nil)
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.peers[pkt.Sender]
	if err == nil && s == nil {
		u.stats[statUnknownPeer]++
		return false
	}
	if err == nil && u.p.secret != nil && hbpacket.SipHash24(u.p.secret, b[:hbpacket.MACOffset]) != pkt.MAC {
		err = hbpacket.ErrMAC
	}
	switch {
	case errors.Is(err, hbpacket.ErrLength):
		u.stats[statBadLen]++
		return false
	case errors.Is(err, hbpacket.ErrMagic):
		u.stats[statBadMagic]++
		return false
	case errors.Is(err, hbpacket.ErrType):
		u.stats[statBadType]++
		return false
	case errors.Is(err, hbpacket.ErrMAC):
		u.stats[statBadMAC]++
		return false
	}
	if pkt.Type == hbpacket.Ping {
		s.PingsRecv++
		return true
	}
	s.PongsRecv++
	s.LastPong = now
	s.RTT = 0
	if sent := time.Duration(pkt.SendTime); now >= sent {
		s.RTT = now - sent
	}
	s.Progress = pkt.Progress
	s.Seq = pkt.Seq
	s.Kernel = pkt.Flags&hbpacket.FlagKernel != 0
	u.stats[statPongRx]++
	return false
}

// SetPeers implements Heartbeater.
func (u *UDP) SetPeers(peers []Peer) error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return errClosed
	}
	want := make(map[uint64]bool, len(peers))
	for _, p := range peers {
		want[p.Key] = true
		if u.peers[p.Key] == nil {
			u.peers[p.Key] = &Sample{PeerKey: p.Key}
		}
	}
	for k := range u.peers {
		if !want[k] {
			delete(u.peers, k)
		}
	}
	u.mu.Unlock()
	u.p.setPeers(peers)
	return nil
}

// Tick implements Heartbeater.
func (u *UDP) Tick() error {
	u.p.tick()
	return nil
}

// SendPings implements Heartbeater.
func (u *UDP) SendPings() error { return u.p.sendPings() }

// SetKey implements Heartbeater.
func (u *UDP) SetKey(key uint64) error {
	u.p.setKey(key)
	return nil
}

// Samples implements Heartbeater.
func (u *UDP) Samples(dst []Sample) ([]Sample, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	dst = dst[:0]
	for _, s := range u.peers {
		dst = append(dst, *s)
	}
	return dst, nil
}

// Stats implements Heartbeater.
func (u *UDP) Stats() (Stats, error) {
	var s Stats
	u.mu.Lock()
	c := u.stats
	u.mu.Unlock()
	s.addKernel(&c)
	u.p.counters(&s)
	return s, nil
}

// Close implements Heartbeater.
func (u *UDP) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	u.mu.Unlock()
	err := u.p.close()
	<-u.done
	return err
}
