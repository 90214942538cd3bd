package command

import (
	"testing"

	"github.com/hearsay/hearsay/node/resp"
)

func cmdBytes(args ...string) []byte {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	return resp.AppendCommand(nil, bs...)
}

// TestPauseParksWrites checks that a paused write leaves its command
// unconsumed and the connection blocked, that reads still run, and that the
// write runs once the pause ends.
func TestPauseParksWrites(t *testing.T) {
	h := newHarness(t, Options{})
	h.d.PauseWrites()
	if !h.d.WritesPaused() {
		t.Fatal("not paused")
	}
	woke := 0
	h.c.Wake = func() { woke++ }
	in := append(cmdBytes("SET", "k", "v"), cmdBytes("GET", "k")...)
	n, out, closed := h.d.Serve(h.c, in, nil)
	if n != 0 || len(out) != 0 || closed {
		t.Fatalf("paused SET: consumed %d, out %q, closed %v", n, out, closed)
	}
	if _, blocked := h.c.Blocked(); !blocked {
		t.Fatal("connection not blocked by the pause")
	}
	r := h.d.NewConn()
	if _, out, _ := h.d.Serve(r, cmdBytes("GET", "k"), nil); string(out) != "$-1\r\n" {
		t.Fatalf("read during the pause: %q", out)
	}
	h.d.ResumeWrites()
	if woke != 1 {
		t.Fatalf("woken %d times, want 1", woke)
	}
	if reply, blocked := h.c.Blocked(); blocked || reply != nil {
		t.Fatalf("after resume: reply %q blocked %v", reply, blocked)
	}
	n, out, _ = h.d.Serve(h.c, in, nil)
	if n != len(in) || string(out) != "+OK\r\n$1\r\nv\r\n" {
		t.Fatalf("after resume: consumed %d of %d, out %q", n, len(in), out)
	}
}

// TestPauseParksKeylessWrites covers FLUSHALL, which takes every slot's
// writer lock, and a write that comes after a read in one pipeline.
func TestPauseParksKeylessWrites(t *testing.T) {
	h := newHarness(t, Options{})
	h.do("SET", "a", "1")
	h.d.PauseWrites()
	h.c.Wake = func() {}
	in := append(cmdBytes("GET", "a"), cmdBytes("FLUSHALL")...)
	n, out, _ := h.d.Serve(h.c, in, nil)
	if first := len(cmdBytes("GET", "a")); n != first || string(out) != "$1\r\n1\r\n" {
		t.Fatalf("consumed %d (want %d), out %q", n, first, out)
	}
	h.d.ResumeWrites()
	h.c.Blocked()
	if _, out, _ := h.d.Serve(h.c, in[n:], nil); string(out) != "+OK\r\n" {
		t.Fatalf("FLUSHALL after resume: %q", out)
	}
	if got := h.do("GET", "a"); got != "$-1\r\n" {
		t.Fatalf("key survived FLUSHALL: %q", got)
	}
}

// TestPauseKeepsAsking checks that ASKING still applies to a write that was
// parked and runs again.
func TestPauseKeepsAsking(t *testing.T) {
	h := newHarness(t, Options{})
	h.do("ASKING")
	h.d.PauseWrites()
	h.c.Wake = func() {}
	in := cmdBytes("SET", "k", "v")
	if n, _, _ := h.d.Serve(h.c, in, nil); n != 0 {
		t.Fatalf("consumed %d", n)
	}
	if !h.c.Asking {
		t.Fatal("ASKING dropped by the parked write")
	}
	h.d.ResumeWrites()
	h.c.Blocked()
	h.d.Serve(h.c, in, nil)
	if h.c.Asking {
		t.Fatal("ASKING outlived the command it was for")
	}
}
