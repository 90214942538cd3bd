// Package earliest keeps the soonest of a set of deadlines. The pure state
// machines (gossip, failover, migrate) each report when they next need a
// Tick by folding their timers through one of these, so they agree on what
// "no deadline" means: a zero Deadline holds none.
package earliest

import "time"

// Deadline is the earliest time added to it so far. The zero value holds
// no time.
type Deadline struct {
	at  time.Duration
	set bool
}

// Add keeps t if it is sooner than what d holds, or if d holds nothing.
func (d *Deadline) Add(t time.Duration) {
	if !d.set || t < d.at {
		d.at, d.set = t, true
	}
}

// Get returns the earliest time added, and false if none was.
func (d Deadline) Get() (time.Duration, bool) { return d.at, d.set }
