package rdb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestCRC64(t *testing.T) {
	if got := CRC64(0, []byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("CRC64(123456789) = %016x, want e9c6d914c4b8d9ca", got)
	}
	// Any split of the input gives the same CRC as one pass, and the
	// eight-byte path agrees with the bytewise one.
	data := []byte(strings.Repeat("hearsay speaks RESP; ", 40))
	whole := CRC64(0, data)
	bitwise := uint64(0)
	for _, b := range data {
		bitwise ^= uint64(b)
		for range 8 {
			if bitwise&1 != 0 {
				bitwise = bitwise>>1 ^ crcPoly
			} else {
				bitwise >>= 1
			}
		}
	}
	if whole != bitwise {
		t.Fatalf("table CRC %016x, bit-at-a-time %016x", whole, bitwise)
	}
	for i := range len(data) {
		if got := CRC64(CRC64(0, data[:i]), data[i:]); got != whole {
			t.Fatalf("split at %d: %016x, want %016x", i, got, whole)
		}
	}
}

// sample is a set of keys covering every string form the writer chooses.
func sample() []Entry {
	es := []Entry{
		{Key: []byte("empty"), Value: []byte{}},
		{Key: []byte("raw"), Value: []byte("hello world")},
		{Key: []byte("int8"), Value: []byte("-128"), ExpireAtMs: 1_900_000_000_123},
		{Key: []byte("int16"), Value: []byte("32767")},
		{Key: []byte("int32"), Value: []byte("-2147483648")},
		{Key: []byte("notint-big"), Value: []byte("2147483648")},
		{Key: []byte("notint-zero"), Value: []byte("007")},
		{Key: []byte("notint-minus0"), Value: []byte("-0")},
		{Key: []byte("notint-plus"), Value: []byte("+5")},
		{Key: []byte("zero"), Value: []byte("0")},
		{Key: []byte("binary\x00\xff"), Value: []byte("\x00\x01\x02\xfe\xff")},
		{Key: []byte("len14"), Value: bytes.Repeat([]byte("x"), 300)},
		{Key: []byte("len32"), Value: bytes.Repeat([]byte("abcdefgh"), 20000), ExpireAtMs: 1},
		{Key: []byte("12345"), Value: []byte("a key that is an integer")},
	}
	for i := range 200 {
		es = append(es, Entry{Key: fmt.Appendf(nil, "k:%d", i), Value: fmt.Appendf(nil, "v%d", i*i), ExpireAtMs: int64(i%3) * 1_800_000_000_000})
	}
	return es
}

func write(t testing.TB, es []Entry, aux ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	expires := 0
	for _, e := range es {
		if e.ExpireAtMs != 0 {
			expires++
		}
	}
	must(t, w.Header(aux...))
	must(t, w.SelectDB(0, uint64(len(es)), uint64(expires)))
	for _, e := range es {
		must(t, w.String(e.Key, e.Value, e.ExpireAtMs))
	}
	must(t, w.Finish())
	if w.Written() != int64(buf.Len()) {
		t.Fatalf("Written() = %d, %d bytes in the buffer", w.Written(), buf.Len())
	}
	return buf.Bytes()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// loadAll loads p and copies every entry out.
func loadAll(p []byte) ([]Entry, Info, error) {
	var es []Entry
	info, err := Load(bytes.NewReader(p), func(e Entry) error {
		es = append(es, Entry{Key: bytes.Clone(e.Key), Value: bytes.Clone(e.Value), ExpireAtMs: e.ExpireAtMs, DB: e.DB})
		return nil
	})
	return es, info, err
}

func sameEntries(t *testing.T, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || g.ExpireAtMs != w.ExpireAtMs || g.DB != w.DB {
			t.Fatalf("entry %d: got %q=%.40q exp %d db %d, want %q=%.40q exp %d db %d",
				i, g.Key, g.Value, g.ExpireAtMs, g.DB, w.Key, w.Value, w.ExpireAtMs, w.DB)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	aux := [][2]string{{"redis-ver", "7.0.15"}, {"redis-bits", "64"}, {"ctime", "1765000000"}, {"repl-offset", "-1"}}
	p := write(t, sample(), aux...)
	got, info, err := loadAll(p)
	must(t, err)
	sameEntries(t, got, sample())
	if info.Version != Version || info.Keys != int64(len(got)) || info.Bytes != int64(len(p)) {
		t.Fatalf("info %+v", info)
	}
	if fmt.Sprint(info.Aux) != fmt.Sprint(aux) {
		t.Fatalf("aux %v, want %v", info.Aux, aux)
	}
	if len(info.DBs) != 1 || info.DBs[0].Keys != uint64(len(got)) {
		t.Fatalf("DBs %+v", info.DBs)
	}
	if info.Checksum == 0 || info.Checksum != CRC64(0, p[:len(p)-8]) {
		t.Fatalf("checksum %016x", info.Checksum)
	}
}

// The integer forms are as short as Redis makes them.
func TestStringEncoding(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{"0", "\xc0\x00"}, {"-1", "\xc0\xff"}, {"127", "\xc0\x7f"}, {"128", "\xc1\x80\x00"},
		{"-32768", "\xc1\x00\x80"}, {"65536", "\xc2\x00\x00\x01\x00"},
		{"01", "\x0201"}, {"-0", "\x02-0"}, {"", "\x00"}, {"4294967296", "\x0a4294967296"},
	} {
		if got := string(appendString(nil, []byte(c.in))); got != c.want {
			t.Errorf("%q encodes as %q, want %q", c.in, got, c.want)
		}
	}
	if got := appendLen(nil, 16383); !bytes.Equal(got, []byte{0x7f, 0xff}) {
		t.Errorf("len 16383: % x", got)
	}
	if got := appendLen(nil, 16384); !bytes.Equal(got, []byte{0x80, 0, 0, 0x40, 0}) {
		t.Errorf("len 16384: % x", got)
	}
	if got := appendLen(nil, 1<<32); !bytes.Equal(got, []byte{0x81, 0, 0, 0, 1, 0, 0, 0, 0}) {
		t.Errorf("len 2^32: % x", got)
	}
}

// A hand-built file with what Redis writes and Writer never does: LZF,
// 64-bit lengths, EXPIRETIME in seconds, IDLE/FREQ, two databases, and a
// disabled (zero) checksum.
func TestLoadForms(t *testing.T) {
	var b []byte
	b = append(b, "REDIS0009"...)
	b = append(b, opAux, 3, 'a', 'b', 'c', 0xc0, 7)
	b = append(b, opSelectDB, 3, opResizeDB, 2, 1)
	b = append(b, opExpireSec, 0x10, 0, 0, 0, opIdle, 5, opFreq, 9)
	b = append(b, typeString, 1, 'k', 0x81, 0, 0, 0, 0, 0, 0, 0, 2, 'h', 'i')
	// "aaaaaaaaaa": literal 'a', then a back reference of 9 bytes 1 back.
	b = append(b, typeString, 1, 'z', 0xc3, 5, 10, 0, 'a', 7<<5, 0, 0)
	b = append(b, opEOF, 0, 0, 0, 0, 0, 0, 0, 0)
	got, info, err := loadAll(b)
	must(t, err)
	sameEntries(t, got, []Entry{
		{Key: []byte("k"), Value: []byte("hi"), ExpireAtMs: 16000, DB: 3},
		{Key: []byte("z"), Value: []byte("aaaaaaaaaa"), DB: 3},
	})
	if info.Version != 9 || fmt.Sprint(info.Aux) != "[[abc 7]]" || info.Checksum != 0 {
		t.Fatalf("info %+v", info)
	}
	// RDB 4 has no trailer at all.
	old := []byte("REDIS0004\xfe\x00\x00\x01k\x01v\xff")
	got, _, err = loadAll(old)
	must(t, err)
	sameEntries(t, got, []Entry{{Key: []byte("k"), Value: []byte("v")}})
}

func TestLoadErrors(t *testing.T) {
	good := write(t, sample()[:3])
	body := good[:len(good)-9] // up to, not including, EOF
	withCRC := func(p []byte) []byte {
		p = append(bytes.Clone(p), opEOF)
		var s [8]byte
		c := CRC64(0, p)
		for i := range s {
			s[i] = byte(c >> (8 * i))
		}
		return append(p, s[:]...)
	}
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "offset 0: header: stream ends at offset 0"},
		{"magic", []byte("RODIS0010\xff"), "offset 0: not an RDB file"},
		{"version", []byte("REDIS0012\xff"), "offset 5: RDB version 12 is not supported"},
		{"version digits", []byte("REDIS+010\xff"), "offset 5: bad RDB version"},
		{"list type", withCRC(append(bytes.Clone(body), 1, 1, 'l', 0)), "value type 1 is not supported"},
		{"unknown opcode", withCRC(append(bytes.Clone(body), 0xf0)), "unknown opcode 0xf0"},
		{"module aux", withCRC(append(bytes.Clone(body), opModuleAux)), "MODULE_AUX"},
		{"function", withCRC(append(bytes.Clone(body), opFunction2)), "FUNCTION"},
		{"string encoding", withCRC(append(bytes.Clone(body), 0, 0xc4)), "unknown string encoding 4"},
		{"length byte", withCRC(append(bytes.Clone(body), 0, 0x82)), "bad length byte 0x82"},
		{"encoded length", withCRC(append(bytes.Clone(body), opSelectDB, 0xc0)), "string encoding where a length belongs"},
		{"lzf ratio", withCRC(append(bytes.Clone(body), 0, 1, 'k', 0xc3, 1, 0x40, 200, 0)), "LZF lengths 1→200 are impossible"},
		{"lzf backref", withCRC(append(bytes.Clone(body), 0, 1, 'k', 0xc3, 2, 3, 0x20, 0)), "back reference before the start"},
		{"lzf short", withCRC(append(bytes.Clone(body), 0, 1, 'k', 0xc3, 2, 3, 0, 'a')), "makes 1 bytes, its header says 3"},
		{"lzf long", withCRC(append(bytes.Clone(body), 0, 1, 'k', 0xc3, 3, 1, 1, 'a', 'b')), "longer than its declared length"},
		{"crc", append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^1), "CRC64 mismatch"},
		{"trailing", append(bytes.Clone(good), 0), "trailing bytes"},
		{"huge string", withCRC(append(bytes.Clone(body), 0, 0x81, 0xff, 0, 0, 0, 0, 0, 0, 0)), "is too large"},
		{"lying length", append(bytes.Clone(body), 0, 1, 'k', 0x80, 0x10, 0, 0, 0, 'x'), "stream ends at offset"},
	} {
		_, _, err := loadAll(c.in)
		var re *Error
		if err == nil || !errors.As(err, &re) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "rdb: offset ") {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// The callback's error stops the load and comes back wrapped.
	stop := errors.New("full")
	n := 0
	_, err := Load(bytes.NewReader(good), func(Entry) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("callback error: %v after %d calls", err, n)
	}
}

// Every proper prefix and every single-bit flip of a file fails to load.
func TestTruncationAndBitFlips(t *testing.T) {
	var es []Entry
	for _, e := range sample()[:20] {
		if len(e.Value) < 1000 { // keep the file small: every prefix and bit is tried
			es = append(es, e)
		}
	}
	es = append(es, Entry{Key: []byte("long"), Value: bytes.Repeat([]byte("0123456789"), 100)})
	p := write(t, es)
	for n := range len(p) {
		if _, _, err := loadAll(p[:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes loaded", n, len(p))
		}
	}
	q := bytes.Clone(p)
	for i := range q {
		for bit := range 8 {
			q[i] ^= 1 << bit
			if _, _, err := loadAll(q); err == nil {
				t.Fatalf("flip of bit %d of byte %d loaded", bit, i)
			}
			q[i] ^= 1 << bit
		}
	}
}

// oneByte hands out one byte per Read, to exercise the refill paths.
type oneByte struct{ p []byte }

func (o *oneByte) Read(b []byte) (int, error) {
	if len(o.p) == 0 {
		return 0, io.EOF
	}
	b[0] = o.p[0]
	o.p = o.p[1:]
	return 1, nil
}

func TestSmallReads(t *testing.T) {
	p := write(t, sample())
	var got []Entry
	_, err := Load(&oneByte{p}, func(e Entry) error {
		got = append(got, Entry{Key: bytes.Clone(e.Key), Value: bytes.Clone(e.Value), ExpireAtMs: e.ExpireAtMs})
		return nil
	})
	must(t, err)
	sameEntries(t, got, sample())
}

func TestPayload(t *testing.T) {
	for _, v := range []string{"", "hello", "12345", "-7", strings.Repeat("z", 70000)} {
		p := DumpPayload([]byte("prefix"), []byte(v))
		if string(p[:6]) != "prefix" {
			t.Fatal("DumpPayload overwrote dst")
		}
		got, err := ParsePayload(p[6:])
		if err != nil || string(got) != v {
			t.Fatalf("%.20q: got %.20q, %v", v, got, err)
		}
	}
	// The exact bytes Redis 7.0 gives for DUMP of "hello" and of "12345".
	if got := fmt.Sprintf("%x", DumpPayload(nil, []byte("hello"))); got != "000568656c6c6f0a00"+fmt.Sprintf("%016x", swap(CRC64(0, []byte("\x00\x05hello\x0a\x00")))) {
		t.Fatalf("DUMP hello = %s", got)
	}
	good := DumpPayload(nil, []byte("value"))
	fix := func(p []byte) []byte { // recompute the CRC after an edit
		c := CRC64(0, p[:len(p)-8])
		for i := range 8 {
			p[len(p)-8+i] = byte(c >> (8 * i))
		}
		return p
	}
	newer := bytes.Clone(good)
	newer[len(newer)-10] = Version + 1
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 0x80
	listType := bytes.Clone(good)
	listType[0] = 1
	extra := append([]byte{0, 1, 'a', 'b'}, good[len(good)-10:]...)
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"short", good[:9], ErrPayloadVersionOrChecksum},
		{"newer", fix(newer), ErrPayloadVersionOrChecksum},
		{"crc", badCRC, ErrPayloadVersionOrChecksum},
		{"type", fix(listType), ErrBadDataFormat},
		{"trailing", fix(extra), ErrBadDataFormat},
		{"cut", fix(append([]byte{0, 5, 'a'}, good[len(good)-10:]...)), ErrBadDataFormat},
		{"no body", fix(bytes.Clone(good[len(good)-10:])), ErrBadDataFormat},
	} {
		if _, err := ParsePayload(c.in); err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	older := bytes.Clone(good)
	older[len(older)-10] = 6
	if v, err := ParsePayload(fix(older)); err != nil || string(v) != "value" {
		t.Errorf("RDB 6 payload: %q, %v", v, err)
	}
}

func swap(v uint64) uint64 {
	var r uint64
	for range 8 {
		r = r<<8 | v&0xff
		v >>= 8
	}
	return r
}
