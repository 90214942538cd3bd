package bpf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// hbSocket is the heartbeat UDP socket as the pinger and the slow paths
// use it. *net.UDPConn (the UDP fallback) and *blockingUDP (XDP) provide it.
type hbSocket interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// rawWriter runs a non-blocking send on the socket's descriptor, as
// syscall.RawConn.Write does: f returns false when the send would block.
type rawWriter interface {
	Write(f func(fd uintptr) bool) error
}

// errWouldBlock is returned by blockingUDP.Write when the socket buffer
// stays full: heartbeats are dropped then, never queued.
var errWouldBlock = errors.New("socket buffer full")

// blockingUDP is a UDP socket kept out of Go's netpoller. The XDP
// heartbeater sends every PING through it but reads only the rare
// heartbeat that misses the program. Registered in epoll (as *net.UDPConn
// is, for EPOLLOUT too), every send woke the netpoller thread when veth
// freed the sent skb, inside the round trip being measured: about 1.6 µs
// of a 6 µs RTT. Here one goroutine blocks in recvfrom, whose wait
// ignores write-space wakeups.
type blockingUDP struct {
	fd     int
	inet6  bool // AF_INET6 (possibly dual-stack)
	local  *net.UDPAddr
	closed atomic.Bool
	// mu is held shared across every system call on fd and exclusively
	// by Close around close(2), so fd is never reused under a caller.
	mu sync.RWMutex
}

func listenBlockingUDP(bind netip.AddrPort) (*blockingUDP, error) {
	ip := bind.Addr().Unmap()
	family := unix.AF_INET6
	if ip.Is4() && !ip.IsUnspecified() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	at := bind
	if family == unix.AF_INET6 && ip.Is4() {
		// A wildcard IPv4 bind becomes a dual-stack [::] socket, as
		// net.ListenUDP("udp", 0.0.0.0:port) does.
		at = netip.AddrPortFrom(netip.IPv6Unspecified(), bind.Port())
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	sa, _ := sockaddrOf(at, family == unix.AF_INET6) // the family was chosen to fit
	if err == nil {
		// A bounded wait, so a reader notices Close even if shutdown(2)
		// did not wake it.
		tv := unix.NsecToTimeval(int64(500e6))
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}
	if err == nil {
		err = unix.Bind(fd, sa)
	}
	var local unix.Sockaddr
	if err == nil {
		local, err = unix.Getsockname(fd)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %v: %w", bind, err)
	}
	return &blockingUDP{fd: fd, inet6: family == unix.AF_INET6, local: net.UDPAddrFromAddrPort(sockaddrToAddrPort(local))}, nil
}

// sockaddrOf converts addr for a socket of the given family: IPv4
// addresses are v4-mapped on an AF_INET6 socket, and an IPv6 address does
// not fit an AF_INET one.
func sockaddrOf(addr netip.AddrPort, inet6 bool) (unix.Sockaddr, error) {
	ip := addr.Addr()
	if !inet6 {
		if ip = ip.Unmap(); !ip.Is4() {
			return nil, fmt.Errorf("address %v does not fit an IPv4 socket", addr)
		}
		return &unix.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}, nil
	}
	return &unix.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16(), ZoneId: zoneIndex(ip)}, nil
}

// zoneIndex is the interface index of ip's zone (fe80::1%eth0), or 0.
func zoneIndex(ip netip.Addr) uint32 {
	if z := ip.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			return uint32(ifi.Index)
		}
	}
	return 0
}

func sockaddrToAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// ReadFromUDPAddrPort blocks until a datagram arrives or the socket is
// closed (net.ErrClosed).
func (s *blockingUDP) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		s.mu.RLock()
		if s.closed.Load() {
			s.mu.RUnlock()
			return 0, netip.AddrPort{}, net.ErrClosed
		}
		n, from, err := unix.Recvfrom(s.fd, b, 0)
		s.mu.RUnlock()
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			continue // receive timeout or signal: check closed again
		case err != nil:
			return 0, netip.AddrPort{}, err
		case from == nil:
			continue // woken by shutdown(2): closed is set
		}
		return n, sockaddrToAddrPort(from), nil
	}
}

// WriteToUDPAddrPort sends one datagram without waiting for buffer space.
func (s *blockingUDP) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	sa, err := sockaddrOf(addr, s.inet6)
	if err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	if err := unix.Sendto(s.fd, b, unix.MSG_DONTWAIT, sa); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Write implements rawWriter. f sends with MSG_DONTWAIT; when the buffer
// stays full after a few tries the rest of the batch is dropped.
func (s *blockingUDP) Write(f func(fd uintptr) bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for range 4 {
		if s.closed.Load() {
			return net.ErrClosed
		}
		if f(uintptr(s.fd)) {
			return nil
		}
	}
	return errWouldBlock
}

// LocalAddr returns the bound address.
func (s *blockingUDP) LocalAddr() net.Addr { return s.local }

// Close wakes a blocked reader and closes the socket once no system call
// uses it.
func (s *blockingUDP) Close() error {
	if s.closed.Swap(true) {
		return net.ErrClosed
	}
	_ = unix.Shutdown(s.fd, unix.SHUT_RDWR) // ENOTCONN on UDP, but it wakes readers
	s.mu.Lock()
	defer s.mu.Unlock()
	return unix.Close(s.fd)
}
