package rdb

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// flushAt is the buffered size at which a Writer hands its bytes on; values
// longer than half of it bypass the buffer.
const flushAt = 64 << 10

// Writer streams an RDB file; it keeps the running CRC of everything
// written. Calls must come in file order: Header, then for each database
// SelectDB and its keys, then Finish. After the first write error every
// call returns that error.
type Writer struct {
	w   io.Writer
	buf []byte
	crc uint64 // CRC64 of the bytes already handed to w
	n   int64  // bytes already handed to w
	err error
}

// NewWriter returns a Writer writing to w. It buffers internally, so w need
// not be buffered; Finish flushes.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, flushAt+1024)}
}

// Header writes "REDIS0010" and the AUX fields in order (pairs: name,
// value), for example redis-ver, redis-bits, ctime, used-mem,
// repl-stream-db, repl-id, repl-offset, aof-base.
func (w *Writer) Header(aux ...[2]string) error {
	w.buf = fmt.Appendf(w.buf, "REDIS%04d", Version)
	for _, a := range aux {
		w.buf = append(w.buf, opAux)
		w.buf = appendString(w.buf, []byte(a[0]))
		w.buf = appendString(w.buf, []byte(a[1]))
	}
	return w.maybeFlush()
}

// SelectDB writes SELECTDB db and RESIZEDB size expires: the database the
// following keys belong to, how many keys it has and how many of them have
// an expiry (hints a loader may use to size its tables).
func (w *Writer) SelectDB(db int, size, expires uint64) error {
	if db < 0 {
		return fmt.Errorf("rdb: negative database number %d", db)
	}
	w.buf = append(w.buf, opSelectDB)
	w.buf = appendLen(w.buf, uint64(db))
	w.buf = append(w.buf, opResizeDB)
	w.buf = appendLen(w.buf, size)
	w.buf = appendLen(w.buf, expires)
	return w.maybeFlush()
}

// String writes one string key; expireAtMs is a unix time in milliseconds,
// 0 for none (it is written with the EXPIRETIME_MS opcode).
func (w *Writer) String(key, val []byte, expireAtMs int64) error {
	if w.err != nil {
		return w.err
	}
	if expireAtMs != 0 {
		w.buf = append(w.buf, opExpireMs)
		w.buf = binary.LittleEndian.AppendUint64(w.buf, uint64(expireAtMs))
	}
	w.buf = append(w.buf, typeString)
	w.buf = appendString(w.buf, key)
	if len(val) > flushAt/2 {
		// A long value goes straight to w rather than through the buffer.
		w.buf = appendLen(w.buf, uint64(len(val)))
		if err := w.flush(); err != nil {
			return err
		}
		return w.write(val)
	}
	w.buf = appendString(w.buf, val)
	return w.maybeFlush()
}

// Finish writes EOF and the 8-byte little-endian CRC64 trailer, and
// flushes. It does not close or sync the underlying writer.
func (w *Writer) Finish() error {
	w.buf = append(w.buf, opEOF)
	if err := w.flush(); err != nil {
		return err
	}
	var sum [8]byte
	binary.LittleEndian.PutUint64(sum[:], w.crc)
	return w.write(sum[:])
}

// Written is how many bytes were written so far, buffered ones included.
func (w *Writer) Written() int64 { return w.n + int64(len(w.buf)) }

func (w *Writer) maybeFlush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) >= flushAt {
		return w.flush()
	}
	return nil
}

func (w *Writer) flush() error {
	if w.err != nil {
		return w.err
	}
	err := w.write(w.buf)
	w.buf = w.buf[:0]
	return err
}

func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	w.crc = CRC64(w.crc, p)
	n, err := w.w.Write(p)
	w.n += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("rdb: write: %w", err)
	}
	return w.err
}

// appendLen appends an RDB length: 6, 14, 32 or 64 bits, whichever fits.
func appendLen(b []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, byte(n>>8)|len14<<6, byte(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, len32), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, len64), n)
	}
}

// appendString appends s in the RDB string encoding. Like Redis, a string
// that is the canonical decimal form of a 32-bit integer is written as that
// integer in one, two or four bytes; everything else is length-prefixed.
func appendString(b, s []byte) []byte {
	if v, ok := smallInt(s); ok {
		switch {
		case v >= math.MinInt8 && v <= math.MaxInt8:
			return append(b, lenEnc<<6|encInt8, byte(v))
		case v >= math.MinInt16 && v <= math.MaxInt16:
			return binary.LittleEndian.AppendUint16(append(b, lenEnc<<6|encInt16), uint16(v))
		default:
			return binary.LittleEndian.AppendUint32(append(b, lenEnc<<6|encInt32), uint32(v))
		}
	}
	return append(appendLen(b, uint64(len(s))), s...)
}

// smallInt parses s if it is exactly how a 32-bit integer prints: no sign
// but '-', no leading zeros, no "-0". Only then does the integer encoding
// give the same bytes back.
func smallInt(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 11 {
		return 0, false
	}
	i := 0
	if s[0] == '-' {
		i = 1
		if len(s) == 1 || s[1] == '0' {
			return 0, false
		}
	}
	if s[i] == '0' && len(s) > 1 {
		return 0, false
	}
	var v int64
	for ; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + int64(c)
	}
	if s[0] == '-' {
		v = -v
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, false
	}
	return v, true
}
