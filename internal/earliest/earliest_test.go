package earliest

import (
	"testing"
	"time"
)

func TestDeadline(t *testing.T) {
	var d Deadline
	if _, ok := d.Get(); ok {
		t.Fatal("zero Deadline holds a time")
	}
	// A zero time is a real deadline, not "unset".
	for _, c := range []struct {
		add  time.Duration
		want time.Duration
	}{{5, 5}, {9, 5}, {0, 0}, {3, 0}} {
		d.Add(c.add)
		if got, ok := d.Get(); !ok || got != c.want {
			t.Fatalf("after Add(%d): %d %v, want %d", c.add, got, ok, c.want)
		}
	}
	var n Deadline
	n.Add(-2)
	n.Add(-1)
	if got, _ := n.Get(); got != -2 {
		t.Fatalf("negative times: got %d, want -2", got)
	}
}
