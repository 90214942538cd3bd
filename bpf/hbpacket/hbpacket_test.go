package hbpacket

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
)

// The 64 SipHash-2-4 test vectors of the reference implementation
// (vectors.h): key 00 01 .. 0f, message 00 01 .. (n-1) for n = 0..63,
// output bytes in little-endian order. Entry 15 is the worked example of
// Appendix A of the SipHash paper (0xa129ca6149be45e5).
var sipVectors = []string{
	"310e0edd47db6f72",
	"fd67dc93c539f874",
	"5a4fa9d909806c0d",
	"2d7efbd796666785",
	"b7877127e09427cf",
	"8da699cd64557618",
	"cee3fe586e46c9cb",
	"37d1018bf50002ab",
	"6224939a79f5f593",
	"b0e4a90bdf82009e",
	"f3b9dd94c5bb5d7a",
	"a7ad6b22462fb3f4",
	"fbe50e86bc8f1e75",
	"903d84c02756ea14",
	"eef27a8e90ca23f7",
	"e545be4961ca29a1",
	"db9bc2577fcc2a3f",
	"9447be2cf5e99a69",
	"9cd38d96f0b3c14b",
	"bd6179a71dc96dbb",
	"98eea21af25cd6be",
	"c7673b2eb0cbf2d0",
	"883ea3e395675393",
	"c8ce5ccd8c030ca8",
	"94af49f6c650adb8",
	"eab8858ade92e1bc",
	"f315bb5bb835d817",
	"adcf6b0763612e2f",
	"a5c91da7acaa4dde",
	"716595876650a2a6",
	"28ef495c53a387ad",
	"42c341d8fa92d832",
	"ce7cf2722f512771",
	"e37859f94623f3a7",
	"381205bb1ab0e012",
	"ae97a10fd434e015",
	"b4a31508beff4d31",
	"81396229f0907902",
	"4d0cf49ee5d4dcca",
	"5c73336a76d8bf9a",
	"d0a704536ba93e0e",
	"925958fcd6420cad",
	"a915c29bc8067318",
	"952b79f3bc0aa6d4",
	"f21df2e41d4535f9",
	"87577519048f53a9",
	"10a56cf5dfcd9adb",
	"eb75095ccd986cd0",
	"51a9cb9ecba312e6",
	"96afadfc2ce666c7",
	"72fe52975a4364ee",
	"5a1645b276d592a1",
	"b274cb8ebf87870a",
	"6f9bb4203de7b381",
	"eaecb2a30b22a87f",
	"9924a43cc1315724",
	"bd838d3aafbf8db7",
	"0b1a2a3265d51aea",
	"135079a3231ce660",
	"932b2846e4d70666",
	"e1915f5cb1eca46c",
	"f325965ca16d629f",
	"575ff28e60381be5",
	"724506eb4c328a95",
}

func testKey() *Key {
	var k Key
	for i := range k {
		k[i] = byte(i)
	}
	return &k
}

func TestSipHashVectors(t *testing.T) {
	k := testKey()
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	for n, want := range sipVectors {
		var got [8]byte
		binary.LittleEndian.PutUint64(got[:], SipHash24(k, msg[:n]))
		if hex.EncodeToString(got[:]) != want {
			t.Errorf("len %d: got %x want %s", n, got, want)
		}
	}
	if got := SipHash24(k, msg[:15]); got != 0xa129ca6149be45e5 {
		t.Errorf("paper example: got %#x", got)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, key := range []*Key{nil, testKey()} {
		p := Packet{Type: Ping, Flags: 3, Reserved: 0x1234, Sender: 0x0102030405060708,
			Seq: 42, SendTime: 123456789, Progress: 7}
		b := p.Marshal(make([]byte, Size), key)
		if string(b[:4]) != "HBT1" || b[4] != 1 {
			t.Fatalf("header %x", b[:8])
		}
		if key == nil && p.MAC != 0 {
			t.Fatalf("MAC without key: %#x", p.MAC)
		}
		var q Packet
		if err := q.Unmarshal(b, key); err != nil {
			t.Fatal(err)
		}
		if q != p {
			t.Fatalf("got %+v want %+v", q, p)
		}
		if !bytes.Equal(q.AppendMarshal(nil, key), b) {
			t.Fatal("AppendMarshal differs")
		}
	}
}

func TestUnmarshalErrors(t *testing.T) {
	key := testKey()
	good := (&Packet{Type: Pong, Sender: 1}).Marshal(make([]byte, Size), key)
	mut := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:47], ErrLength},
		{"long", append(append([]byte(nil), good...), 0), ErrLength},
		{"empty", nil, ErrLength},
		{"magic", mut(func(b []byte) []byte { b[3] = '2'; return b }), ErrMagic},
		{"type0", mut(func(b []byte) []byte { b[4] = 0; return b }), ErrType},
		{"type3", mut(func(b []byte) []byte { b[4] = 3; return b }), ErrType},
		{"mac", mut(func(b []byte) []byte { b[47] ^= 1; return b }), ErrMAC},
		{"body", mut(func(b []byte) []byte { b[20] ^= 1; return b }), ErrMAC},
	}
	for _, c := range cases {
		var p Packet
		if err := p.Unmarshal(c.b, key); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v want %v", c.name, err, c.want)
		}
	}
}

func TestReply(t *testing.T) {
	// A userspace PONG never claims the kernel, even echoing a PING that
	// does; the kernel's always does.
	for _, flags := range []uint8{0, FlagKernel, 4 | FlagKernel} {
		p := Packet{Type: Ping, Flags: flags, Sender: 5, Seq: 9, SendTime: 11, Progress: 13, MAC: 99}
		want := Packet{Type: Pong, Flags: flags &^ FlagKernel, Sender: 77, Seq: 9, SendTime: 11, Progress: 88}
		if r := p.Reply(77, 88); r != want {
			t.Errorf("flags %d: Reply %+v, want %+v", flags, r, want)
		}
		want.Flags |= FlagKernel
		if r := p.KernelReply(77, 88); r != want {
			t.Errorf("flags %d: KernelReply %+v, want %+v", flags, r, want)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	key := testKey()
	f.Add((&Packet{Type: Ping, Sender: 1, Seq: 2}).Marshal(make([]byte, Size), key))
	f.Add((&Packet{Type: Pong}).Marshal(make([]byte, Size), nil))
	f.Add([]byte("HBT1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, k := range []*Key{nil, key} {
			var p Packet
			if err := p.Unmarshal(b, k); err != nil {
				continue
			}
			// Anything accepted re-encodes to the same bytes.
			out := p.Marshal(make([]byte, Size), k)
			if k != nil && !bytes.Equal(out, b) {
				t.Fatalf("re-encode differs:\n%x\n%x", out, b)
			}
			if k == nil && !bytes.Equal(out[:MACOffset], b[:MACOffset]) {
				t.Fatalf("re-encode differs:\n%x\n%x", out, b)
			}
		}
	})
}

func BenchmarkSipHash40(b *testing.B) {
	k := testKey()
	msg := make([]byte, 40)
	b.SetBytes(40)
	for b.Loop() {
		SipHash24(k, msg)
	}
}

// The split MAC (prefix state plus three words) must equal the MAC of the
// whole payload, for both types, when the payload has the flags the prefix
// was made for; with other flags it must not, which is why the XDP program
// falls back to the full MAC for those.
func TestMACPrefix(t *testing.T) {
	key := &Key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, typ := range []Type{Ping, Pong} {
		for _, prefixFlags := range []uint8{0, FlagKernel} {
			for _, flags := range []uint8{0, FlagKernel, 4} {
				p := Packet{Type: typ, Flags: flags, Sender: 0xfeedface12345678, Seq: 42, SendTime: 1e12 + 7, Progress: 99}
				b := p.Marshal(make([]byte, Size), key)
				if w := Word0(typ, flags, 0); w != binary.LittleEndian.Uint64(b) {
					t.Fatalf("Word0 %x, payload starts %x", w, b[:8])
				}
				got := FinishMAC(MACPrefix(key, typ, prefixFlags, p.Sender), p.Seq, p.SendTime, p.Progress)
				if (got == p.MAC) != (flags == prefixFlags) {
					t.Errorf("%v flags %d, prefix for %d: split MAC %x, full MAC %x", typ, flags, prefixFlags, got, p.MAC)
				}
			}
		}
	}
}
