package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// crc32cBitwise is an independent, table-free CRC32C (reflected polynomial
// 0x82F63B78) used to hand-check the golden frame.
func crc32cBitwise(data []byte) uint32 {
	crc := ^uint32(0)
	for _, b := range data {
		crc ^= uint32(b)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82F63B78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

func TestCRC32CKnownVector(t *testing.T) {
	// RFC 3720 B.4: CRC32C of "123456789" is 0xE3069283.
	if got := crc32cBitwise([]byte("123456789")); got != 0xE3069283 {
		t.Fatalf("bitwise CRC32C = %#x", got)
	}
	hdr := make([]byte, 12)
	if got := checksum(hdr[:12], []byte("123456789")); got != crc32cBitwise(append(hdr, "123456789"...)) {
		t.Fatalf("checksum disagrees with bitwise CRC32C")
	}
}

// TestGoldenPing pins the byte layout of one PING against PROTOCOL.md. The
// expected bytes are written field by field in the order of the tables there.
func TestGoldenPing(t *testing.T) {
	var sender NodeID
	for i := range sender {
		sender[i] = byte(i + 1)
	}
	rec := NodeID(bytes.Repeat([]byte{0xaa}, 20))
	m := Message{
		Type: TypePing,
		Header: Header{
			Sender: sender, CurrentEpoch: 5, ConfigEpoch: 3, Version: 2,
			Flags: FlagMaster, ReplOffset: 0x1234,
			Addr:        Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 6379, BusPort: 16379},
			StateDigest: 0x1122334455667788, KnownNodes: 3,
		},
		Gossip: []NodeRecord{{
			ID: rec, Addr: Addr{IP: netip.MustParseAddr("::1"), Port: 7000, BusPort: 17000},
			Flags: FlagMaster | FlagPFail, ConfigEpoch: 1, Version: 9,
		}},
		Claims: []SlotClaim{{Owner: sender, ConfigEpoch: 3, Version: 4, Ranges: []SlotRange{{0, 5460}, {10923, 16383}}}},
	}
	body := strings.Join([]string{
		// Header block (106 bytes)
		"0102030405060708090a0b0c0d0e0f1011121314", // 0   Sender
		"0500000000000000",                         // 20  CurrentEpoch = 5
		"0300000000000000",                         // 28  ConfigEpoch = 3
		"0200000000000000",                         // 36  Version = 2
		"0100",                                     // 44  Flags = master
		"0000000000000000000000000000000000000000", // 46  Master = none
		"3412000000000000",                         // 66  ReplOffset = 0x1234
		"00000000000000000000ffff7f000001",         // 74  IP = ::ffff:127.0.0.1
		"eb18",                                     // 90  Port = 6379
		"fb3f",                                     // 92  BusPort = 16379
		"8877665544332211",                         // 94  StateDigest
		"03000000",                                 // 102 KnownNodes = 3
		// Gossip section
		"0100", // count = 1
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", // ID
		"00000000000000000000000000000001",         // IP = ::1
		"581b",                                     // Port = 7000
		"6842",                                     // BusPort = 17000
		"0500",                                     // Flags = master|pfail
		"0000000000000000000000000000000000000000", // Master = none
		"0100000000000000",                         // ConfigEpoch = 1
		"0900000000000000",                         // Version = 9
		// Claims section
		"0100", // count = 1
		"0102030405060708090a0b0c0d0e0f1011121314", // Owner
		"0300000000000000",                         // ConfigEpoch = 3
		"0400000000000000",                         // Version = 4
		"0200",                                     // ranges = 2
		"00005415",                                 // 0-5460
		"ab2aff3f",                                 // 10923-16383
	}, "")
	wantBody, _ := hex.DecodeString(body)
	if len(wantBody) != 234 {
		t.Fatalf("golden body is %d bytes, want 234", len(wantBody))
	}
	hdr := strings.Join([]string{
		"48534231", // "HSB1"
		"01",       // version
		"01",       // type PING
		"0000",     // flags
		"ea000000", // body length 234
	}, "")
	wantHdr, _ := hex.DecodeString(hdr)
	crc := crc32cBitwise(append(append([]byte{}, wantHdr...), wantBody...))
	if crc != 0xb1be76e6 {
		t.Errorf("independent CRC32C = %#08x, the value in this test is 0xb1be76e6", crc)
	}
	want := append(wantHdr, 0xe6, 0x76, 0xbe, 0xb1)
	want = append(want, wantBody...)

	got := mustEncode(t, NewEncoder(nil), &m)
	if !bytes.Equal(got, want) {
		t.Fatalf("golden PING mismatch\n got %x\nwant %x", got, want)
	}
	var dm Message
	if err := NewDecoder(nil).Decode(want, &dm); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(norm(&dm), norm(&m)) {
		t.Fatalf("decoded golden differs: %+v", dm)
	}
}

// TestEveryBitFlipRejected flips each bit of every sample frame in turn.
func TestEveryBitFlipRejected(t *testing.T) {
	secret := []byte("cluster secret")
	cases := []struct {
		name string
		enc  *Encoder
		dec  *Decoder
	}{
		{"plain", NewEncoder(nil), NewDecoder(nil)},
		{"hmac", NewEncoder(secret), NewDecoder(secret)},
	}
	for _, c := range cases {
		for _, s := range samples() {
			frame := mustEncode(t, c.enc, &s.m)
			var m Message
			for bit := 0; bit < len(frame)*8; bit++ {
				f := bytes.Clone(frame)
				f[bit/8] ^= 1 << (bit % 8)
				if err := c.dec.Decode(f, &m); err == nil {
					t.Fatalf("%s/%s: flip of bit %d accepted", c.name, s.name, bit)
				}
			}
		}
	}
}

func TestHMAC(t *testing.T) {
	secret, other := []byte("s3cret"), []byte("other")
	m := samples()[1].m
	signed := mustEncode(t, NewEncoder(secret), &m)
	plain := mustEncode(t, NewEncoder(nil), &m)
	if len(signed) != len(plain)+MACLen {
		t.Fatalf("signed %d bytes, plain %d", len(signed), len(plain))
	}
	var got Message
	tests := []struct {
		name  string
		dec   *Decoder
		frame []byte
		err   error
	}{
		{"right secret", NewDecoder(secret), signed, nil},
		{"wrong secret", NewDecoder(other), signed, ErrAuth},
		{"missing mac", NewDecoder(secret), plain, ErrAuth},
		{"mac stripped, flag kept", NewDecoder(secret), signed[:len(signed)-MACLen], ErrShort},
		{"no secret accepts signed", NewDecoder(nil), signed, nil},
		{"zero decoder accepts signed", &Decoder{}, signed, nil},
		{"no secret accepts plain", NewDecoder(nil), plain, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.dec.Decode(tc.frame, &got)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && !reflect.DeepEqual(norm(&got), norm(&m)) {
				t.Fatalf("decoded message differs")
			}
		})
	}
	// The decoder with a secret reuses its HMAC state across frames.
	dec := NewDecoder(secret)
	for range 3 {
		if err := dec.Decode(signed, &got); err != nil {
			t.Fatal(err)
		}
		if err := dec.Decode(plain, &got); !errors.Is(err, ErrAuth) {
			t.Fatal(err)
		}
	}
}

func TestFrameLen(t *testing.T) {
	m := samples()[0].m
	f := mustEncode(t, NewEncoder(nil), &m)
	for i := 0; i < FrameHeaderLen; i++ {
		if _, err := FrameLen(f[:i]); !errors.Is(err, ErrShort) {
			t.Fatalf("FrameLen of %d bytes: %v", i, err)
		}
	}
	if n, err := FrameLen(f[:FrameHeaderLen]); err != nil || n != len(f) {
		t.Fatalf("FrameLen = %d, %v", n, err)
	}
	sf := mustEncode(t, NewEncoder([]byte("k")), &m)
	if n, err := FrameLen(sf); err != nil || n != len(sf) {
		t.Fatalf("signed FrameLen = %d, %v", n, err)
	}
	// A stream of frames splits correctly.
	stream := append(bytes.Clone(f), sf...)
	n1, _ := FrameLen(stream)
	n2, _ := FrameLen(stream[n1:])
	if n1+n2 != len(stream) {
		t.Fatalf("stream split %d+%d of %d", n1, n2, len(stream))
	}
}

func TestHeaderErrors(t *testing.T) {
	base := mustEncode(t, NewEncoder(nil), &samples()[0].m)
	mod := func(fn func(f []byte) []byte) []byte { return fn(bytes.Clone(base)) }
	tests := []struct {
		name  string
		frame []byte
		err   error
	}{
		{"empty", nil, ErrShort},
		{"header only", base[:FrameHeaderLen], ErrShort},
		{"one short", base[:len(base)-1], ErrShort},
		{"one long", append(bytes.Clone(base), 0), ErrMalformed},
		{"magic", mod(func(f []byte) []byte { f[0] = 'X'; return f }), ErrBadMagic},
		{"version 0", mod(func(f []byte) []byte { f[4] = 0; return f }), ErrBadVersion},
		{"version 2", mod(func(f []byte) []byte { f[4] = 2; return f }), ErrBadVersion},
		{"type 0", mod(func(f []byte) []byte { f[5] = 0; return f }), ErrBadType},
		{"type 12", mod(func(f []byte) []byte { f[5] = 12; return f }), ErrBadType},
		{"reserved flag", mod(func(f []byte) []byte { f[7] = 0x80; return f }), ErrMalformed},
		{"too large", mod(func(f []byte) []byte { binary.LittleEndian.PutUint32(f[8:], MaxBody+1); return f }), ErrTooLarge},
		{"huge length", mod(func(f []byte) []byte { binary.LittleEndian.PutUint32(f[8:], 0xffffffff); return f }), ErrTooLarge},
		{"crc", mod(func(f []byte) []byte { f[12] ^= 1; return f }), ErrChecksum},
		{"body byte", mod(func(f []byte) []byte { f[len(f)-1] ^= 1; return f }), ErrChecksum},
		{"type ping->meet", mod(func(f []byte) []byte { f[5] = byte(TypeMeet); return f }), ErrChecksum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			if err := NewDecoder(nil).Decode(tc.frame, &m); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

// body returns the encoded body of m.
func body(t *testing.T, m *Message) []byte {
	t.Helper()
	return mustEncode(t, NewEncoder(nil), m)[FrameHeaderLen:]
}

func TestBodyErrors(t *testing.T) {
	h := sampleHeader(1)
	ping := body(t, &Message{Type: TypePing, Header: h, Gossip: sampleRecords(2, 0), Claims: sampleClaims(2, 0)})
	hdr := ping[:HeaderLen]
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	u16 := func(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
	claim := func(ranges ...uint16) []byte {
		o := id(1, 1)
		b := cat(o[:], make([]byte, 16), u16(uint16(len(ranges)/2)))
		for _, r := range ranges {
			b = append(b, u16(r)...)
		}
		return b
	}
	subj := id(3, 3)
	syncBody := body(t, &Message{Type: TypeSync, Header: h, Buckets: sampleBuckets()})
	tests := []struct {
		name string
		t    Type
		body []byte
		err  error
	}{
		{"short header", TypePing, hdr[:HeaderLen-1], ErrTruncated},
		{"zero sender", TypeAuthAck, cat(make([]byte, 20), hdr[20:]), ErrMalformed},
		{"ping no sections", TypePing, hdr, ErrTruncated},
		{"ping trailing", TypePing, cat(ping, []byte{0}), ErrMalformed},
		{"ping cut", TypePing, ping[:len(ping)-1], ErrTruncated},
		{"gossip count too big", TypePing, cat(hdr, u16(MaxRecords+1)), ErrTooLarge},
		{"gossip count beyond body", TypePing, cat(hdr, u16(3), make([]byte, 2*RecordLen+2)), ErrTruncated},
		{"gossip zero id", TypePing, cat(hdr, u16(1), make([]byte, RecordLen), u16(0)), ErrMalformed},
		{"claims count too big", TypePong, cat(hdr, u16(0), u16(MaxClaims+1)), ErrTooLarge},
		{"claims count beyond body", TypePong, cat(hdr, u16(0), u16(2), claim()), ErrTruncated},
		{"claim zero owner", TypeUpdate, cat(hdr, u16(1), make([]byte, ClaimFixedLen)), ErrMalformed},
		{"ranges too many", TypeUpdate, cat(hdr, u16(1), claim()[:36], u16(MaxRanges+1)), ErrTooLarge},
		{"ranges beyond body", TypeUpdate, cat(hdr, u16(1), claim()[:36], u16(2), make([]byte, 4)), ErrTruncated},
		{"range start>end", TypeUpdate, cat(hdr, u16(1), claim(10, 9)), ErrMalformed},
		{"range end 16384", TypeUpdate, cat(hdr, u16(1), claim(0, 16384)), ErrMalformed},
		{"range overlap", TypeUpdate, cat(hdr, u16(1), claim(0, 10, 10, 20)), ErrMalformed},
		{"range descending", TypeUpdate, cat(hdr, u16(1), claim(20, 30, 0, 10)), ErrMalformed},
		{"range ok adjacent", TypeUpdate, cat(hdr, u16(1), claim(0, 10, 11, 16383)), nil},
		{"update zero claims", TypeUpdate, cat(hdr, u16(0)), ErrMalformed},
		{"update two claims", TypeUpdate, cat(hdr, u16(2), claim(), claim()), ErrMalformed},
		{"fail short", TypeFail, cat(hdr, subj[:], make([]byte, 7)), ErrTruncated},
		{"fail zero subject", TypeFail, cat(hdr, make([]byte, 32)), ErrMalformed},
		{"fail no age", TypeFail, cat(hdr, subj[:], make([]byte, 8)), ErrTruncated},
		{"fail trailing", TypeFail, cat(hdr, subj[:], make([]byte, 13)), ErrMalformed},
		{"failreport no bool", TypeFailReport, cat(hdr, subj[:], make([]byte, 8)), ErrTruncated},
		{"failreport bool 2", TypeFailReport, cat(hdr, subj[:], make([]byte, 8), []byte{2}), ErrMalformed},
		{"sync 63 buckets", TypeSync, cat(hdr, u16(63), make([]byte, 63*8)), ErrMalformed},
		{"sync 65 buckets", TypeSync, cat(hdr, u16(65), make([]byte, 65*8)), ErrMalformed},
		{"sync short", TypeSync, syncBody[:len(syncBody)-1], ErrTruncated},
		{"sync trailing", TypeSync, cat(syncBody, []byte{0}), ErrMalformed},
		{"syncdata short", TypeSyncData, cat(hdr, make([]byte, 8)), ErrTruncated},
		{"syncdata flags", TypeSyncData, cat(hdr, make([]byte, 8), []byte{4}, u16(0), u16(0)), ErrMalformed},
		{"syncdata record outside mask", TypeSyncData, cat(hdr, []byte{2, 0, 0, 0, 0, 0, 0, 0, 0}, ping[HeaderLen:]), ErrMalformed},
		{"syncdata claim outside mask", TypeSyncData, cat(hdr, []byte{0, 0, 0, 0, 0, 0, 0, 0x80, 0}, u16(0), u16(1), claim()), ErrMalformed},
		{"syncdata in mask", TypeSyncData, cat(hdr, []byte{3, 0, 0, 0, 0, 0, 0, 0, 0}, ping[HeaderLen:]), nil},
		{"authrequest flags", TypeAuthRequest, cat(hdr, []byte{2}, make([]byte, 16), u16(0)), ErrMalformed},
		{"authrequest short", TypeAuthRequest, hdr, ErrTruncated},
		{"authrequest no epochs", TypeAuthRequest, cat(hdr, []byte{0}, make([]byte, 8)), ErrTruncated},
		{"authrequest ok", TypeAuthRequest, cat(hdr, []byte{1}, make([]byte, 16), u16(0)), nil},
		{"authack short", TypeAuthAck, cat(hdr, make([]byte, 7)), ErrTruncated},
		{"authack trailing", TypeAuthAck, cat(hdr, make([]byte, 9)), ErrMalformed},
		{"authack ok", TypeAuthAck, cat(hdr, make([]byte, 8)), nil},
		{"mfstart ok", TypeMFStart, hdr, nil},
	}
	dec := NewDecoder(nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			err := dec.Decode(frameOf(tc.t, tc.body), &m)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("err = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	h := sampleHeader(1)
	many := make([]SlotClaim, MaxClaims)
	for i := range many {
		many[i] = SlotClaim{Owner: id(1, 1)}
		for j := range 16 {
			many[i].Ranges = append(many[i].Ranges, SlotRange{uint16(2 * j), uint16(2 * j)})
		}
	}
	tests := []struct {
		name string
		m    Message
		err  error
	}{
		{"bad type", Message{Type: 0, Header: h}, ErrBadType},
		{"zero sender", Message{Type: TypePing}, ErrMalformed},
		{"too many records", Message{Type: TypePing, Header: h, Gossip: sampleRecords(MaxRecords+1, 1)}, ErrTooLarge},
		{"too many claims", Message{Type: TypePing, Header: h, Claims: make([]SlotClaim, MaxClaims+1)}, ErrTooLarge},
		{"body too large", Message{Type: TypePing, Header: h, Claims: many}, ErrTooLarge},
		{"too many ranges", Message{Type: TypeUpdate, Header: h, Claims: []SlotClaim{{Owner: id(1, 1), Ranges: make([]SlotRange, MaxRanges+1)}}}, ErrTooLarge},
		{"zero record", Message{Type: TypeMeet, Header: h, Gossip: []NodeRecord{{}}}, ErrMalformed},
		{"zero owner", Message{Type: TypeAuthRequest, Header: h, Claims: []SlotClaim{{}}}, ErrMalformed},
		{"bad range", Message{Type: TypeUpdate, Header: h, Claims: []SlotClaim{{Owner: id(1, 1), Ranges: []SlotRange{{5, 4}}}}}, ErrMalformed},
		{"range past 16383", Message{Type: TypeUpdate, Header: h, Claims: []SlotClaim{{Owner: id(1, 1), Ranges: []SlotRange{{0, 16384}}}}}, ErrMalformed},
		{"overlapping ranges", Message{Type: TypeUpdate, Header: h, Claims: []SlotClaim{{Owner: id(1, 1), Ranges: []SlotRange{{0, 5}, {5, 9}}}}}, ErrMalformed},
		{"update no claim", Message{Type: TypeUpdate, Header: h}, ErrMalformed},
		{"update two claims", Message{Type: TypeUpdate, Header: h, Claims: sampleClaims(2, 1)}, ErrMalformed},
		{"sync no buckets", Message{Type: TypeSync, Header: h}, ErrMalformed},
		{"sync 65 buckets", Message{Type: TypeSync, Header: h, Buckets: make([]uint64, 65)}, ErrMalformed},
		{"fail no subject", Message{Type: TypeFail, Header: h}, ErrMalformed},
		{"failreport no subject", Message{Type: TypeFailReport, Header: h, Report: true}, ErrMalformed},
		{"syncdata outside mask", Message{Type: TypeSyncData, Header: h, Mask: 1, Gossip: sampleRecords(1, 2)}, ErrMalformed},
		{"auth flags", Message{Type: TypeAuthRequest, Header: h, AuthFlags: 0x80}, ErrMalformed},
	}
	enc := NewEncoder(nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := enc.AppendFrame(dst, &tc.m)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if string(out) != "keep" {
				t.Fatalf("dst changed on error: %q", out)
			}
		})
	}
}

// TestLargestFrames checks the bounds are reachable and round-trip.
func TestLargestFrames(t *testing.T) {
	enc, dec := NewEncoder([]byte("k")), NewDecoder([]byte("k"))
	full := make([]SlotRange, MaxRanges)
	for i := range full {
		full[i] = SlotRange{uint16(2 * i), uint16(2 * i)}
	}
	msgs := []Message{
		{Type: TypeSyncData, Header: sampleHeader(1), Mask: allBuckets, Gossip: sampleRecords(MaxRecords, 7)},
		{Type: TypeUpdate, Header: sampleHeader(1), Claims: []SlotClaim{{Owner: id(1, 1), Ranges: full}}},
	}
	for i := range msgs {
		f := mustEncode(t, enc, &msgs[i])
		if len(f) > MaxFrame {
			t.Fatalf("frame %d > MaxFrame", len(f))
		}
		var m Message
		if err := dec.Decode(f, &m); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(norm(&m), norm(&msgs[i])) {
			t.Fatalf("large %v differs", m.Type)
		}
	}
}
