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

// crcSlice8 holds the slicing-by-8 tables: crcSlice8[j][v] is the register
// after feeding byte v then j zero bytes from zero. Eight bytes then cost
// eight independent loads instead of a chain of eight dependent ones, which
// makes a typical 16-byte key hash about twice as fast.
var crcSlice8 = func() (t [8][256]uint16) {
	t[0] = crcTable
	for j := 1; j < 8; j++ {
		for v := range 256 {
			c := t[j-1][v]
			t[j][v] = c<<8 ^ crcTable[byte(c>>8)]
		}
	}
	return t
}()

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
func CRC16(b []byte) uint16 { return crc16(b) }

// crc16 is CRC16 over bytes or a string, so KeySlotString need not convert.
func crc16[T []byte | string](b T) uint16 {
	var c uint16
	// The register is 16 bits, so after a block of 8 bytes it only
	// depends on the block with the old register XORed into its first two
	// bytes.
	t := &crcSlice8
	for len(b) >= 8 {
		c = t[7][b[0]^byte(c>>8)] ^ t[6][b[1]^byte(c)] ^ t[5][b[2]] ^ t[4][b[3]] ^
			t[3][b[4]] ^ t[2][b[5]] ^ t[1][b[6]] ^ t[0][b[7]]
		b = b[8:]
	}
	for i := 0; i < len(b); i++ {
		c = c<<8 ^ crcTable[byte(c>>8)^b[i]]
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
	return crc16(key) & slotMask
}
