package command

import (
	"strings"
	"sync"
	"testing"

	"github.com/hearsay/hearsay/ring"
)

// recFeed records what the dispatcher propagates.
type recFeed struct {
	mu  sync.Mutex
	buf []byte
}

func (f *recFeed) Append(b []byte) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, b...)
	return int64(len(f.buf))
}

// DeleteSlotKeys deletes the keys of the slots drop agrees to, propagates
// one DEL per key, and leaves every other slot alone.
func TestDeleteSlotKeys(t *testing.T) {
	h := newHarness(t, Options{})
	f := &recFeed{}
	h.d.StartPropagation(f)
	// Two keys in one slot (hash tags), one in another, one kept.
	for _, k := range []string{"{a}1", "{a}2", "{b}1", "{c}1"} {
		h.do("SET", k, "v")
	}
	sa, sb, sc := ring.KeySlot([]byte("a")), ring.KeySlot([]byte("b")), ring.KeySlot([]byte("c"))
	f.buf = nil
	rs := []ring.Range{{Start: sa, End: sa}, {Start: sb, End: sb}, {Start: sc, End: sc}}
	n := h.d.DeleteSlotKeys(rs, func(s uint16) bool { return s != sc })
	if n != 3 {
		t.Fatalf("deleted %d keys, want 3", n)
	}
	for k, want := range map[string]string{"{a}1": "$-1\r\n", "{a}2": "$-1\r\n", "{b}1": "$-1\r\n", "{c}1": "$1\r\nv\r\n"} {
		if got := h.do("GET", k); got != want {
			t.Errorf("GET %s = %q, want %q", k, got, want)
		}
	}
	prop := string(f.buf)
	for _, k := range []string{"{a}1", "{a}2", "{b}1"} {
		if !strings.Contains(prop, "*2\r\n$3\r\nDEL\r\n$"+itoa(int64(len(k)))+"\r\n"+k+"\r\n") {
			t.Errorf("no DEL of %s propagated: %q", k, prop)
		}
	}
	if strings.Contains(prop, "{c}1") {
		t.Errorf("the kept key's slot was propagated: %q", prop)
	}
	// Nothing to delete: nothing propagated.
	f.buf = nil
	if n := h.d.DeleteSlotKeys(rs, func(uint16) bool { return true }); n != 1 || strings.Contains(string(f.buf), "{a}") {
		t.Fatalf("second pass deleted %d, propagated %q", n, f.buf)
	}
}
