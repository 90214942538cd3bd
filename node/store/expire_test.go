package store

import (
	"strconv"
	"testing"

	"github.com/hearsay/hearsay/ring"
)

// TestExpireUntil: with no stop, one call deletes every expired key (a full
// pass, resampling slots while most of a sample expired) and reports each
// to the hook; a stop that is true at once does no work.
func TestExpireUntil(t *testing.T) {
	s := New()
	const n = 50000
	for i := range n {
		k := "k" + strconv.Itoa(i)
		exp := int64(1500)
		if i%10 == 0 {
			exp = 0 // a tenth persist
		}
		set(s, k, "v", SetOptions{ExpireAt: exp}, 1000)
	}
	if d, done := s.ExpireUntil(2000, func() bool { return true }); d != 0 || done {
		t.Fatalf("stopped at once: deleted %d, completed %v", d, done)
	}
	var hooked int
	s.SetExpireHook(func(slot uint16, key []byte) {
		if ring.KeySlot(key) != slot {
			t.Errorf("hook: key %q reported in slot %d", key, slot)
		}
		hooked++
	})
	deleted, done := s.ExpireUntil(2000, func() bool { return false })
	if !done || deleted != n*9/10 || hooked != deleted || s.Len() != n/10 || s.LenWithTTL() != 0 {
		t.Fatalf("deleted %d (hook %d), completed %v, len %d, ttl %d; want %d deleted, %d left",
			deleted, hooked, done, s.Len(), s.LenWithTTL(), n*9/10, n/10)
	}
}
