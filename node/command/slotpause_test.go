package command

import (
	"fmt"
	"testing"
	"time"

	"github.com/hearsay/hearsay/ring"
)

func slotRange(key string) []ring.Range {
	s := ring.KeySlot([]byte(key))
	return []ring.Range{{Start: s, End: s}}
}

// movedRouter answers MOVED for the slots in moved and serves the rest, as
// a node does after a slot's owner changed.
type movedRouter struct{ moved map[uint16]bool }

func (r *movedRouter) Route(_ *ConnState, _ *Command, slot uint16, _ [][]byte) (string, bool) {
	if r.moved[slot] {
		return fmt.Sprintf("MOVED %d 127.0.0.1:7001", slot), false
	}
	return "", true
}

// A paused slot parks its writes, with the pipeline behind them left
// unconsumed, while reads of it and writes to other slots are served.
func TestSlotPauseParksOnlyItsSlot(t *testing.T) {
	h := newHarness(t, Options{})
	h.do("SET", "k", "old")
	h.d.PauseSlotWrites(slotRange("k"))
	if !h.d.SlotWritesPaused(ring.KeySlot([]byte("k"))) || h.d.PausedSlots() != 1 {
		t.Fatal("slot not paused")
	}
	if h.d.SlotWritesPaused(ring.KeySlot([]byte("other"))) || h.d.WritesPaused() {
		t.Fatal("the gate paused more than its slot")
	}
	woke := 0
	h.c.Wake = func() { woke++ }
	first := cmdBytes("GET", "k")
	in := append(append(first, cmdBytes("SET", "k", "new")...), cmdBytes("SET", "other", "x")...)
	n, out, closed := h.d.Serve(h.c, in, nil)
	if n != len(first) || string(out) != "$3\r\nold\r\n" || closed {
		t.Fatalf("pipeline into a paused slot: consumed %d (want %d), out %q", n, len(first), out)
	}
	if _, blocked := h.c.Blocked(); !blocked {
		t.Fatal("connection not parked")
	}
	o := h.d.NewConn()
	for _, c := range []struct{ in, want string }{
		{string(cmdBytes("SET", "other", "y")), "+OK\r\n"},
		{string(cmdBytes("GET", "k")), "$3\r\nold\r\n"},
		{string(cmdBytes("MGET", "{k}a", "k")), "*2\r\n$-1\r\n$3\r\nold\r\n"},
	} {
		if _, out, _ := h.d.Serve(o, []byte(c.in), nil); string(out) != c.want {
			t.Fatalf("%q during the pause: %q, want %q", c.in, out, c.want)
		}
	}
	// A multi-key write whose keys share the paused slot parks too.
	m := h.d.NewConn()
	m.Wake = func() {}
	mset := cmdBytes("MSET", "{k}a", "1", "k", "2")
	if n, out, _ := h.d.Serve(m, mset, nil); n != 0 || len(out) != 0 {
		t.Fatalf("MSET into the paused slot: consumed %d, out %q", n, out)
	}
	// Resuming another slot wakes nobody.
	h.d.ResumeSlotWrites(slotRange("other"))
	if woke != 0 {
		t.Fatal("woken by another slot's resume")
	}
	h.d.ResumeSlotWrites(slotRange("k"))
	if woke != 1 || h.d.PausedSlots() != 0 {
		t.Fatalf("woken %d times, %d slots paused", woke, h.d.PausedSlots())
	}
	if reply, blocked := h.c.Blocked(); blocked || reply != nil {
		t.Fatalf("after resume: reply %q blocked %v", reply, blocked)
	}
	rest := in[n:]
	if n, out, _ := h.d.Serve(h.c, rest, nil); n != len(rest) || string(out) != "+OK\r\n+OK\r\n" {
		t.Fatalf("after resume: consumed %d of %d, out %q", n, len(rest), out)
	}
	m.Blocked()
	if _, out, _ := h.d.Serve(m, mset, nil); string(out) != "+OK\r\n" {
		t.Fatalf("MSET after resume: %q", out)
	}
	if got := h.do("GET", "k"); got != "$1\r\n2\r\n" {
		t.Fatalf("k = %q, want the MSET's value, which parked after the SET", got)
	}
}

// Parked writes wake in the order they parked, and one whose slot moved
// meanwhile is answered MOVED when it runs again.
func TestSlotPauseResumeOrderAndMoved(t *testing.T) {
	r := &movedRouter{moved: map[uint16]bool{}}
	h := newHarness(t, Options{Router: r})
	h.d.PauseSlotWrites(append(slotRange("a"), slotRange("b")...))
	var order []int
	conns := make([]*ConnState, 3)
	ins := [][]byte{cmdBytes("SET", "a", "1"), cmdBytes("SET", "b", "1"), cmdBytes("INCR", "a")}
	for i := range conns {
		c := h.d.NewConn()
		c.Wake = func() { order = append(order, i) }
		if n, _, _ := h.d.Serve(c, ins[i], nil); n != 0 {
			t.Fatalf("write %d not parked", i)
		}
		conns[i] = c
	}
	r.moved[ring.KeySlot([]byte("a"))] = true
	h.d.ResumeSlotWrites([]ring.Range{{Start: 0, End: ring.Slots - 1}})
	if fmt.Sprint(order) != "[0 1 2]" {
		t.Fatalf("woken in order %v", order)
	}
	want := []string{"-MOVED", "+OK", "-MOVED"}
	for i, c := range conns {
		c.Blocked()
		_, out, _ := h.d.Serve(c, ins[i], nil)
		if len(out) < len(want[i]) || string(out[:len(want[i])]) != want[i] {
			t.Fatalf("write %d after resume: %q, want %s", i, out, want[i])
		}
	}
	clear(r.moved)
	if got := h.do("EXISTS", "a"); got != ":0\r\n" {
		t.Fatal("a write answered MOVED was applied")
	}
}

// FLUSHALL would delete keys of a paused slot: it waits until no slot is
// paused.
func TestSlotPauseParksKeyless(t *testing.T) {
	h := newHarness(t, Options{})
	h.do("SET", "a", "1")
	h.d.PauseSlotWrites(append(slotRange("a"), slotRange("b")...))
	woke := 0
	h.c.Wake = func() { woke++ }
	in := cmdBytes("FLUSHALL")
	if n, _, _ := h.d.Serve(h.c, in, nil); n != 0 {
		t.Fatal("FLUSHALL ran during a slot pause")
	}
	h.d.ResumeSlotWrites(slotRange("a"))
	if woke != 0 {
		t.Fatal("FLUSHALL woken while a slot is still paused")
	}
	h.d.ResumeSlotWrites(slotRange("b"))
	if woke != 1 {
		t.Fatalf("FLUSHALL woken %d times", woke)
	}
	h.c.Blocked()
	if _, out, _ := h.d.Serve(h.c, in, nil); string(out) != "+OK\r\n" {
		t.Fatalf("FLUSHALL after resume: %q", out)
	}
}

// PauseSlotWrites returns only once a write already running in the slot
// has finished: the stream offset read then is final for the slot.
func TestSlotPauseWaitsForRunningWrite(t *testing.T) {
	h := newHarness(t, Options{})
	slot := ring.KeySlot([]byte("k"))
	h.d.Store().LockWrites(slot) // a write in the middle of running
	done := make(chan struct{})
	go func() {
		h.d.PauseSlotWrites(slotRange("k"))
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("the pause returned while a write held the slot")
	case <-time.After(50 * time.Millisecond):
	}
	// Another slot's writers are not held up by the pause under way.
	o := h.d.NewConn()
	if _, out, _ := h.d.Serve(o, cmdBytes("SET", "other", "1"), nil); string(out) != "+OK\r\n" {
		t.Fatalf("write to another slot: %q", out)
	}
	h.d.Store().UnlockWrites(slot)
	<-done
	h.d.ResumeSlotWrites(slotRange("k"))
}
