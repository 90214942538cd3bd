package slottag

import (
	"testing"

	"github.com/hearsay/hearsay/ring"
)

func TestTags(t *testing.T) {
	tags := Tags(1000)
	for s, tag := range tags {
		if got := ring.KeySlot([]byte(tag + "any key")); int(got) != s {
			t.Fatalf("tag %q for slot %d hashes to %d", tag, s, got)
		}
	}
	for _, s := range []uint16{0, 300, ring.Slots - 1} {
		if got := ring.KeySlot([]byte(For(s) + "k")); got != s {
			t.Fatalf("For(%d) hashes to %d", s, got)
		}
	}
}
