// Package hbpacket encodes and decodes hearsay heartbeat payloads.
//
// A heartbeat is one UDP datagram whose payload is exactly [Size] bytes,
// little-endian:
//
//	offset  size  field
//	0       4     magic "HBT1"
//	4       1     type (1 PING, 2 PONG)
//	5       1     flags (bit 0, FlagKernel: a PONG the XDP program wrote)
//	6       2     reserved
//	8       8     sender key (first 8 bytes of the node ID)
//	16      8     sequence number
//	24      8     send time, CLOCK_MONOTONIC ns (a PONG echoes the PING's)
//	32      8     progress (the sender's liveness counter)
//	40      8     MAC: SipHash-2-4 of bytes 0..39 under the cluster key,
//	              0 when authentication is off
//
// The same bytes are parsed by the XDP program in ../heartbeat.c.
package hbpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Size is the exact payload length of a heartbeat.
const Size = 48

// MACOffset is where the MAC starts; the MAC covers bytes [0, MACOffset).
const MACOffset = 40

// Magic is the first four payload bytes.
const Magic = "HBT1"

// Type is the heartbeat kind.
type Type uint8

// Heartbeat kinds.
const (
	Ping Type = 1
	Pong Type = 2
)

func (t Type) String() string {
	switch t {
	case Ping:
		return "PING"
	case Pong:
		return "PONG"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// FlagKernel is set in the flags of every PONG the XDP program writes and
// never in one a userspace responder (the UDP fallback, or the XDP node's
// socket path) writes, so the pinger learns which path of the peer
// answered. It is under the MAC like every other byte.
const FlagKernel uint8 = 1 << 0

// Decoding errors. Unmarshal wraps them; test with errors.Is.
var (
	ErrLength = errors.New("hbpacket: payload is not 48 bytes")
	ErrMagic  = errors.New("hbpacket: bad magic")
	ErrType   = errors.New("hbpacket: unknown type")
	ErrMAC    = errors.New("hbpacket: bad MAC")
)

// Packet is a decoded heartbeat payload.
type Packet struct {
	Type     Type
	Flags    uint8
	Reserved uint16
	Sender   uint64 // sender key
	Seq      uint64
	SendTime uint64 // CLOCK_MONOTONIC ns of the PING, echoed in the PONG
	Progress uint64
	MAC      uint64 // as read by Unmarshal; written by Marshal
}

// Marshal writes p into b, which must be at least Size bytes long. When key
// is non-nil the MAC is computed and stored in p.MAC and in b; otherwise the
// MAC field is zero. It returns b[:Size].
func (p *Packet) Marshal(b []byte, key *Key) []byte {
	b = b[:Size]
	copy(b[0:4], Magic)
	b[4] = byte(p.Type)
	b[5] = p.Flags
	binary.LittleEndian.PutUint16(b[6:], p.Reserved)
	binary.LittleEndian.PutUint64(b[8:], p.Sender)
	binary.LittleEndian.PutUint64(b[16:], p.Seq)
	binary.LittleEndian.PutUint64(b[24:], p.SendTime)
	binary.LittleEndian.PutUint64(b[32:], p.Progress)
	p.MAC = 0
	if key != nil {
		p.MAC = SipHash24(key, b[:MACOffset])
	}
	binary.LittleEndian.PutUint64(b[MACOffset:], p.MAC)
	return b
}

// AppendMarshal appends the encoding of p to b.
func (p *Packet) AppendMarshal(b []byte, key *Key) []byte {
	n := len(b)
	b = append(b, make([]byte, Size)...)
	p.Marshal(b[n:], key)
	return b
}

// Unmarshal decodes b into p. It checks the length, magic and type; when key
// is non-nil it also checks the MAC (ErrMAC). With a nil key the MAC field
// is decoded but not checked.
func (p *Packet) Unmarshal(b []byte, key *Key) error {
	if len(b) != Size {
		return fmt.Errorf("%w: got %d", ErrLength, len(b))
	}
	if string(b[0:4]) != Magic {
		return fmt.Errorf("%w: %q", ErrMagic, b[0:4])
	}
	t := Type(b[4])
	if t != Ping && t != Pong {
		return fmt.Errorf("%w: %d", ErrType, b[4])
	}
	*p = Packet{
		Type:     t,
		Flags:    b[5],
		Reserved: binary.LittleEndian.Uint16(b[6:]),
		Sender:   binary.LittleEndian.Uint64(b[8:]),
		Seq:      binary.LittleEndian.Uint64(b[16:]),
		SendTime: binary.LittleEndian.Uint64(b[24:]),
		Progress: binary.LittleEndian.Uint64(b[32:]),
		MAC:      binary.LittleEndian.Uint64(b[40:]),
	}
	if key != nil && SipHash24(key, b[:MACOffset]) != p.MAC {
		return ErrMAC
	}
	return nil
}

// Reply turns a PING into the PONG a userspace responder answers with:
// the sequence number, send time, flags (less FlagKernel) and reserved
// field are echoed, and the sender key and progress are the responder's.
func (p Packet) Reply(ownKey, progress uint64) Packet {
	p.Type = Pong
	p.Flags &^= FlagKernel
	p.Sender = ownKey
	p.Progress = progress
	p.MAC = 0
	return p
}

// KernelReply is the PONG the XDP program answers p with: Reply's, with
// FlagKernel set. The program produces the same bytes.
func (p Packet) KernelReply(ownKey, progress uint64) Packet {
	r := p.Reply(ownKey, progress)
	r.Flags |= FlagKernel
	return r
}
