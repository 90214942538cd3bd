package ring

import (
	"fmt"
	"testing"
)

// crcBitwise is the textbook bit-at-a-time CRC16-XMODEM, the reference the
// table-driven version is checked against.
func crcBitwise(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c ^= uint16(x) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
	}
	return c
}

func TestCRC16(t *testing.T) {
	tests := []struct {
		in   string
		want uint16
	}{
		{"", 0},
		{"123456789", 0x31C3}, // the XMODEM check value (docs/compatibility.md, "Key slots")
		{"A", crcBitwise([]byte("A"))},
		{"\x00\xff\x80", crcBitwise([]byte("\x00\xff\x80"))},
	}
	for _, tt := range tests {
		if got := CRC16([]byte(tt.in)); got != tt.want {
			t.Errorf("CRC16(%q) = %#04x, want %#04x", tt.in, got, tt.want)
		}
		if got := crc16(tt.in); got != tt.want {
			t.Errorf("crc16(%q) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
}

func TestCRC16AllBytes(t *testing.T) {
	b := make([]byte, 0, 512)
	for i := range 512 {
		b = append(b, byte(i*7+i>>8))
		if got, want := CRC16(b), crcBitwise(b); got != want {
			t.Fatalf("len %d: CRC16 = %#04x, bitwise = %#04x", len(b), got, want)
		}
	}
}

func TestKeySlot(t *testing.T) {
	tests := []struct {
		key  string
		want uint16
	}{
		{"foo", 12182},
		{"bar", 5061},
		{"hello", 866},
		{"", 0},
		{"123456789", 0x31C3 & slotMask},
		// Tag rules: the first '{' and the first '}' after it, if non-empty.
		{"{user1000}.following", crcBitwise([]byte("user1000")) & slotMask},
		{"{user1000}.followers", crcBitwise([]byte("user1000")) & slotMask},
		{"foo{}{bar}", crcBitwise([]byte("foo{}{bar}")) & slotMask},
		{"foo{{bar}}zap", crcBitwise([]byte("{bar")) & slotMask},
		{"foo{bar}{zap}", crcBitwise([]byte("bar")) & slotMask},
		{"{}", crcBitwise([]byte("{}")) & slotMask},
		{"{", crcBitwise([]byte("{")) & slotMask},
		{"}foo{", crcBitwise([]byte("}foo{")) & slotMask},
		{"a}b{c}", crcBitwise([]byte("c")) & slotMask},
		{"{foo", crcBitwise([]byte("{foo")) & slotMask},
		{"x{foo}", KeySlotString("foo")},
		{"{foo}", 12182},
	}
	for _, tt := range tests {
		if got := KeySlot([]byte(tt.key)); got != tt.want {
			t.Errorf("KeySlot(%q) = %d, want %d", tt.key, got, tt.want)
		}
		if got := KeySlotString(tt.key); got != tt.want {
			t.Errorf("KeySlotString(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
	if a, b := KeySlotString("{user1000}.following"), KeySlotString("{user1000}.followers"); a != b {
		t.Errorf("hash-tagged keys split: %d != %d", a, b)
	}
}

func TestKeySlotAllocs(t *testing.T) {
	key := []byte("{user1000}.following")
	if n := testing.AllocsPerRun(100, func() { _ = KeySlot(key) }); n != 0 {
		t.Errorf("KeySlot allocs = %v, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = KeySlotString("user:1000:profile") }); n != 0 {
		t.Errorf("KeySlotString allocs = %v, want 0", n)
	}
}

// FuzzKeySlot checks both entry points against each other and against a
// direct reading of the tag rule with the bitwise CRC.
func FuzzKeySlot(f *testing.F) {
	for _, s := range []string{"foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "{", "}{", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		hashed := key
		for i := 0; i < len(key); i++ {
			if key[i] == '{' {
				for j := i + 1; j < len(key); j++ {
					if key[j] == '}' {
						if j > i+1 {
							hashed = key[i+1 : j]
						}
						break
					}
				}
				break
			}
		}
		want := crcBitwise([]byte(hashed)) & slotMask
		if got := KeySlotString(key); got != want {
			t.Fatalf("KeySlotString(%q) = %d, want %d", key, got, want)
		}
		if got := KeySlot([]byte(key)); got != want {
			t.Fatalf("KeySlot(%q) = %d, want %d", key, got, want)
		}
	})
}

// benchKeys are typical client keys, some tagged.
var benchKeys = func() [][]byte {
	keys := make([][]byte, 1024)
	for i := range keys {
		if i%4 == 0 {
			keys[i] = fmt.Appendf(nil, "{user%d}.followers", i)
		} else {
			keys[i] = fmt.Appendf(nil, "key:%08d", i)
		}
	}
	return keys
}()

func BenchmarkKeySlot(b *testing.B) {
	b.ReportAllocs()
	n := 0
	var sink uint16
	for b.Loop() {
		sink ^= KeySlot(benchKeys[n&1023])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "keys/s")
	_ = sink
}

func BenchmarkKeySlotString(b *testing.B) {
	keys := make([]string, len(benchKeys))
	for i, k := range benchKeys {
		keys[i] = string(k)
	}
	b.ReportAllocs()
	n := 0
	var sink uint16
	for b.Loop() {
		sink ^= KeySlotString(keys[n&1023])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "keys/s")
	_ = sink
}

func BenchmarkCRC16(b *testing.B) {
	buf := make([]byte, 64)
	for i := range buf {
		buf[i] = byte(i)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		CRC16(buf)
	}
}
