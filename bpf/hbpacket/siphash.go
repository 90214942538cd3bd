package hbpacket

import (
	"encoding/binary"
	"math/bits"
)

// Key is a 128-bit SipHash key. Its first 8 bytes are k0 and its last 8
// bytes k1, both little-endian, as in the SipHash paper.
type Key [16]byte

// Halves returns k0 and k1.
func (k *Key) Halves() (k0, k1 uint64) {
	return binary.LittleEndian.Uint64(k[0:8]), binary.LittleEndian.Uint64(k[8:16])
}

// SipHash24 returns the SipHash-2-4 64-bit MAC of msg under key
// (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012).
func SipHash24(key *Key, msg []byte) uint64 {
	k0, k1 := key.Halves()
	return sipHash24(k0, k1, msg)
}

func sipHash24(k0, k1 uint64, msg []byte) uint64 {
	s := newSipState(k0, k1)
	n := len(msg)
	for len(msg) >= 8 {
		s.block(binary.LittleEndian.Uint64(msg))
		msg = msg[8:]
	}
	// Last block: the remaining bytes, and the length mod 256 in the top byte.
	b := uint64(n) << 56
	for i, c := range msg {
		b |= uint64(c) << (8 * uint(i))
	}
	return s.finish(b)
}

// SipState is SipHash-2-4's internal state (v0..v3) after some whole
// 8-byte blocks have been absorbed.
type SipState [4]uint64

func newSipState(k0, k1 uint64) SipState {
	return SipState{k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573}
}

func (s *SipState) round() {
	v0, v1, v2, v3 := s[0], s[1], s[2], s[3]
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13)
	v1 ^= v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16)
	v3 ^= v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21)
	v3 ^= v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17)
	v1 ^= v2
	v2 = bits.RotateLeft64(v2, 32)
	s[0], s[1], s[2], s[3] = v0, v1, v2, v3
}

// block absorbs one 8-byte message block m (little-endian).
func (s *SipState) block(m uint64) {
	s[3] ^= m
	s.round()
	s.round()
	s[0] ^= m
}

// finish absorbs the final block b and returns the 64-bit tag.
func (s SipState) finish(b uint64) uint64 {
	s.block(b)
	s[2] ^= 0xff
	s.round()
	s.round()
	s.round()
	s.round()
	return s[0] ^ s[1] ^ s[2] ^ s[3]
}

// MACPrefix returns the SipHash-2-4 state under key after the first two
// payload words of a heartbeat of type t with flags from sender, with a
// zero reserved field. Those two words are the same for every PING a peer
// sends (flags 0) and every PONG the XDP program answers with (flags
// FlagKernel), so the program keeps this state in its maps and finishes a
// MAC with three blocks instead of five (20 SipRounds per PING answered
// instead of 32). FinishMAC is the other half.
func MACPrefix(key *Key, t Type, flags uint8, sender uint64) SipState {
	k0, k1 := key.Halves()
	s := newSipState(k0, k1)
	s.block(Word0(t, flags, 0))
	s.block(sender)
	return s
}

// FinishMAC completes the MAC of a payload from the state MACPrefix
// returned for its type and sender, given its last three words.
func FinishMAC(s SipState, seq, sendTime, progress uint64) uint64 {
	s.block(seq)
	s.block(sendTime)
	s.block(progress)
	return s.finish(uint64(MACOffset) << 56)
}

// Word0 is the payload's first 8 bytes read as a little-endian word: the
// magic, the type, the flags and the reserved field.
func Word0(t Type, flags uint8, reserved uint16) uint64 {
	return uint64(binary.LittleEndian.Uint32([]byte(Magic))) | uint64(t)<<32 | uint64(flags)<<40 | uint64(reserved)<<48
}
