package rdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// readBuf is the reader's window on the stream.
const readBuf = 64 << 10

// Error is a malformed, unsupported or unreadable RDB stream. Offset is the
// byte offset in the stream of the item at fault.
type Error struct {
	Offset int64
	Msg    string
	Err    error // the underlying read or callback error, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("rdb: offset %d: %s: %v", e.Offset, e.Msg, e.Err)
	}
	return fmt.Sprintf("rdb: offset %d: %s", e.Offset, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// errTruncated marks an Error raised because the stream ended early.
var errTruncated = errors.New("unexpected end of stream")

// reader is a buffered window on an RDB stream that keeps the CRC64 of
// every byte consumed and the stream offset of the next one.
type reader struct {
	src     io.Reader
	buf     []byte
	r, w    int    // buf[r:w] is read but not yet consumed
	crcFrom int    // buf[crcFrom:r] is consumed but not yet in crc
	crc     uint64 // CRC64 of the stream before buf[crcFrom]
	base    int64  // stream offset of buf[0]
	eof     bool
	err     error // a read error other than io.EOF
}

// offset is the stream offset of the next unconsumed byte.
func (d *reader) offset() int64 { return d.base + int64(d.r) }

// sum is the CRC64 of everything consumed so far.
func (d *reader) sum() uint64 {
	d.crc = CRC64(d.crc, d.buf[d.crcFrom:d.r])
	d.crcFrom = d.r
	return d.crc
}

// fill makes at least n (at most len(buf)) bytes available unless the
// stream ends first, in which case it returns an Error.
func (d *reader) fill(n int, at int64, what string) error {
	for stalls := 0; d.w-d.r < n; {
		if d.eof || d.err != nil {
			if d.err != nil {
				return &Error{Offset: at, Msg: "reading " + what, Err: d.err}
			}
			return &Error{Offset: at, Msg: fmt.Sprintf("%s: stream ends at offset %d", what, d.base+int64(d.w)), Err: errTruncated}
		}
		if len(d.buf)-d.r < n {
			d.sum()
			copy(d.buf, d.buf[d.r:d.w])
			d.base += int64(d.r)
			d.w -= d.r
			d.r, d.crcFrom = 0, 0
		}
		m, err := d.src.Read(d.buf[d.w:])
		d.w += m
		switch {
		case err == io.EOF:
			d.eof = true
		case err != nil:
			d.err = err
		case m == 0:
			if stalls++; stalls > 100 {
				d.err = io.ErrNoProgress
			}
		}
	}
	return nil
}

// next consumes n bytes (n <= readBuf) and returns them; the slice is valid
// until the next call.
func (d *reader) next(n int, what string) ([]byte, error) {
	if d.w-d.r < n {
		if err := d.fill(n, d.offset(), what); err != nil {
			return nil, err
		}
	}
	p := d.buf[d.r : d.r+n]
	d.r += n
	return p, nil
}

func (d *reader) byte(what string) (byte, error) {
	if d.r < d.w {
		b := d.buf[d.r]
		d.r++
		return b, nil
	}
	p, err := d.next(1, what)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// appendN consumes n bytes onto dst. It grows dst as the bytes arrive, so
// a lying length costs no more memory than the stream really holds.
func (d *reader) appendN(dst []byte, n uint64, what string) ([]byte, error) {
	at := d.offset()
	if n > math.MaxInt32*2 {
		return dst, &Error{Offset: at, Msg: fmt.Sprintf("%s: length %d is too large", what, n)}
	}
	dst = slices.Grow(dst, int(min(n, readBuf)))
	for n > 0 {
		if d.r == d.w {
			if err := d.fill(1, at, what); err != nil {
				return dst, err
			}
		}
		k := min(n, uint64(d.w-d.r))
		dst = append(dst, d.buf[d.r:d.r+int(k)]...)
		d.r += int(k)
		n -= k
	}
	return dst, nil
}

// length reads an RDB length. enc reports a special string encoding, whose
// kind is then in n.
func (d *reader) length(what string) (n uint64, enc bool, err error) {
	at := d.offset()
	b, err := d.byte(what)
	if err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case len6:
		return uint64(b & 0x3f), false, nil
	case len14:
		c, err := d.byte(what)
		return uint64(b&0x3f)<<8 | uint64(c), false, err
	case lenEnc:
		return uint64(b & 0x3f), true, nil
	}
	switch b {
	case len32:
		p, err := d.next(4, what)
		if err != nil {
			return 0, false, err
		}
		return uint64(binary.BigEndian.Uint32(p)), false, nil
	case len64:
		p, err := d.next(8, what)
		if err != nil {
			return 0, false, err
		}
		return binary.BigEndian.Uint64(p), false, nil
	}
	return 0, false, &Error{Offset: at, Msg: fmt.Sprintf("%s: bad length byte 0x%02x", what, b)}
}

// plainLength reads a length where a string encoding is not allowed.
func (d *reader) plainLength(what string) (uint64, error) {
	at := d.offset()
	n, enc, err := d.length(what)
	if err == nil && enc {
		err = &Error{Offset: at, Msg: what + ": string encoding where a length belongs"}
	}
	return n, err
}

// str reads one RDB string into dst[:0]. scratch holds LZF input.
func (d *reader) str(dst []byte, scratch *[]byte, what string) ([]byte, error) {
	at := d.offset()
	n, enc, err := d.length(what)
	if err != nil {
		return dst[:0], err
	}
	if !enc {
		return d.appendN(dst[:0], n, what)
	}
	var v int64
	switch n {
	case encInt8:
		b, err := d.byte(what)
		if err != nil {
			return dst[:0], err
		}
		v = int64(int8(b))
	case encInt16:
		p, err := d.next(2, what)
		if err != nil {
			return dst[:0], err
		}
		v = int64(int16(binary.LittleEndian.Uint16(p)))
	case encInt32:
		p, err := d.next(4, what)
		if err != nil {
			return dst[:0], err
		}
		v = int64(int32(binary.LittleEndian.Uint32(p)))
	case encLZF:
		return d.lzf(dst[:0], scratch, at, what)
	default:
		return dst[:0], &Error{Offset: at, Msg: fmt.Sprintf("%s: unknown string encoding %d", what, n)}
	}
	return strconv.AppendInt(dst[:0], v, 10), nil
}

// lzf reads the compressed and uncompressed lengths and the LZF data of a
// compressed string, and decompresses it onto dst.
func (d *reader) lzf(dst []byte, scratch *[]byte, at int64, what string) ([]byte, error) {
	clen, err := d.plainLength(what + " (LZF compressed length)")
	if err != nil {
		return dst, err
	}
	ulen, err := d.plainLength(what + " (LZF length)")
	if err != nil {
		return dst, err
	}
	if clen == 0 || ulen/lzfMaxRatio > clen {
		return dst, &Error{Offset: at, Msg: fmt.Sprintf("%s: LZF lengths %d→%d are impossible", what, clen, ulen)}
	}
	in, err := d.appendN((*scratch)[:0], clen, what+" (LZF data)")
	*scratch = in
	if err != nil {
		return dst, err
	}
	out, err := lzfDecompress(dst, in, int(ulen))
	if err != nil {
		return dst, &Error{Offset: at, Msg: what + ": " + err.Error()}
	}
	return out, nil
}
