package resp

import (
	"math"
	"strconv"
)

// Protocol versions negotiated with HELLO.
const (
	RESP2 = 2
	RESP3 = 3
)

// The Append functions append one encoded reply to b and return the extended
// slice. Those whose encoding differs between RESP2 and RESP3 take proto.

// AppendSimple appends a simple string: +s.
func AppendSimple(b []byte, s string) []byte {
	b = append(b, '+')
	b = appendLine(b, s)
	return append(b, '\r', '\n')
}

// AppendOK appends +OK.
func AppendOK(b []byte) []byte { return append(b, "+OK\r\n"...) }

// AppendError appends an error reply. msg is the text without the leading
// '-', for example "ERR syntax error"; CR and LF in it become spaces so the
// reply stays well-formed.
func AppendError(b []byte, msg string) []byte {
	b = append(b, '-')
	b = appendLine(b, msg)
	return append(b, '\r', '\n')
}

// appendLine appends s with CR and LF replaced by spaces.
func appendLine(b []byte, s string) []byte {
	start := len(b)
	b = append(b, s...)
	for i := start; i < len(b); i++ {
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = ' '
		}
	}
	return b
}

// AppendInt appends an integer reply: :n.
func AppendInt(b []byte, n int64) []byte {
	b = append(b, ':')
	b = strconv.AppendInt(b, n, 10)
	return append(b, '\r', '\n')
}

// AppendBulk appends a bulk string. A nil v is still an empty string, not a
// null; use AppendNull for that.
func AppendBulk(b []byte, v []byte) []byte { return appendBulk(b, v) }

// AppendBulkString appends a bulk string.
func AppendBulkString(b []byte, s string) []byte { return appendBulk(b, s) }

func appendBulk[T []byte | string](b []byte, v T) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(v)), 10)
	b = append(b, '\r', '\n')
	b = append(b, v...)
	return append(b, '\r', '\n')
}

// AppendBulkInt appends n formatted in decimal as a bulk string.
func AppendBulkInt(b []byte, n int64) []byte {
	var tmp [20]byte
	return AppendBulk(b, strconv.AppendInt(tmp[:0], n, 10))
}

// AppendNull appends a null: $-1 in RESP2, _ in RESP3.
func AppendNull(b []byte, proto int) []byte {
	if proto >= RESP3 {
		return append(b, "_\r\n"...)
	}
	return append(b, "$-1\r\n"...)
}

// AppendNullArray appends a null array: *-1 in RESP2, _ in RESP3.
func AppendNullArray(b []byte, proto int) []byte {
	if proto >= RESP3 {
		return append(b, "_\r\n"...)
	}
	return append(b, "*-1\r\n"...)
}

func appendHeader(b []byte, c byte, n int) []byte {
	b = append(b, c)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// AppendArrayLen appends an array header for n elements.
func AppendArrayLen(b []byte, n int) []byte { return appendHeader(b, '*', n) }

// AppendMapLen appends a map header for n key/value pairs: %n in RESP3, an
// array of 2n elements in RESP2.
func AppendMapLen(b []byte, proto, n int) []byte {
	if proto >= RESP3 {
		return appendHeader(b, '%', n)
	}
	return appendHeader(b, '*', 2*n)
}

// AppendSetLen appends a set header: ~n in RESP3, *n in RESP2.
func AppendSetLen(b []byte, proto, n int) []byte {
	if proto >= RESP3 {
		return appendHeader(b, '~', n)
	}
	return appendHeader(b, '*', n)
}

// AppendDouble appends a double: ,f in RESP3, a bulk string in RESP2.
func AppendDouble(b []byte, proto int, f float64) []byte {
	var tmp [32]byte
	var s []byte
	switch {
	case math.IsInf(f, 1):
		s = append(tmp[:0], "inf"...)
	case math.IsInf(f, -1):
		s = append(tmp[:0], "-inf"...)
	case math.IsNaN(f):
		s = append(tmp[:0], "nan"...)
	default:
		s = strconv.AppendFloat(tmp[:0], f, 'g', 17, 64)
		if proto >= RESP3 {
			s = strconv.AppendFloat(tmp[:0], f, 'g', -1, 64)
		}
	}
	if proto >= RESP3 {
		b = append(b, ',')
		b = append(b, s...)
		return append(b, '\r', '\n')
	}
	return AppendBulk(b, s)
}

// AppendBool appends a boolean: #t/#f in RESP3, :1/:0 in RESP2.
func AppendBool(b []byte, proto int, v bool) []byte {
	if proto >= RESP3 {
		if v {
			return append(b, "#t\r\n"...)
		}
		return append(b, "#f\r\n"...)
	}
	if v {
		return append(b, ":1\r\n"...)
	}
	return append(b, ":0\r\n"...)
}

// AppendVerbatim appends a verbatim string with a three-letter format such
// as "txt": =len\r\ntxt:... in RESP3, a plain bulk string in RESP2.
func AppendVerbatim(b []byte, proto int, format string, v []byte) []byte {
	if proto < RESP3 {
		return AppendBulk(b, v)
	}
	b = append(b, '=')
	b = strconv.AppendInt(b, int64(len(v)+4), 10)
	b = append(b, '\r', '\n')
	b = append(b, format...)
	b = append(b, ':')
	b = append(b, v...)
	return append(b, '\r', '\n')
}

// Writer appends replies to Buf in the connection's protocol. It is a thin
// convenience over the Append functions; the zero value writes RESP2.
type Writer struct {
	Buf   []byte
	Proto int
}

// OK appends +OK.
func (w *Writer) OK() { w.Buf = AppendOK(w.Buf) }

// Simple appends a simple string.
func (w *Writer) Simple(s string) { w.Buf = AppendSimple(w.Buf, s) }

// Error appends an error; msg excludes the leading '-'.
func (w *Writer) Error(msg string) { w.Buf = AppendError(w.Buf, msg) }

// Int appends an integer.
func (w *Writer) Int(n int64) { w.Buf = AppendInt(w.Buf, n) }

// Bulk appends a bulk string.
func (w *Writer) Bulk(v []byte) { w.Buf = AppendBulk(w.Buf, v) }

// BulkString appends a bulk string.
func (w *Writer) BulkString(s string) { w.Buf = AppendBulkString(w.Buf, s) }

// Null appends a null bulk ($-1 or _).
func (w *Writer) Null() { w.Buf = AppendNull(w.Buf, w.Proto) }

// NullArray appends a null array (*-1 or _).
func (w *Writer) NullArray() { w.Buf = AppendNullArray(w.Buf, w.Proto) }

// Array appends an array header.
func (w *Writer) Array(n int) { w.Buf = AppendArrayLen(w.Buf, n) }

// Map appends a map header (a flat array in RESP2).
func (w *Writer) Map(n int) { w.Buf = AppendMapLen(w.Buf, w.Proto, n) }

// Set appends a set header (an array in RESP2).
func (w *Writer) Set(n int) { w.Buf = AppendSetLen(w.Buf, w.Proto, n) }

// Double appends a double.
func (w *Writer) Double(f float64) { w.Buf = AppendDouble(w.Buf, w.Proto, f) }

// Bool appends a boolean.
func (w *Writer) Bool(v bool) { w.Buf = AppendBool(w.Buf, w.Proto, v) }

// Verbatim appends a verbatim string (a bulk string in RESP2).
func (w *Writer) Verbatim(format string, v []byte) {
	w.Buf = AppendVerbatim(w.Buf, w.Proto, format, v)
}

// IsWord reports whether b equals the lowercase ASCII word s, ignoring
// case: a command or option name compared without allocating.
func IsWord(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		ch := b[i]
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != s[i] {
			return false
		}
	}
	return true
}

// IsOneOf reports whether b is one of the lowercase ASCII words, ignoring
// case.
func IsOneOf(b []byte, words ...string) bool {
	for _, w := range words {
		if IsWord(b, w) {
			return true
		}
	}
	return false
}
