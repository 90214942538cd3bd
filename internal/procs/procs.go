// Package procs sizes the Go scheduler to a node's event loops and gives
// the process its timer slack (slack.go).
//
// An idle node spends most of its wakeups in the Go runtime rather than in
// its own code: an event loop that goes back to epoll_wait keeps its P
// (the scheduler's right to run Go code) for up to 10 ms while another P
// is idle, and all that time the runtime's monitor thread polls it every
// 20-40 µs instead of sleeping. With no more Ps than event loops the P is
// taken back at once and the monitor sleeps until the next timer: on 10
// idle nodes of 2 CPUs, context switches fell from about 650 to 260 a
// second and CPU from 1.4 % to 0.5 % of a core, with the same
// redis-benchmark throughput.
//
// Background work that is not an event loop (a snapshot written for BGSAVE
// or a replica's full sync) raises the limit to every CPU while it runs, so
// that it does not take the event loops' CPU.
package procs

import (
	"os"
	"runtime"
	"sync"
)

// Governor holds GOMAXPROCS at the event loops' count and raises it while
// background work runs. The zero value and a nil *Governor do nothing.
type Governor struct {
	mu         sync.Mutex
	base, full int
	busy       int
	on         bool
}

// New sets GOMAXPROCS to loops (at least 1, at most the CPUs) and returns
// a Governor that raises it to every CPU while Busy work runs. When the
// GOMAXPROCS environment variable is set, the operator's choice stands and
// the Governor does nothing.
func New(loops int) *Governor {
	if os.Getenv("GOMAXPROCS") != "" {
		return &Governor{}
	}
	full := runtime.NumCPU()
	g := &Governor{base: Planned(loops), full: full, on: true}
	runtime.GOMAXPROCS(g.base)
	return g
}

// Planned is the GOMAXPROCS that New(loops) will set when no background
// work runs: the GOMAXPROCS environment variable's when it is set,
// otherwise loops within 1 and the CPUs.
func Planned(loops int) int {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	return min(max(loops, 1), runtime.NumCPU())
}

// Procs returns the limit in force when no background work runs, and
// whether the Governor sets it.
func (g *Governor) Procs() (int, bool) {
	if g == nil || !g.on {
		return runtime.GOMAXPROCS(0), false
	}
	return g.base, true
}

// Busy raises GOMAXPROCS to every CPU until the returned function is
// called; calls nest.
func (g *Governor) Busy() (done func()) {
	if g == nil || !g.on || g.full == g.base {
		return func() {}
	}
	g.mu.Lock()
	g.busy++
	if g.busy == 1 {
		runtime.GOMAXPROCS(g.full)
	}
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.busy--
			if g.busy == 0 {
				runtime.GOMAXPROCS(g.base)
			}
			g.mu.Unlock()
		})
	}
}
