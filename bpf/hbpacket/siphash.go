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
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573

	round := func() {
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
	}

	n := len(msg)
	for len(msg) >= 8 {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		round()
		round()
		v0 ^= m
		msg = msg[8:]
	}
	// Last block: the remaining bytes, and the length mod 256 in the top byte.
	b := uint64(n) << 56
	for i, c := range msg {
		b |= uint64(c) << (8 * uint(i))
	}
	v3 ^= b
	round()
	round()
	v0 ^= b

	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}
