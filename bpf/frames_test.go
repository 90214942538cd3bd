package bpf

import (
	"encoding/binary"
	"net/netip"

	"github.com/hearsay/hearsay/bpf/hbpacket"
)

// Test frames: Ethernet + IPv4 (no options) or IPv6 + UDP + payload.

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0xa}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0xb}
)

type frameSpec struct {
	v6           bool
	srcMAC       [6]byte
	dstMAC       [6]byte
	src, dst     netip.Addr
	sport, dport uint16
	ttl          uint8
	ipID         uint16
	payload      []byte
}

func csumAdd(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func csumFold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = (sum & 0xffff) + sum>>16
	}
	return uint16(sum)
}

// udpChecksum computes the UDP checksum of the datagram udp (header with a
// zero checksum field, and data) between src and dst.
func udpChecksum(src, dst netip.Addr, udp []byte) uint16 {
	var sum uint32
	sum = csumAdd(sum, src.AsSlice())
	sum = csumAdd(sum, dst.AsSlice())
	sum += 17 + uint32(len(udp))
	sum = csumAdd(sum, udp)
	c := ^csumFold(sum)
	if c == 0 {
		c = 0xffff
	}
	return c
}

func (f frameSpec) build() []byte {
	if f.ttl == 0 {
		f.ttl = 64
	}
	b := make([]byte, 0, 128)
	b = append(b, f.dstMAC[:]...)
	b = append(b, f.srcMAC[:]...)
	udpLen := 8 + len(f.payload)
	udp := make([]byte, 8, udpLen)
	binary.BigEndian.PutUint16(udp[0:], f.sport)
	binary.BigEndian.PutUint16(udp[2:], f.dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen))
	udp = append(udp, f.payload...)
	binary.BigEndian.PutUint16(udp[6:], udpChecksum(f.src, f.dst, udp))
	if f.v6 {
		b = binary.BigEndian.AppendUint16(b, 0x86dd)
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(udpLen))
		ip[6] = 17
		ip[7] = f.ttl
		s, d := f.src.As16(), f.dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		b = append(b, ip...)
	} else {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+udpLen))
		binary.BigEndian.PutUint16(ip[4:], f.ipID)
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
		ip[8] = f.ttl
		ip[9] = 17
		s, d := f.src.As4(), f.dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:], ^csumFold(csumAdd(0, ip)))
		b = append(b, ip...)
	}
	return append(b, udp...)
}

// verifyChecksums checks the IPv4 header checksum and the UDP checksum of
// a frame built like frameSpec.build, independently of how they were made.
func verifyChecksums(frame []byte) (ipOK, udpOK bool) {
	var src, dst netip.Addr
	var udp []byte
	switch binary.BigEndian.Uint16(frame[12:]) {
	case 0x0800:
		ip := frame[14:34]
		ipOK = csumFold(csumAdd(0, ip)) == 0xffff
		src = netip.AddrFrom4([4]byte(ip[12:16]))
		dst = netip.AddrFrom4([4]byte(ip[16:20]))
		udp = frame[34 : 14+int(binary.BigEndian.Uint16(ip[2:]))]
	case 0x86dd:
		ip := frame[14:54]
		ipOK = true // IPv6 has no header checksum
		src = netip.AddrFrom16([16]byte(ip[8:24]))
		dst = netip.AddrFrom16([16]byte(ip[24:40]))
		udp = frame[54 : 54+int(binary.BigEndian.Uint16(ip[4:]))]
	default:
		return false, false
	}
	if binary.BigEndian.Uint16(udp[6:]) == 0 {
		return ipOK, false // we always require a checksum
	}
	var sum uint32
	sum = csumAdd(sum, src.AsSlice())
	sum = csumAdd(sum, dst.AsSlice())
	sum += 17 + uint32(len(udp))
	sum = csumAdd(sum, udp)
	return ipOK, csumFold(sum) == 0xffff
}

func payload(p hbpacket.Packet, key *hbpacket.Key) []byte {
	return p.Marshal(make([]byte, hbpacket.Size), key)
}
