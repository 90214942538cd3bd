package compare

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Traffic is what a Capture counted: payload bytes (TCP or UDP data, no
// headers), wire bytes (whole IP packets, headers and pure ACKs included)
// and packets, for TCP and UDP separately.
type Traffic struct {
	TCPPayload, TCPWire, TCPPackets uint64
	UDPPayload, UDPWire, UDPPackets uint64
}

// Sub returns t - u.
func (t Traffic) Sub(u Traffic) Traffic {
	return Traffic{
		t.TCPPayload - u.TCPPayload, t.TCPWire - u.TCPWire, t.TCPPackets - u.TCPPackets,
		t.UDPPayload - u.UDPPayload, t.UDPWire - u.UDPWire, t.UDPPackets - u.UDPPackets,
	}
}

// Capture counts the IPv4 TCP and UDP packets on the loopback interface
// that have a source or destination port in [Lo, Hi]. It reads an
// AF_PACKET socket (CAP_NET_RAW) with a classic BPF filter, so it sees
// every packet whatever socket sent it, including connections that open
// and close within the window and UDP heartbeats. On lo the kernel hands a
// packet socket each packet twice (outgoing and incoming); only the
// incoming copy is counted.
type Capture struct {
	Lo, Hi int

	fd      int
	stop    atomic.Bool
	done    chan struct{}
	mu      sync.Mutex
	t       Traffic
	readErr error
}

const (
	captureSnap    = 256 // bytes of each packet copied to us; headers only
	packetOutgoing = 4   // PACKET_OUTGOING
)

// StartCapture opens the packet socket on lo and starts counting.
func StartCapture(lo, hi int) (*Capture, error) {
	ifc, err := net.InterfaceByName("lo")
	if err != nil {
		return nil, fmt.Errorf("capture: %v", err)
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("capture: AF_PACKET socket (needs CAP_NET_RAW): %v", err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	prog := captureFilter(lo, hi)
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
		return nil, fmt.Errorf("capture: attach filter: %v", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
		return nil, fmt.Errorf("capture: bind to lo: %v", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("capture: SO_RCVTIMEO: %v", err)
	}
	// Reset the drop counters (reading them clears them).
	_, _ = unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	ok = true
	c := &Capture{Lo: lo, Hi: hi, fd: fd, done: make(chan struct{})}
	go c.loop()
	return c, nil
}

func (c *Capture) loop() {
	defer close(c.done)
	buf := make([]byte, captureSnap)
	for !c.stop.Load() {
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == packetOutgoing {
			continue
		}
		p, ok := ParsePacket(buf[:n])
		if !ok || !p.inRange(c.Lo, c.Hi) {
			continue // queued before the filter was attached
		}
		c.mu.Lock()
		switch p.Proto {
		case unix.IPPROTO_TCP:
			c.t.TCPPayload += uint64(p.Payload)
			c.t.TCPWire += uint64(p.Wire)
			c.t.TCPPackets++
		case unix.IPPROTO_UDP:
			c.t.UDPPayload += uint64(p.Payload)
			c.t.UDPWire += uint64(p.Wire)
			c.t.UDPPackets++
		}
		c.mu.Unlock()
	}
}

// Snapshot returns the counts so far.
func (c *Capture) Snapshot() (Traffic, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t, c.readErr
}

// Close stops the capture and returns the number of packets the kernel
// dropped because we read too slowly (they are missing from the counts).
func (c *Capture) Close() (drops uint64) {
	c.stop.Store(true)
	<-c.done
	if st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		drops = uint64(st.Drops)
	}
	unix.Close(c.fd)
	return drops
}

// Packet is the part of a captured frame the counters need.
type Packet struct {
	Proto         int // unix.IPPROTO_TCP or unix.IPPROTO_UDP
	SPort, DPort  int
	Wire, Payload int // IP total length; transport payload length
}

func (p Packet) inRange(lo, hi int) bool {
	return (p.SPort >= lo && p.SPort <= hi) || (p.DPort >= lo && p.DPort <= hi)
}

// ParsePacket parses an Ethernet frame as lo delivers it to a packet
// socket (zero MACs, then IPv4) and returns its TCP or UDP ports and
// sizes. Lengths come from the IP and TCP headers, so the frame may be
// truncated after the transport header. ok is false for anything else:
// other protocols, IPv6, non-first fragments, or a truncated header.
func ParsePacket(b []byte) (p Packet, ok bool) {
	const eth = 14
	if len(b) < eth+20 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return p, false
	}
	ip := b[eth:]
	if ip[0]>>4 != 4 {
		return p, false
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ihl < 20 || total < ihl || len(ip) < ihl+8 {
		return p, false
	}
	if binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
		return p, false // a later fragment carries no transport header
	}
	p.Proto, p.Wire = int(ip[9]), total
	l4 := ip[ihl:]
	p.SPort = int(binary.BigEndian.Uint16(l4[0:]))
	p.DPort = int(binary.BigEndian.Uint16(l4[2:]))
	switch p.Proto {
	case unix.IPPROTO_TCP:
		if len(l4) < 13 {
			return p, false
		}
		doff := int(l4[12]>>4) * 4
		if doff < 20 || ihl+doff > total {
			return p, false
		}
		p.Payload = total - ihl - doff
	case unix.IPPROTO_UDP:
		if total < ihl+8 {
			return p, false
		}
		p.Payload = total - ihl - 8
	default:
		return p, false
	}
	return p, true
}

// captureFilter is a classic BPF program that keeps incoming (not
// PACKET_OUTGOING) IPv4 TCP and UDP packets with either port in [lo, hi],
// truncated to captureSnap bytes.
func captureFilter(lo, hi int) []unix.SockFilter {
	const (
		ldW   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		ldH   = unix.BPF_LD | unix.BPF_H | unix.BPF_ABS
		ldB   = unix.BPF_LD | unix.BPF_B | unix.BPF_ABS
		ldHX  = unix.BPF_LD | unix.BPF_H | unix.BPF_IND
		ldxIP = unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jgt   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	pkttype := uint32(0xfffff000 + 4) // SKF_AD_OFF + SKF_AD_PKTTYPE
	l, h := uint32(lo), uint32(hi)
	return []unix.SockFilter{
		/* 0 */ {Code: ldW, K: pkttype},
		/* 1 */ {Code: jeq, K: packetOutgoing, Jt: 13},
		/* 2 */ {Code: ldH, K: 12},
		/* 3 */ {Code: jeq, K: 0x0800, Jf: 11},
		/* 4 */ {Code: ldB, K: 14 + 9},
		/* 5 */ {Code: jeq, K: unix.IPPROTO_TCP, Jt: 1},
		/* 6 */ {Code: jeq, K: unix.IPPROTO_UDP, Jf: 8},
		/* 7 */ {Code: ldxIP, K: 14},
		/* 8 */ {Code: ldHX, K: 14},
		/* 9 */ {Code: jge, K: l, Jf: 1},
		/* 10 */ {Code: jgt, K: h, Jf: 3},
		/* 11 */ {Code: ldHX, K: 16},
		/* 12 */ {Code: jge, K: l, Jf: 2},
		/* 13 */ {Code: jgt, K: h, Jt: 1},
		/* 14 */ {Code: ret, K: captureSnap},
		/* 15 */ {Code: ret, K: 0},
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
