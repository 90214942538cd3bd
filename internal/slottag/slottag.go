// Package slottag finds hash tags that put keys in chosen slots, for the
// tests and benchmarks that fill particular slots: a key "{t12}x" belongs
// to the slot of "t12", whatever follows the tag.
package slottag

import (
	"strconv"

	"github.com/hearsay/hearsay/ring"
)

// tag is the k-th candidate tag.
func tag(k int) string { return "{t" + strconv.Itoa(k) + "}" }

// For returns a hash tag whose keys fall in slot.
func For(slot uint16) string {
	for k := 0; ; k++ {
		if t := tag(k); ring.KeySlot([]byte(t)) == slot {
			return t
		}
	}
}

// Tags returns a hash tag for each of the slots 0 .. n-1, in slot order,
// found in one sweep of the candidates. n must be at most ring.Slots.
func Tags(n int) []string {
	tags := make([]string, n)
	for found, k := 0, 0; found < n; k++ {
		t := tag(k)
		if s := int(ring.KeySlot([]byte(t))); s < n && tags[s] == "" {
			tags[s] = t
			found++
		}
	}
	return tags
}

// Keys names slots*perSlot keys, perSlot of them in each of the slots
// 0 .. slots-1: key i is in slot i/perSlot.
func Keys(slots, perSlot int) func(i int) string {
	tags := Tags(slots)
	return func(i int) string { return tags[i/perSlot] + strconv.Itoa(i%perSlot) }
}
