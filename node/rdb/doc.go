// Package rdb reads and writes the subset of Redis's RDB snapshot format that
// hearsay needs: string keys with optional millisecond expiry, AUX fields and
// the database selectors around them, in the layout Redis 7.0 writes
// (RDB version 10). It also builds and checks DUMP payloads of string values,
// which use the same string encoding.
//
// The reader accepts every string encoding Redis writes (length-prefixed,
// int8/16/32 and LZF-compressed) and RDB versions 1 through 11; it rejects
// everything it cannot represent (non-string types, modules, functions)
// with an error naming the byte offset, so a caller can refuse a snapshot
// rather than load part of it. The package does no I/O of its own beyond
// the io.Reader and io.Writer it is handed.
package rdb

// Opcodes and types of the RDB format.
const (
	opFunctionPreGA = 0xF6 // function library, 7.0 release-candidate form
	opFunction2     = 0xF5 // function library (Redis 7.0+)
	opModuleAux     = 0xF7 // module auxiliary data
	opIdle          = 0xF8 // LRU idle time of the next key, seconds
	opFreq          = 0xF9 // LFU counter of the next key, one byte
	opAux           = 0xFA // name/value string pair
	opResizeDB      = 0xFB // hash table size hints: keys, keys with expiry
	opExpireMs      = 0xFC // expiry of the next key, int64 ms little-endian
	opExpireSec     = 0xFD // expiry of the next key, int32 s little-endian
	opSelectDB      = 0xFE // database number
	opEOF           = 0xFF // end of data; the CRC64 trailer follows

	typeString = 0  // the only value type hearsay stores
	typeMaxRDB = 21 // highest value type number Redis 7.x defines

	// The top two bits of a length byte.
	len6   = 0 // 6-bit length in the low bits
	len14  = 1 // 14-bit length: low bits and the next byte
	lenXX  = 2 // 0x80: 32-bit big-endian length follows; 0x81: 64-bit
	lenEnc = 3 // special string encoding in the low bits

	len32 = 0x80
	len64 = 0x81

	encInt8  = 0
	encInt16 = 1
	encInt32 = 2
	encLZF   = 3
)

// Version is the RDB version written (Redis 7.0 writes 10).
const Version = 10

// minVersion and maxVersion bound the versions Load accepts. Version 11 is
// Redis 7.2's; its string and opcode layout is unchanged.
const (
	minVersion = 1
	maxVersion = 11
)
