// Package ratelog keeps repeated log lines from flooding the log: the first
// line of a kind is written at once, the repeats within a window are only
// counted, and when the window ends one summary line says how many there
// were ("N similar in the last 10 s"), with the attributes of the last one.
//
// A kind is the message text: callers keep variable parts (peers, errors)
// in attributes, so a flood of one failure from many peers is one kind.
package ratelog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultWindow is the window of New.
const DefaultWindow = 10 * time.Second

// Limiter rate-limits log lines by message. It is safe for concurrent use.
type Limiter struct {
	log    *slog.Logger
	window time.Duration

	mu    sync.Mutex
	kinds map[string]*kind
}

type kind struct {
	level      slog.Level
	suppressed int
	last       []any
	timer      *time.Timer
}

// New returns a Limiter writing to log with DefaultWindow.
func New(log *slog.Logger) *Limiter { return NewWindow(log, DefaultWindow) }

// NewWindow returns a Limiter writing to log with the given window.
func NewWindow(log *slog.Logger, window time.Duration) *Limiter {
	return &Limiter{log: log, window: window, kinds: make(map[string]*kind)}
}

// Warn logs msg at warning level, rate-limited.
func (l *Limiter) Warn(msg string, args ...any) { l.Log(slog.LevelWarn, msg, args...) }

// Info logs msg at info level, rate-limited.
func (l *Limiter) Info(msg string, args ...any) { l.Log(slog.LevelInfo, msg, args...) }

// Log logs msg at level unless a line with the same message was written
// less than a window ago; then it only counts it for the summary.
func (l *Limiter) Log(level slog.Level, msg string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.mu.Lock()
	if k, ok := l.kinds[msg]; ok {
		k.suppressed++
		k.last = args
		k.level = max(k.level, level)
		l.mu.Unlock()
		return
	}
	k := &kind{level: level}
	l.kinds[msg] = k
	k.timer = time.AfterFunc(l.window, func() { l.endWindow(msg) })
	l.mu.Unlock()
	l.log.Log(context.Background(), level, msg, args...)
}

// endWindow writes the summary of msg's window, if anything was
// suppressed, and lets the next line of its kind through.
func (l *Limiter) endWindow(msg string) {
	l.mu.Lock()
	k := l.kinds[msg]
	delete(l.kinds, msg)
	l.mu.Unlock()
	if k == nil || k.suppressed == 0 {
		return
	}
	args := append([]any{"similar", k.suppressed}, k.last...)
	l.log.Log(context.Background(), k.level,
		fmt.Sprintf("%s (%d similar in the last %v; attributes of the last)", msg, k.suppressed, l.window), args...)
}

// Close stops the pending summaries without writing them.
func (l *Limiter) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for msg, k := range l.kinds {
		k.timer.Stop()
		delete(l.kinds, msg)
	}
}
