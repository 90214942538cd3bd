package resp

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func strs(args [][]byte) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = string(a)
	}
	return out
}

func TestParseOK(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		n    int
	}{
		{"*1\r\n$4\r\nPING\r\n", []string{"PING"}, 14},
		{"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$0\r\n\r\n", []string{"SET", "a", ""}, 26},
		{"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\nextra", []string{"GET", "foo"}, 22},
		{"*0\r\n", []string{}, 4},
		{"*-1\r\n", []string{}, 5},
		{"PING\r\n", []string{"PING"}, 6},
		{"PING\n", []string{"PING"}, 5},
		{"  set  a   b \r\n", []string{"set", "a", "b"}, 15},
		{"\r\n", []string{}, 2},
		{`set "a b" 'c d'` + "\n", []string{"set", "a b", "c d"}, 16},
		{`echo "\x41\n\t\\\"" ` + "\n", []string{"echo", "A\n\t\\\""}, 21},
		{`echo 'it\'s'` + "\n", []string{"echo", "it's"}, 13},
		{`echo a"b c"` + "\n", []string{"echo", "ab c"}, 12},
		{`echo ""` + "\n", []string{"echo", ""}, 8},
		{"echo a\x00b\n", []string{"echo", "a"}, 9},
		// Binary-safe bulk containing CRLF.
		{"*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\r\n\r\n", []string{"ECHO", "\r\n\r\n"}, 24},
	}
	for _, tt := range tests {
		var p Parser
		args, n, err := p.Parse([]byte(tt.in))
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if n != tt.n || strings.Join(strs(args), "|") != strings.Join(tt.want, "|") || len(args) != len(tt.want) {
			t.Errorf("Parse(%q) = %q, %d; want %q, %d", tt.in, strs(args), n, tt.want, tt.n)
		}
	}
}

func TestParseIncomplete(t *testing.T) {
	full := "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"
	for i := 0; i < len(full); i++ {
		var p Parser
		_, n, err := p.Parse([]byte(full[:i]))
		if err != ErrIncomplete || n != 0 {
			t.Fatalf("prefix %q: n=%d err=%v, want ErrIncomplete", full[:i], n, err)
		}
	}
	for _, in := range []string{"PING", "PING\r", `set "a`} {
		var p Parser
		if _, _, err := p.Parse([]byte(in)); err != ErrIncomplete {
			t.Errorf("%q: err=%v, want ErrIncomplete", in, err)
		}
	}
}

func TestParseProtocolErrors(t *testing.T) {
	big := strings.Repeat("a", MaxInlineLen+1)
	tests := []struct {
		in   string
		p    Parser
		want string
	}{
		{"*abc\r\n", Parser{}, "ERR Protocol error: invalid multibulk length"},
		{"*+1\r\n", Parser{}, "ERR Protocol error: invalid multibulk length"},
		{"*01\r\n", Parser{}, "ERR Protocol error: invalid multibulk length"},
		{"*1048577\r\n", Parser{}, "ERR Protocol error: invalid multibulk length"},
		{"*11\r\n", Parser{MaxMultibulkLen: 10}, "ERR Protocol error: invalid multibulk length"},
		{"*1\r\nx3\r\nfoo\r\n", Parser{}, "ERR Protocol error: expected '$', got 'x'"},
		{"*1\r\n$-1\r\n", Parser{}, "ERR Protocol error: invalid bulk length"},
		{"*1\r\n$abc\r\n", Parser{}, "ERR Protocol error: invalid bulk length"},
		{"*1\r\n$536870913\r\n", Parser{}, "ERR Protocol error: invalid bulk length"},
		{"*1\r\n$11\r\n", Parser{MaxBulkLen: 10}, "ERR Protocol error: invalid bulk length"},
		{big, Parser{}, "ERR Protocol error: too big inline request"},
		{"*" + big, Parser{}, "ERR Protocol error: too big mbulk count string"},
		{"*1\r\n$" + big, Parser{}, "ERR Protocol error: too big bulk count string"},
		{`set "a` + "\n", Parser{}, "ERR Protocol error: unbalanced quotes in request"},
		{`set "a"b` + "\n", Parser{}, "ERR Protocol error: unbalanced quotes in request"},
		{`set 'a` + "\n", Parser{}, "ERR Protocol error: unbalanced quotes in request"},
		{"*11\r\n", Parser{Unauthenticated: true}, "ERR Protocol error: unauthenticated multibulk length"},
		{"*1\r\n$16385\r\n", Parser{Unauthenticated: true}, "ERR Protocol error: unauthenticated bulk length"},
	}
	for _, tt := range tests {
		p := tt.p
		_, n, err := p.Parse([]byte(tt.in))
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Msg != tt.want || n != 0 {
			t.Errorf("Parse(%.40q) = n %d, %v; want %q", tt.in, n, err, tt.want)
		}
	}
}

func TestParsePipelineReusesArgs(t *testing.T) {
	in := []byte("*1\r\n$4\r\nPING\r\nECHO hi\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
	var p Parser
	var got []string
	for len(in) > 0 {
		args, n, err := p.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join(strs(args), " "))
		in = in[n:]
	}
	if strings.Join(got, ",") != "PING,ECHO hi,GET k" {
		t.Fatalf("got %q", got)
	}
}

func TestParseInt(t *testing.T) {
	ok := map[string]int64{"0": 0, "1": 1, "-1": -1, "9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63}
	for s, want := range ok {
		if v, good := ParseInt([]byte(s)); !good || v != want {
			t.Errorf("ParseInt(%q) = %d, %v", s, v, good)
		}
	}
	for _, s := range []string{"", "-", "+1", "01", "-0", " 1", "1 ", "9223372036854775808", "-9223372036854775809", "1a", "99999999999999999999"} {
		if _, good := ParseInt([]byte(s)); good {
			t.Errorf("ParseInt(%q) accepted", s)
		}
	}
}

func TestWriter(t *testing.T) {
	tests := []struct {
		f         func(w *Writer)
		want2, w3 string
	}{
		{func(w *Writer) { w.OK() }, "+OK\r\n", "+OK\r\n"},
		{func(w *Writer) { w.Error("ERR x\r\ny") }, "-ERR x  y\r\n", "-ERR x  y\r\n"},
		{func(w *Writer) { w.Int(-5) }, ":-5\r\n", ":-5\r\n"},
		{func(w *Writer) { w.Bulk([]byte("hi")) }, "$2\r\nhi\r\n", "$2\r\nhi\r\n"},
		{func(w *Writer) { w.Null() }, "$-1\r\n", "_\r\n"},
		{func(w *Writer) { w.NullArray() }, "*-1\r\n", "_\r\n"},
		{func(w *Writer) { w.Map(2) }, "*4\r\n", "%2\r\n"},
		{func(w *Writer) { w.Set(3) }, "*3\r\n", "~3\r\n"},
		{func(w *Writer) { w.Double(1.5) }, "$3\r\n1.5\r\n", ",1.5\r\n"},
		{func(w *Writer) { w.Bool(true) }, ":1\r\n", "#t\r\n"},
		{func(w *Writer) { w.Verbatim("txt", []byte("a")) }, "$1\r\na\r\n", "=5\r\ntxt:a\r\n"},
		{func(w *Writer) { w.Simple("PONG") }, "+PONG\r\n", "+PONG\r\n"},
	}
	for i, tt := range tests {
		w2 := Writer{Proto: 2}
		tt.f(&w2)
		w3 := Writer{Proto: 3}
		tt.f(&w3)
		if string(w2.Buf) != tt.want2 || string(w3.Buf) != tt.w3 {
			t.Errorf("%d: got %q / %q, want %q / %q", i, w2.Buf, w3.Buf, tt.want2, tt.w3)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n", "PING\r\n", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", `set "a\x41" 'b\'c'` + "\n",
		"*-1\r\n", "*1\r\n$-1\r\n", "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$0\r\n\r\n", "\r\n", "*1\r\nx", "echo a\"b c\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		p := Parser{MaxBulkLen: 1 << 20, MaxMultibulkLen: 1 << 16}
		rest := in
		for steps := 0; len(rest) > 0; steps++ {
			if steps > len(in) {
				t.Fatalf("no progress parsing %q", in)
			}
			args, n, err := p.Parse(rest)
			if err != nil {
				if n != 0 {
					t.Fatalf("error with n=%d", n)
				}
				break
			}
			if n <= 0 || n > len(rest) {
				t.Fatalf("consumed %d of %d", n, len(rest))
			}
			// Re-encoding and re-parsing gives the same arguments.
			want := make([][]byte, len(args))
			for i, a := range args {
				want[i] = bytes.Clone(a)
			}
			enc := AppendCommand(nil, want...)
			var q Parser
			got, m, err := q.Parse(enc)
			if len(want) == 0 {
				if err != nil || m != len(enc) || len(got) != 0 {
					t.Fatalf("empty command re-parse: %v %d", err, m)
				}
			} else if err != nil || m != len(enc) || len(got) != len(want) {
				t.Fatalf("re-parse of %q: n=%d/%d err=%v", enc, m, len(enc), err)
			} else {
				for i := range want {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("arg %d: %q != %q", i, got[i], want[i])
					}
				}
			}
			rest = rest[n:]
		}
		if !bytes.Equal(in, orig) {
			t.Fatal("parser modified its input")
		}
	})
}

func BenchmarkParseMultibulk(b *testing.B) {
	in := []byte("*3\r\n$3\r\nSET\r\n$16\r\nkey:000000012345\r\n$32\r\n" + strings.Repeat("v", 32) + "\r\n")
	var p Parser
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := p.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
}

func BenchmarkParsePipeline16(b *testing.B) {
	one := "*2\r\n$3\r\nGET\r\n$16\r\nkey:000000012345\r\n"
	in := []byte(strings.Repeat(one, 16))
	var p Parser
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		rest := in
		for len(rest) > 0 {
			_, n, err := p.Parse(rest)
			if err != nil {
				b.Fatal(err)
			}
			rest = rest[n:]
		}
	}
	b.ReportMetric(float64(b.N)*16/b.Elapsed().Seconds(), "cmds/s")
}

func BenchmarkParseInline(b *testing.B) {
	in := []byte("SET key:000000012345 " + strings.Repeat("v", 32) + "\r\n")
	var p Parser
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := p.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteReplies(b *testing.B) {
	val := []byte(strings.Repeat("v", 32))
	w := Writer{Buf: make([]byte, 0, 4096), Proto: 2}
	b.ReportAllocs()
	for b.Loop() {
		w.Buf = w.Buf[:0]
		w.OK()
		w.Bulk(val)
		w.Int(12345)
		w.Null()
		w.Array(2)
		w.Map(1)
		w.Error("ERR syntax error")
		w.Buf = strconv.AppendInt(w.Buf, 1, 10)
	}
}

// A request arriving in pieces is parsed with one Parser, resuming each
// time: the input grows from the same start and moves to a new buffer
// between calls (as a connection's buffer does). Need says how far the
// input must grow when a bulk's length is known.
func TestParseResumes(t *testing.T) {
	full := "*4\r\n$3\r\nSET\r\n$0\r\n\r\n$10\r\n0123456789\r\n$2\r\nhi\r\nPING\r\n"
	reqLen := len(full) - len("PING\r\n")
	var p Parser
	for i := 1; i < reqLen; i++ {
		in := []byte(full[:i]) // a fresh copy: offsets, not pointers, carry over
		args, n, err := p.Parse(in)
		if err != ErrIncomplete || n != 0 || args != nil {
			t.Fatalf("prefix %d: %q %d %v, want ErrIncomplete", i, args, n, err)
		}
		if need := p.Need(); need != 0 && (need <= i || need > reqLen) {
			t.Fatalf("prefix %d: Need %d, outside (%d, %d]", i, need, i, reqLen)
		}
	}
	// Inside the 10-byte bulk, the whole bulk and its CRLF are needed.
	bulkEnd := strings.Index(full, "0123456789") + 12
	if _, _, err := p.Parse([]byte(full[:bulkEnd-5])); err != ErrIncomplete || p.Need() != bulkEnd {
		t.Fatalf("Need inside the bulk: %d, %v; want %d", p.Need(), err, bulkEnd)
	}
	args, n, err := p.Parse([]byte(full))
	if err != nil || n != reqLen || strings.Join(strs(args), ",") != "SET,,0123456789,hi" {
		t.Fatalf("complete: %q %d %v", args, n, err)
	}
	// The state is gone: the next request parses from scratch.
	args, n, err = p.Parse([]byte(full[n:]))
	if err != nil || n != 6 || strings.Join(strs(args), ",") != "PING" {
		t.Fatalf("next request: %q %d %v", args, n, err)
	}
}

// An input that cannot be the pending request (it starts with something
// else, or is shorter than what was parsed) drops the pending state.
func TestParseResumeGuards(t *testing.T) {
	var p Parser
	if _, _, err := p.Parse([]byte("*2\r\n$3\r\nGET\r\n$1\r")); err != ErrIncomplete {
		t.Fatal(err)
	}
	args, _, err := p.Parse([]byte("*1\r\n$1\r\nx\r\n")) // shorter than what was parsed
	if err != nil || strings.Join(strs(args), ",") != "x" {
		t.Fatalf("after a shorter input: %q %v", args, err)
	}
	if _, _, err := p.Parse([]byte("*2\r\n$3\r\nGET\r\n")); err != ErrIncomplete {
		t.Fatal(err)
	}
	p.Reset()
	args, _, err = p.Parse([]byte("*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n"))
	if err != nil || strings.Join(strs(args), ",") != "ECHO,x" {
		t.Fatalf("after Reset: %q %v", args, err)
	}
}

// Parsing a request of many arguments that arrives in small pieces costs
// about as much as parsing it once (each call resumes), compared in the
// same run against parsing it whole.
func BenchmarkParseArrivingInPieces(b *testing.B) {
	const nargs = 20000
	var req []byte
	req = append(req, "*"+strconv.Itoa(nargs)+"\r\n"...)
	for i := 0; i < nargs; i++ {
		req = append(req, "$5\r\nvalue\r\n"...)
	}
	b.Run("whole", func(b *testing.B) {
		var p Parser
		for b.Loop() {
			if _, _, err := p.Parse(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1KiB-pieces", func(b *testing.B) {
		var p Parser
		for b.Loop() {
			for end := 1024; ; end += 1024 {
				_, _, err := p.Parse(req[:min(end, len(req))])
				if err == nil {
					break
				}
				if err != ErrIncomplete {
					b.Fatal(err)
				}
			}
		}
	})
}

// FuzzParseInPieces checks resumption against a whole parse: the first
// request of the input, fed as growing prefixes (each a fresh copy) to one
// Parser, gives the same arguments, length or error as parsing it whole.
func FuzzParseInPieces(f *testing.F) {
	for _, s := range []string{
		"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$0\r\n\r\n", "*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\n",
		"*2\r\n$3\r\nGET\r\nx1\r\nk\r\n", "*1\r\n$-1\r\n", "PING\r\n", "*2\r\n$1\r\na\r\n$1\r",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		st := int(step%16) + 1
		var whole Parser
		wantArgs, wantN, wantErr := whole.Parse(in)
		want := strings.Join(strs(wantArgs), "\x00")
		var p Parser
		for end := st; ; end += st {
			end = min(end, len(in))
			args, n, err := p.Parse(bytes.Clone(in[:end]))
			if err == ErrIncomplete && end < len(in) {
				if need := p.Need(); need != 0 && need <= end {
					t.Fatalf("Need %d with %d bytes in hand", need, end)
				}
				continue
			}
			got := strings.Join(strs(args), "\x00")
			if n != wantN || got != want || (err == nil) != (wantErr == nil) ||
				(err != nil && err.Error() != wantErr.Error()) {
				t.Fatalf("in pieces of %d: %q %d %v; whole: %q %d %v", st, got, n, err, want, wantN, wantErr)
			}
			return
		}
	})
}
