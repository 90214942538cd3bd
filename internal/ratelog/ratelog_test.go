package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := strings.Split(strings.TrimSpace(s.b.String()), "\n")
	if len(out) == 1 && out[0] == "" {
		return nil
	}
	return out
}

// TestFloodSummarised writes 10,000 lines of one kind and two of another
// within one window: one line of each kind comes out at once, then one
// summary for the flood with its count and the last line's attributes.
func TestFloodSummarised(t *testing.T) {
	var buf syncBuf
	l := NewWindow(slog.New(slog.NewTextHandler(&buf, nil)), 200*time.Millisecond)
	defer l.Close()
	for i := range 10000 {
		l.Warn("bus: bad frame", "peer", i)
	}
	l.Warn("other")
	l.Warn("other")
	if got := buf.lines(); len(got) != 2 || !strings.Contains(got[0], "peer=0") || !strings.Contains(got[1], "msg=other") {
		t.Fatalf("during the window: %q, want the first line of each kind", got)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(buf.lines()) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := buf.lines()
	if len(got) != 4 {
		t.Fatalf("after the window: %d lines %q, want 4", len(got), got)
	}
	var flood string
	for _, s := range got[2:] {
		if strings.Contains(s, "bad frame") {
			flood = s
		}
	}
	if !strings.Contains(flood, "9999 similar in the last 200ms") || !strings.Contains(flood, "similar=9999") || !strings.Contains(flood, "peer=9999") {
		t.Fatalf("summary %q: want the count and the last attributes", flood)
	}
	// The next line of the kind goes through at once again.
	l.Warn("bus: bad frame", "peer", "again")
	if got := buf.lines(); len(got) != 5 || !strings.Contains(got[4], "peer=again") {
		t.Fatalf("after the summary: %q", got)
	}
}

// TestSingleNoSummary: a kind seen once writes no summary.
func TestSingleNoSummary(t *testing.T) {
	var buf syncBuf
	l := NewWindow(slog.New(slog.NewTextHandler(&buf, nil)), 20*time.Millisecond)
	l.Warn("once")
	time.Sleep(100 * time.Millisecond)
	if got := buf.lines(); len(got) != 1 {
		t.Fatalf("%q, want just the one line", got)
	}
}

// TestDisabledLevel: lines below the handler's level cost no entry.
func TestDisabledLevel(t *testing.T) {
	var buf syncBuf
	l := NewWindow(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})), time.Hour)
	l.Warn("hidden")
	if len(l.kinds) != 0 || len(buf.lines()) != 0 {
		t.Fatal("a disabled level was tracked or written")
	}
}
