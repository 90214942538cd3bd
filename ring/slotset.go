package ring

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Errors returned when validating slots and ranges. They are wrapped with
// the offending value; test for them with errors.Is.
var (
	// ErrSlotOutOfRange reports a slot number of Slots or more.
	ErrSlotOutOfRange = errors.New("ring: slot out of range")
	// ErrRangeOrder reports a range whose start is after its end.
	ErrRangeOrder = errors.New("ring: range start is after its end")
	// ErrSyntax reports text that is not a slot ("5") or a range ("0-5460").
	ErrSyntax = errors.New("ring: invalid slot syntax")
)

// Range is the inclusive span of slots Start..End.
type Range struct {
	Start, End uint16
}

// Validate reports whether r names real slots in order.
func (r Range) Validate() error {
	if r.End >= Slots {
		return fmt.Errorf("%w: %d", ErrSlotOutOfRange, r.End)
	}
	if r.Start > r.End {
		return fmt.Errorf("%w: %d-%d", ErrRangeOrder, r.Start, r.End)
	}
	return nil
}

// Len returns the number of slots in r, or 0 when Start > End.
func (r Range) Len() int {
	if r.Start > r.End {
		return 0
	}
	return int(r.End) - int(r.Start) + 1
}

// RangesLen returns the number of slots in rs, which must not overlap.
func RangesLen(rs []Range) int {
	n := 0
	for _, r := range rs {
		n += r.Len()
	}
	return n
}

// Contains reports whether slot lies in r.
func (r Range) Contains(slot uint16) bool { return r.Start <= slot && slot <= r.End }

// String returns r as CLUSTER NODES writes it: "s" for a single slot,
// "s-e" otherwise.
func (r Range) String() string { return string(r.AppendTo(nil)) }

// AppendTo appends the text of String to b.
func (r Range) AppendTo(b []byte) []byte {
	b = strconv.AppendUint(b, uint64(r.Start), 10)
	if r.Start != r.End {
		b = append(b, '-')
		b = strconv.AppendUint(b, uint64(r.End), 10)
	}
	return b
}

// ParseSlot parses a decimal slot number below Slots. Like Redis's integer
// parser it rejects signs, spaces and leading zeros, so every accepted text
// is the canonical one.
func ParseSlot(s string) (uint16, error) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%w: %q", ErrSyntax, s)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q", ErrSyntax, s)
		}
		if n < Slots { // stop growing once out of range; avoids overflow
			n = n*10 + int(c-'0')
		}
	}
	if n >= Slots {
		return 0, fmt.Errorf("%w: %s", ErrSlotOutOfRange, s)
	}
	return uint16(n), nil
}

// ParseRange parses "s" or "s-e" into a validated Range.
func ParseRange(s string) (Range, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	start, err := ParseSlot(lo)
	if err != nil {
		return Range{}, err
	}
	if !isRange {
		return Range{start, start}, nil
	}
	end, err := ParseSlot(hi)
	if err != nil {
		return Range{}, err
	}
	r := Range{start, end}
	return r, r.Validate()
}

// ParseRanges parses space-separated slots and ranges, such as the slot
// columns of a CLUSTER NODES line. The ranges are returned as written.
func ParseRanges(s string) ([]Range, error) {
	fields := strings.Fields(s)
	rs := make([]Range, 0, len(fields))
	for _, f := range fields {
		r, err := ParseRange(f)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// FormatRanges writes rs space-separated, the inverse of ParseRanges.
func FormatRanges(rs []Range) string { return string(AppendRanges(nil, rs)) }

// AppendRanges appends the text of FormatRanges to b.
func AppendRanges(b []byte, rs []Range) []byte {
	for i, r := range rs {
		if i > 0 {
			b = append(b, ' ')
		}
		b = r.AppendTo(b)
	}
	return b
}

// SlotSet is a bitmap of all Slots slots, bit i of word i/64 for slot i.
// It is a 2 KiB value: copy it with assignment and compare it with ==.
// The zero value is the empty set.
type SlotSet [Slots / 64]uint64

// mustSlot panics on a bad slot: single-slot set operations sit on hot paths
// and take slots that were validated where they entered the process.
func mustSlot(slot uint16) {
	if slot >= Slots {
		panic(fmt.Sprintf("ring: slot %d out of range", slot))
	}
}

// Add puts slot in s. It panics if slot >= Slots.
func (s *SlotSet) Add(slot uint16) {
	mustSlot(slot)
	s[slot>>6] |= 1 << (slot & 63)
}

// Remove takes slot out of s. It panics if slot >= Slots.
func (s *SlotSet) Remove(slot uint16) {
	mustSlot(slot)
	s[slot>>6] &^= 1 << (slot & 63)
}

// Has reports whether slot is in s; it is false for slot >= Slots.
func (s *SlotSet) Has(slot uint16) bool {
	if slot >= Slots {
		return false
	}
	return s[slot>>6]&(1<<(slot&63)) != 0
}

// Count returns the number of slots in s.
func (s *SlotSet) Count() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// IsEmpty reports whether s holds no slot.
func (s *SlotSet) IsEmpty() bool { return *s == SlotSet{} }

// AddRange puts every slot of r in s, after validating r.
func (s *SlotSet) AddRange(r Range) error {
	if err := r.Validate(); err != nil {
		return err
	}
	s.applyRange(r, true)
	return nil
}

// RemoveRange takes every slot of r out of s, after validating r.
func (s *SlotSet) RemoveRange(r Range) error {
	if err := r.Validate(); err != nil {
		return err
	}
	s.applyRange(r, false)
	return nil
}

// applyRange sets or clears a valid range a word at a time.
func (s *SlotSet) applyRange(r Range, set bool) {
	for w := int(r.Start >> 6); w <= int(r.End>>6); w++ {
		lo, hi := 0, 63
		if w == int(r.Start>>6) {
			lo = int(r.Start & 63)
		}
		if w == int(r.End>>6) {
			hi = int(r.End & 63)
		}
		mask := ^uint64(0) >> (63 - hi) & (^uint64(0) << lo)
		if set {
			s[w] |= mask
		} else {
			s[w] &^= mask
		}
	}
}

// Union adds every slot of o to s.
func (s *SlotSet) Union(o *SlotSet) {
	for i := range s {
		s[i] |= o[i]
	}
}

// Intersect keeps in s only the slots that are also in o.
func (s *SlotSet) Intersect(o *SlotSet) {
	for i := range s {
		s[i] &= o[i]
	}
}

// Difference removes from s every slot that is in o.
func (s *SlotSet) Difference(o *SlotSet) {
	for i := range s {
		s[i] &^= o[i]
	}
}

// Ranges appends to dst the minimal sorted list of ranges covering s and
// returns the extended slice; pass a reused dst to avoid allocating.
func (s *SlotSet) Ranges(dst []Range) []Range {
	for i := 0; ; {
		start := s.next(i, true)
		if start >= Slots {
			return dst
		}
		end := s.next(start, false) // first slot past the run
		dst = append(dst, Range{uint16(start), uint16(end - 1)})
		i = end
	}
}

// next returns the first slot >= i whose bit equals want, or Slots if none.
// It skips whole words, so a full or empty set is scanned in 256 steps.
func (s *SlotSet) next(i int, want bool) int {
	for w := i >> 6; w < len(s); w++ {
		x := s[w]
		if !want {
			x = ^x
		}
		if w == i>>6 {
			x &^= 1<<(i&63) - 1
		}
		if x != 0 {
			return w<<6 + bits.TrailingZeros64(x)
		}
	}
	return Slots
}

// FromRanges returns the set of slots covered by rs. Ranges may overlap and
// come in any order; an invalid range is an error.
func FromRanges(rs []Range) (SlotSet, error) {
	var s SlotSet
	for _, r := range rs {
		if err := s.AddRange(r); err != nil {
			return SlotSet{}, err
		}
	}
	return s, nil
}
