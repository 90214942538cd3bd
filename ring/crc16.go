package ring

import (
	"bytes"
	"strings"
)

// Slots is the number of hash slots in a cluster, as in Redis Cluster.
const Slots = 16384

// slotMask keeps the low 14 bits of a CRC; Slots is a power of two.
const slotMask = Slots - 1

// crcTable is built at start-up rather than written out, so its origin (the
// polynomial) is visible and checked by the tests against a bitwise CRC.
var crcTable = makeCRCTable(0x1021)

func makeCRCTable(poly uint16) (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ poly
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}

// CRC16 returns the CRC16-XMODEM checksum of b: polynomial 0x1021, initial
// value 0, no reflection and no final XOR.
func CRC16(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c = c<<8 ^ crcTable[byte(c>>8)^x]
	}
	return c
}

// crc16String is CRC16 over a string, so KeySlotString need not convert.
func crc16String(s string) uint16 {
	var c uint16
	for i := 0; i < len(s); i++ {
		c = c<<8 ^ crcTable[byte(c>>8)^s[i]]
	}
	return c
}

// KeySlot returns the hash slot of key, honouring hash tags: if key holds a
// '{' and the first '}' after it closes a non-empty span, only that span is
// hashed. The result is always below Slots.
func KeySlot(key []byte) uint16 {
	if open := bytes.IndexByte(key, '{'); open >= 0 {
		if n := bytes.IndexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	return CRC16(key) & slotMask
}

// KeySlotString is KeySlot for a string key.
func KeySlotString(key string) uint16 {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	return crc16String(key) & slotMask
}
