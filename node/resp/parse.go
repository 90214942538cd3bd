// Package resp implements the client side of the Redis serialization
// protocol: a zero-copy request parser (inline and multibulk commands) and an
// append-style reply writer for RESP2 and RESP3.
//
// The parser never copies argument bytes out of the input for multibulk
// requests: the returned arguments alias the caller's buffer (for example the
// inbound buffer of a gnet connection) and stay valid until that buffer is
// discarded or the next call to [Parser.Parse].
package resp

import (
	"bytes"
	"errors"
	"strconv"
	"unsafe"
)

// Default limits, matching Redis's proto-max-bulk-len and the classic
// multibulk cap.
const (
	DefaultMaxBulkLen      = 512 << 20
	DefaultMaxMultibulkLen = 1024 * 1024
	// MaxInlineLen is the longest inline request or length line accepted
	// (PROTO_INLINE_MAX_SIZE in Redis).
	MaxInlineLen = 64 * 1024

	// Limits applied while a connection still has to authenticate.
	unauthMaxMultibulk = 10
	unauthMaxBulk      = 16384
)

// ErrIncomplete reports that the input holds only part of a request; call
// Parse again once more bytes have arrived, passing the same start (the
// bytes may have moved, but the request must start the input again).
// Parser.Need then says how many bytes the next call needs at least.
var ErrIncomplete = errors.New("resp: incomplete request")

// ProtocolError is a malformed request. Its Msg is the exact error reply
// text Redis sends (without the leading '-'); the connection must be closed
// after replying with it.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return e.Msg }

var (
	errMultibulkLen     = &ProtocolError{"ERR Protocol error: invalid multibulk length"}
	errBulkLen          = &ProtocolError{"ERR Protocol error: invalid bulk length"}
	errTooBigInline     = &ProtocolError{"ERR Protocol error: too big inline request"}
	errTooBigMbulk      = &ProtocolError{"ERR Protocol error: too big mbulk count string"}
	errTooBigBulk       = &ProtocolError{"ERR Protocol error: too big bulk count string"}
	errUnbalanced       = &ProtocolError{"ERR Protocol error: unbalanced quotes in request"}
	errUnauthMultibulk  = &ProtocolError{"ERR Protocol error: unauthenticated multibulk length"}
	errUnauthBulkLength = &ProtocolError{"ERR Protocol error: unauthenticated bulk length"}
)

// Parser parses requests. The zero value is ready to use with the default
// limits. A Parser is not safe for concurrent use; keep one per connection.
type Parser struct {
	// MaxBulkLen caps one argument's length; 0 means DefaultMaxBulkLen.
	MaxBulkLen int64
	// MaxMultibulkLen caps the argument count; 0 means DefaultMaxMultibulkLen.
	MaxMultibulkLen int64
	// Unauthenticated applies Redis's tight limits for clients that have
	// not authenticated yet (10 arguments, 16 KiB bulks).
	Unauthenticated bool

	args    [][]byte
	scratch []byte

	// An incomplete multibulk request, kept so that the next call resumes
	// where this one stopped instead of parsing every argument again:
	// quadratic for a request of many arguments arriving in pieces.
	pendCount int64 // its argument count; 0 when nothing is pending
	pendPos   int   // offset of the next argument's "$" line
	pendOffs  []int // start and end offsets of the arguments parsed so far
	need      int   // least input length that can make progress; 0 = unknown
}

// Need returns, after Parse returned ErrIncomplete, the least input length
// (counted from the request's start) with which the next call can get
// further, or 0 when that is not known (a length line still arriving).
// Callers holding a large partial request use it to wait without
// re-reading the input.
func (p *Parser) Need() int { return p.need }

// Reset drops a pending incomplete request, for a caller that will not
// pass the same request again.
func (p *Parser) Reset() {
	p.pendCount, p.pendPos, p.need = 0, 0, 0
	p.pendOffs = p.pendOffs[:0]
}

// Parse parses one request from the start of b.
//
// On success it returns the arguments and the number of bytes consumed. A
// request with no arguments (an empty inline line, "*0") returns zero args and
// n > 0: skip it. When b holds an incomplete request it returns ErrIncomplete
// and n == 0. On malformed input it returns a *ProtocolError.
//
// The returned slice and its elements are reused by the next call, and the
// elements alias b.
func (p *Parser) Parse(b []byte) (args [][]byte, n int, err error) {
	if p.pendCount != 0 {
		if len(b) > 0 && b[0] == '*' && len(b) >= p.pendPos {
			p.need = 0
			return p.resumeMultibulk(b)
		}
		p.Reset()
	}
	p.need = 0
	if len(b) == 0 {
		return nil, 0, ErrIncomplete
	}
	if b[0] == '*' {
		return p.parseMultibulk(b)
	}
	return p.parseInline(b)
}

// lineEnd finds the '\r' ending the length line that starts at b[from:].
// It returns the index of '\r', or -1 for "need more bytes", or -2 when no
// line end is in reach and the line is already too long.
func lineEnd(b []byte, from int) int {
	lim := len(b)
	if lim-from > MaxInlineLen+2 {
		lim = from + MaxInlineLen + 2
	}
	i := bytes.IndexByte(b[from:lim], '\r')
	if i < 0 {
		if len(b)-from > MaxInlineLen {
			return -2
		}
		return -1
	}
	i += from
	if i+1 >= len(b) { // the '\n' has not arrived yet
		return -1
	}
	return i
}

// shortLen is the fast path of a length line: up to 9 digits without a
// leading zero, then "\r\n" (only '\r' is checked, and the '\n' must
// have arrived, as lineEnd requires). It returns the value and the index of
// '\r', or ok false for anything else (signs, zeros, long or incomplete
// lines), which the general path (lineEnd, ParseInt) then handles.
func shortLen(b []byte, from int) (v int64, cr int, ok bool) {
	i := from
	if i >= len(b) || b[i] < '1' || b[i] > '9' {
		return 0, 0, false
	}
	end := min(len(b), from+9)
	for ; i < end; i++ {
		c := b[i]
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
	}
	if i+1 >= len(b) || b[i] != '\r' {
		return 0, 0, false
	}
	return v, i, true
}

func (p *Parser) parseMultibulk(b []byte) ([][]byte, int, error) {
	count, cr, ok := shortLen(b, 1)
	if !ok {
		cr = lineEnd(b, 1)
		switch cr {
		case -1:
			return nil, 0, ErrIncomplete
		case -2:
			return nil, 0, errTooBigMbulk
		}
		count, ok = ParseInt(b[1:cr])
	}
	maxMB := p.MaxMultibulkLen
	if maxMB <= 0 {
		maxMB = DefaultMaxMultibulkLen
	}
	if !ok || count > maxMB {
		return nil, 0, errMultibulkLen
	}
	if p.Unauthenticated && count > unauthMaxMultibulk {
		return nil, 0, errUnauthMultibulk
	}
	pos := cr + 2
	args := p.args[:0]
	if count <= 0 {
		p.args = args
		return args, pos, nil
	}
	return p.bulks(b, count, pos, args)
}

// resumeMultibulk continues the pending request from its next argument.
func (p *Parser) resumeMultibulk(b []byte) ([][]byte, int, error) {
	return p.bulks(b, p.pendCount, p.pendPos, p.args[:0])
}

// bulks parses the "$" arguments of a request of count arguments from
// offset pos on. When it resumes a pending request, the arguments parsed
// before are in pendOffs and args holds only the new ones: the earlier
// ones are sliced from b once, when the request completes, since b may
// have moved and re-slicing them on every call would be quadratic.
func (p *Parser) bulks(b []byte, count int64, pos int, args [][]byte) ([][]byte, int, error) {
	maxBulk := p.maxBulk()
	have := len(p.pendOffs) / 2
	need := 0
	var err error
	for int64(have+len(args)) < count {
		if pos >= len(b) {
			goto incomplete
		}
		if b[pos] != '$' {
			err = &ProtocolError{"ERR Protocol error: expected '$', got '" + string(b[pos:pos+1]) + "'"}
			goto fail
		}
		l, cr, ok := shortLen(b, pos+1)
		if !ok {
			cr = lineEnd(b, pos+1)
			switch cr {
			case -1:
				goto incomplete
			case -2:
				err = errTooBigBulk
				goto fail
			}
			l, ok = ParseInt(b[pos+1 : cr])
		}
		if !ok || l < 0 || l > maxBulk {
			err = errBulkLen
			goto fail
		}
		if p.Unauthenticated && l > unauthMaxBulk {
			err = errUnauthBulkLength
			goto fail
		}
		start := cr + 2
		if int64(len(b)-start) < l+2 {
			need = start + int(l) + 2
			goto incomplete
		}
		end := start + int(l)
		args = append(args, b[start:end:end])
		pos = end + 2 // like Redis, the trailing CRLF is skipped unchecked
	}
	if have > 0 {
		p.recordOffsets(b, args, have)
		args = args[:0]
		for i := 0; i+1 < len(p.pendOffs); i += 2 {
			s, e := p.pendOffs[i], p.pendOffs[i+1]
			args = append(args, b[s:e:e])
		}
	}
	p.args = args
	if p.pendCount != 0 {
		p.Reset()
	}
	return args, pos, nil
incomplete:
	// Record where the arguments parsed by this call sit, relative to
	// the request's start (only now: the complete path stays lean).
	p.recordOffsets(b, args, have)
	p.args = args
	p.pendCount, p.pendPos, p.need = count, pos, need
	return nil, 0, ErrIncomplete
fail:
	p.args = args
	p.Reset()
	return nil, 0, err
}

// recordOffsets appends to pendOffs the offsets in b of the arguments
// that follow the first have ones (which are already recorded).
func (p *Parser) recordOffsets(b []byte, args [][]byte, have int) {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	for _, a := range args[len(p.pendOffs)/2-have:] {
		if len(a) == 0 {
			// An empty slice's pointer is not advanced; any empty
			// slice of b will do.
			p.pendOffs = append(p.pendOffs, 0, 0)
			continue
		}
		at := int(uintptr(unsafe.Pointer(unsafe.SliceData(a))) - base)
		p.pendOffs = append(p.pendOffs, at, at+len(a))
	}
}

func (p *Parser) maxBulk() int64 {
	if p.MaxBulkLen <= 0 {
		return DefaultMaxBulkLen
	}
	return p.MaxBulkLen
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func (p *Parser) parseInline(b []byte) ([][]byte, int, error) {
	lim := len(b)
	if lim > MaxInlineLen+1 {
		lim = MaxInlineLen + 1
	}
	nl := bytes.IndexByte(b[:lim], '\n')
	if nl < 0 {
		if len(b) > MaxInlineLen {
			return nil, 0, errTooBigInline
		}
		return nil, 0, ErrIncomplete
	}
	line := b[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	// Like a C string, the line ends at the first NUL.
	if z := bytes.IndexByte(line, 0); z >= 0 {
		line = line[:z]
	}
	args, err := p.splitInline(line)
	if err != nil {
		return nil, 0, err
	}
	return args, nl + 1, nil
}

// splitInline splits an inline request into arguments, honouring the
// double-quoted (with \xHH and \n-style escapes) and single-quoted forms that
// redis-cli and telnet users type. Unquoted arguments alias line; quoted
// ones are unescaped into the parser's scratch buffer.
func (p *Parser) splitInline(line []byte) ([][]byte, error) {
	args := p.args[:0]
	if cap(p.scratch) < len(line) {
		p.scratch = make([]byte, 0, len(line))
	}
	sc := p.scratch[:0] // never grows past len(line): unescaping only shrinks
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i >= len(line) {
			break
		}
		start := i
		for i < len(line) && !isSpace(line[i]) && line[i] != '"' && line[i] != '\'' {
			i++
		}
		if i >= len(line) || isSpace(line[i]) {
			args = append(args, line[start:i:i])
			continue
		}
		// The token has a quoted part: build it in the scratch buffer.
		from := len(sc)
		sc = append(sc, line[start:i]...)
		quote := line[i]
		i++
		closed := false
		for i < len(line) {
			c := line[i]
			if quote == '"' {
				if c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]) {
					sc = append(sc, hexVal(line[i+2])<<4|hexVal(line[i+3]))
					i += 4
					continue
				}
				if c == '\\' && i+1 < len(line) {
					e := line[i+1]
					switch e {
					case 'n':
						e = '\n'
					case 'r':
						e = '\r'
					case 't':
						e = '\t'
					case 'b':
						e = '\b'
					case 'a':
						e = '\a'
					}
					sc = append(sc, e)
					i += 2
					continue
				}
			} else if c == '\\' && i+1 < len(line) && line[i+1] == '\'' {
				sc = append(sc, '\'')
				i += 2
				continue
			}
			if c == quote {
				// A closing quote must end the argument.
				if i+1 < len(line) && !isSpace(line[i+1]) {
					p.args = args
					return nil, errUnbalanced
				}
				i++
				closed = true
				break
			}
			sc = append(sc, c)
			i++
		}
		if !closed {
			p.args = args
			return nil, errUnbalanced
		}
		args = append(args, sc[from:len(sc):len(sc)])
	}
	p.scratch = sc
	p.args = args
	return args, nil
}

// ParseInt parses a decimal int64 the strict way Redis does: an optional
// '-', no '+', no leading zeros, no spaces, and no overflow.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := false
	i := 0
	if b[0] == '-' {
		neg = true
		i = 1
		if len(b) == 1 {
			return 0, false
		}
	}
	if b[i] < '1' || b[i] > '9' {
		return 0, false
	}
	var v uint64
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (1<<64-1)/10 {
			return 0, false
		}
		v *= 10
		d := uint64(c - '0')
		if v > 1<<64-1-d {
			return 0, false
		}
		v += d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}

// AppendCommand encodes args as a RESP multibulk request, as a client sends
// it.
func AppendCommand(b []byte, args ...[]byte) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = AppendBulk(b, a)
	}
	return b
}
