package ring

import (
	"errors"
	"slices"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in      string
		want    Range
		wantErr error
	}{
		{"0", Range{0, 0}, nil},
		{"5", Range{5, 5}, nil},
		{"16383", Range{16383, 16383}, nil},
		{"0-5460", Range{0, 5460}, nil},
		{"5461-5461", Range{5461, 5461}, nil},
		{"0-16383", Range{0, 16383}, nil},
		{"16384", Range{}, ErrSlotOutOfRange},
		{"99999999999999999999", Range{}, ErrSlotOutOfRange},
		{"0-16384", Range{}, ErrSlotOutOfRange},
		{"10-5", Range{}, ErrRangeOrder},
		{"", Range{}, ErrSyntax},
		{"-", Range{}, ErrSyntax},
		{"5-", Range{}, ErrSyntax},
		{"-5", Range{}, ErrSyntax},
		{"+5", Range{}, ErrSyntax},
		{"05", Range{}, ErrSyntax},
		{"1-2-3", Range{}, ErrSyntax},
		{" 5", Range{}, ErrSyntax},
		{"5 ", Range{}, ErrSyntax},
		{"0x10", Range{}, ErrSyntax},
		{"1_000", Range{}, ErrSyntax},
	}
	for _, tt := range tests {
		got, err := ParseRange(tt.in)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseRange(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("ParseRange(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestRangeString(t *testing.T) {
	tests := []struct {
		r    Range
		want string
		len  int
	}{
		{Range{0, 0}, "0", 1},
		{Range{0, 5460}, "0-5460", 5461},
		{Range{16383, 16383}, "16383", 1},
		{Range{5, 4}, "5-4", 0},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.r, got, tt.want)
		}
		if got := tt.r.Len(); got != tt.len {
			t.Errorf("%#v.Len() = %d, want %d", tt.r, got, tt.len)
		}
	}
}

func TestParseRanges(t *testing.T) {
	rs, err := ParseRanges(" 0-5460  5461\t10000-10001 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []Range{{0, 5460}, {5461, 5461}, {10000, 10001}}
	if !slices.Equal(rs, want) {
		t.Fatalf("ParseRanges = %v, want %v", rs, want)
	}
	if got := FormatRanges(rs); got != "0-5460 5461 10000-10001" {
		t.Errorf("FormatRanges = %q", got)
	}
	if _, err := ParseRanges("1 2 x"); !errors.Is(err, ErrSyntax) {
		t.Errorf("ParseRanges bad field error = %v", err)
	}
	if rs, err := ParseRanges(""); err != nil || len(rs) != 0 {
		t.Errorf("ParseRanges(\"\") = %v, %v", rs, err)
	}
}

func TestSlotSetBasics(t *testing.T) {
	var s SlotSet
	if !s.IsEmpty() || s.Count() != 0 {
		t.Fatal("zero SlotSet not empty")
	}
	for _, slot := range []uint16{0, 1, 63, 64, 16383} {
		s.Add(slot)
		if !s.Has(slot) {
			t.Errorf("Has(%d) false after Add", slot)
		}
	}
	if s.Count() != 5 || s.IsEmpty() {
		t.Errorf("Count = %d, want 5", s.Count())
	}
	if s.Has(16384) || s.Has(65535) {
		t.Error("Has out of range slot")
	}
	s.Remove(63)
	if s.Has(63) || s.Count() != 4 {
		t.Error("Remove(63) failed")
	}
	if got := s.Ranges(nil); !slices.Equal(got, []Range{{0, 1}, {64, 64}, {16383, 16383}}) {
		t.Errorf("Ranges = %v", got)
	}
}

func TestSlotSetPanicsOutOfRange(t *testing.T) {
	for name, f := range map[string]func(*SlotSet){
		"Add":    func(s *SlotSet) { s.Add(Slots) },
		"Remove": func(s *SlotSet) { s.Remove(Slots) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			var s SlotSet
			f(&s)
		})
	}
}

func TestSlotSetRanges(t *testing.T) {
	tests := []struct {
		name string
		in   []Range // added in this order, may overlap
		want []Range // minimal sorted form
	}{
		{"empty", nil, nil},
		{"one", []Range{{7, 7}}, []Range{{7, 7}}},
		{"all", []Range{{0, 16383}}, []Range{{0, 16383}}},
		{"word edges", []Range{{63, 64}, {127, 128}}, []Range{{63, 64}, {127, 128}}},
		{"adjacent merge", []Range{{10, 20}, {21, 30}}, []Range{{10, 30}}},
		{"overlap merge", []Range{{100, 300}, {50, 150}}, []Range{{50, 300}}},
		{"unordered", []Range{{16000, 16383}, {0, 5}}, []Range{{0, 5}, {16000, 16383}}},
		{"gap of one", []Range{{0, 5}, {7, 9}}, []Range{{0, 5}, {7, 9}}},
		{"three masters", []Range{{0, 5460}, {5461, 10922}, {10923, 16383}}, []Range{{0, 16383}}},
		{"last slot", []Range{{16383, 16383}}, []Range{{16383, 16383}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := FromRanges(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got := s.Ranges(nil)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Ranges = %v, want %v", got, tt.want)
			}
			back, err := FromRanges(got)
			if err != nil || back != s {
				t.Fatalf("FromRanges(Ranges) differs, err %v", err)
			}
			n := 0
			for _, r := range got {
				n += r.Len()
			}
			if n != s.Count() {
				t.Errorf("ranges cover %d slots, Count = %d", n, s.Count())
			}
		})
	}
}

func TestSlotSetRangeErrors(t *testing.T) {
	var s SlotSet
	if err := s.AddRange(Range{5, 4}); !errors.Is(err, ErrRangeOrder) {
		t.Errorf("AddRange(5-4) = %v", err)
	}
	if err := s.AddRange(Range{0, Slots}); !errors.Is(err, ErrSlotOutOfRange) {
		t.Errorf("AddRange(0-16384) = %v", err)
	}
	if err := s.RemoveRange(Range{Slots, Slots}); !errors.Is(err, ErrSlotOutOfRange) {
		t.Errorf("RemoveRange(16384) = %v", err)
	}
	if !s.IsEmpty() {
		t.Error("failed AddRange changed the set")
	}
	if _, err := FromRanges([]Range{{0, 1}, {3, 2}}); !errors.Is(err, ErrRangeOrder) {
		t.Errorf("FromRanges error = %v", err)
	}
}

func TestSlotSetAlgebra(t *testing.T) {
	a, _ := FromRanges([]Range{{0, 100}})
	b, _ := FromRanges([]Range{{50, 200}})
	tests := []struct {
		name string
		op   func(s, o *SlotSet)
		want []Range
	}{
		{"union", (*SlotSet).Union, []Range{{0, 200}}},
		{"intersect", (*SlotSet).Intersect, []Range{{50, 100}}},
		{"difference", (*SlotSet).Difference, []Range{{0, 49}}},
	}
	for _, tt := range tests {
		s := a
		tt.op(&s, &b)
		if got := s.Ranges(nil); !slices.Equal(got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, got, tt.want)
		}
	}
	s := a
	if err := s.RemoveRange(Range{10, 89}); err != nil {
		t.Fatal(err)
	}
	if got := s.Ranges(nil); !slices.Equal(got, []Range{{0, 9}, {90, 100}}) {
		t.Errorf("RemoveRange = %v", got)
	}
	if a.Count() != 101 {
		t.Error("operations on a copy changed the original")
	}
}

func TestSlotSetRangesReusesDst(t *testing.T) {
	s, _ := FromRanges([]Range{{0, 1}, {5, 9}, {100, 16383}})
	dst := make([]Range, 0, 8)
	if n := testing.AllocsPerRun(100, func() { dst = s.Ranges(dst[:0]) }); n != 0 {
		t.Errorf("Ranges with capacity allocs = %v", n)
	}
}

// FuzzRanges checks the text parser: anything accepted is valid and prints
// back to exactly the input, since only canonical text is accepted.
func FuzzRanges(f *testing.F) {
	for _, s := range []string{"0", "5461", "0-5460", "16383", "16384", "10-5", "05", "1-2-3", "-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrSlotOutOfRange) && !errors.Is(err, ErrRangeOrder) {
				t.Fatalf("ParseRange(%q): unclassified error %v", s, err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("ParseRange(%q) = %v, invalid: %v", s, r, err)
		}
		text := r.String()
		r2, err := ParseRange(text)
		if err != nil || r2 != r {
			t.Fatalf("round trip %q -> %v -> %q -> %v, %v", s, r, text, r2, err)
		}
		// "s-s" is accepted but prints as "s"; everything else is canonical.
		if text != s && s != text+"-"+text {
			t.Fatalf("ParseRange(%q) prints as %q", s, text)
		}
	})
}

// FuzzSlotSetRanges checks the bitmap <-> ranges round trip on arbitrary
// bitmaps: the ranges are sorted, minimal, cover Count slots, and rebuild
// the same set.
func FuzzSlotSetRanges(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x00, 0x0f, 0xf0})
	f.Add(make([]byte, 2048))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s SlotSet
		for i, b := range data {
			if i >= len(s)*8 {
				break
			}
			s[i/8] |= uint64(b) << (8 * (i % 8))
		}
		// Also spread a short input over the whole set to reach high slots.
		for i, b := range data {
			slot := uint16(i*977+int(b)*31) % Slots
			if b&1 == 1 {
				s.Add(slot)
			}
		}
		rs := s.Ranges(nil)
		n := 0
		for i, r := range rs {
			if err := r.Validate(); err != nil {
				t.Fatalf("range %v invalid: %v", r, err)
			}
			if i > 0 && int(r.Start) <= int(rs[i-1].End)+1 {
				t.Fatalf("ranges not sorted and minimal: %v then %v", rs[i-1], r)
			}
			n += r.Len()
		}
		if n != s.Count() {
			t.Fatalf("ranges cover %d, Count %d", n, s.Count())
		}
		back, err := FromRanges(rs)
		if err != nil || back != s {
			t.Fatalf("FromRanges(Ranges(s)) != s (err %v)", err)
		}
		text := FormatRanges(rs)
		parsed, err := ParseRanges(text)
		if err != nil || !slices.Equal(parsed, rs) {
			t.Fatalf("text round trip failed: %v", err)
		}
	})
}

func BenchmarkSlotSetRanges(b *testing.B) {
	var s SlotSet
	for i := uint16(0); i < Slots; i += 3 { // worst case: many short runs
		s.Add(i)
	}
	dst := make([]Range, 0, Slots)
	b.ReportAllocs()
	for b.Loop() {
		dst = s.Ranges(dst[:0])
	}
	b.ReportMetric(float64(len(dst)), "ranges/op")
}
