package bpf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hearsay/hearsay/bpf/hbpacket"
)

// pinger owns the UDP heartbeat socket and sends PING batches with
// sendmmsg. Both implementations use it.
type pinger struct {
	conn   hbSocket
	raw    rawWriter
	inet6  bool // the socket is AF_INET6
	key    uint64
	secret *hbpacket.Key

	mu       sync.Mutex
	peers    []Peer
	seq      uint64
	progress uint64
	sent     uint64
	sendErrs uint64

	// sendmmsg buffers, reused between batches
	bufs  []byte
	names []unix.RawSockaddrInet6
	iovs  []unix.Iovec
	msgs  []unix.Mmsghdr
}

// newPinger opens the heartbeat socket on cfg.Bind: a netpoller-driven
// *net.UDPConn for the UDP fallback, which reads every heartbeat, or with
// outOfPoller a blockingUDP, for XDP, where the socket mostly sends.
func newPinger(cfg *Config, outOfPoller bool) (*pinger, error) {
	p := &pinger{key: cfg.Key, secret: cfg.Secret}
	if outOfPoller {
		s, err := listenBlockingUDP(cfg.Bind)
		if err != nil {
			return nil, fmt.Errorf("heartbeat: listen %v: %w", cfg.Bind, err)
		}
		p.conn, p.raw = s, s
		p.inet6 = s.inet6
		return p, nil
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Bind))
	if err != nil {
		return nil, fmt.Errorf("heartbeat: listen %v: %w", cfg.Bind, err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	p.conn, p.raw = conn, rc
	var serr error
	_ = rc.Control(func(fd uintptr) {
		var sa unix.Sockaddr
		sa, serr = unix.Getsockname(int(fd))
		_, p.inet6 = sa.(*unix.SockaddrInet6)
	})
	if serr != nil {
		conn.Close()
		return nil, serr
	}
	return p, nil
}

func (p *pinger) setPeers(peers []Peer) {
	p.mu.Lock()
	p.peers = append(p.peers[:0], peers...)
	p.mu.Unlock()
}

func (p *pinger) tick() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.progress++
	return p.progress
}

// reply returns the PONG that answers ping, with the current key and
// progress.
func (p *pinger) reply(ping *hbpacket.Packet) hbpacket.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ping.Reply(p.key, p.progress)
}

// readLoop reads the heartbeat socket until it is closed. handle decides
// each datagram (it decodes into pkt) and reports whether it is a PING to
// answer; the PONG goes back to the sender, and replied runs once it is
// sent. The XDP heartbeater serves its socket's slow path with it; the UDP
// fallback, which reads every heartbeat, uses a batchReader.
func (p *pinger) readLoop(handle func(b []byte, pkt *hbpacket.Packet, now time.Duration) bool, replied func()) {
	buf := make([]byte, 2048)
	out := make([]byte, hbpacket.Size)
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		var pkt hbpacket.Packet
		if !handle(buf[:n], &pkt, MonotonicNow()) {
			continue
		}
		r := p.reply(&pkt)
		r.Marshal(out, p.secret)
		if _, err := p.conn.WriteToUDPAddrPort(out, from); err == nil {
			replied()
		}
	}
}

func (p *pinger) setKey(key uint64) {
	p.mu.Lock()
	p.key = key
	p.mu.Unlock()
}

// putSockaddr writes addr into sa in the socket's family and returns the
// length to pass to the kernel.
func (p *pinger) putSockaddr(sa *unix.RawSockaddrInet6, addr netip.AddrPort) (uint32, bool) {
	ip := addr.Addr()
	port := addr.Port()
	if p.inet6 {
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16(), Scope_id: zoneIndex(ip)}
		pp := (*[2]byte)(unsafe.Pointer(&sa.Port))
		pp[0], pp[1] = byte(port>>8), byte(port)
		return unix.SizeofSockaddrInet6, true
	}
	ip = ip.Unmap()
	if !ip.Is4() {
		return 0, false
	}
	s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
	*s4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.As4()}
	pp := (*[2]byte)(unsafe.Pointer(&s4.Port))
	pp[0], pp[1] = byte(port>>8), byte(port)
	return unix.SizeofSockaddrInet4, true
}

// sendPings sends one PING per peer in as few sendmmsg calls as possible.
func (p *pinger) sendPings() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.peers)
	if n == 0 {
		return nil
	}
	if cap(p.msgs) < n {
		p.bufs = make([]byte, n*hbpacket.Size)
		p.names = make([]unix.RawSockaddrInet6, n)
		p.iovs = make([]unix.Iovec, n)
		p.msgs = make([]unix.Mmsghdr, n)
	}
	msgs := p.msgs[:0]
	var badAddr error
	for i, peer := range p.peers {
		namelen, ok := p.putSockaddr(&p.names[i], peer.Addr)
		if !ok {
			p.sendErrs++
			badAddr = fmt.Errorf("heartbeat: peer %x: address %v does not fit an IPv4 socket", peer.Key, peer.Addr)
			continue
		}
		p.seq++
		// Stamp each PING as late as its MAC allows (the MAC covers the
		// send time), not once for the whole batch.
		pkt := hbpacket.Packet{Type: hbpacket.Ping, Sender: p.key, Seq: p.seq, SendTime: uint64(MonotonicNow()), Progress: p.progress}
		buf := p.bufs[i*hbpacket.Size : (i+1)*hbpacket.Size]
		pkt.Marshal(buf, p.secret)
		p.iovs[i] = unix.Iovec{Base: &buf[0]}
		p.iovs[i].SetLen(hbpacket.Size)
		m := unix.Mmsghdr{}
		m.Hdr.Name = (*byte)(unsafe.Pointer(&p.names[i]))
		m.Hdr.Namelen = namelen
		m.Hdr.Iov = &p.iovs[i]
		m.Hdr.SetIovlen(1)
		msgs = append(msgs, m)
	}
	err := p.sendmmsg(msgs)
	return errors.Join(badAddr, err)
}

func (p *pinger) sendmmsg(msgs []unix.Mmsghdr) error {
	var errno error
	for len(msgs) > 0 {
		werr := p.raw.Write(func(fd uintptr) bool {
			// A raw system call: the send never blocks (MSG_DONTWAIT),
			// and one made through the runtime would wake its monitor
			// thread (see batchReader).
			r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
			switch {
			case e == unix.EAGAIN:
				return false // wait until writable
			case e == unix.EINTR:
				return false
			case e != 0:
				// The first message failed (e.g. unreachable peer): skip it.
				errno = e
				p.sendErrs++
				msgs = msgs[1:]
				return true
			}
			p.sent += uint64(r)
			msgs = msgs[r:]
			return true
		})
		if werr != nil {
			p.sendErrs += uint64(len(msgs))
			return fmt.Errorf("heartbeat: sendmmsg: %w", werr)
		}
	}
	if errno != nil {
		return fmt.Errorf("heartbeat: sendmmsg: %w", errno)
	}
	return nil
}

func (p *pinger) counters(s *Stats) {
	p.mu.Lock()
	s.PingsSent, s.SendErrors = p.sent, p.sendErrs
	p.mu.Unlock()
}

func (p *pinger) close() error { return p.conn.Close() }
