package command

import "sync"

// writePause holds client writes back while a master hands its slots to a
// replica (CLUSTER FAILOVER): Redis pauses its writers the same way, so
// that the replica can reach the master's final offset. A paused write
// does not block its event loop: its connection is parked and the command
// runs again, from the start, when the pause ends.
type writePause struct {
	mu      sync.Mutex
	paused  bool
	waiters []func([]byte)
}

// PauseWrites stops client write commands: later ones wait until
// ResumeWrites, and every write already running has finished (and is in
// the replication stream) when it returns. Reads and the replication
// stream a replica applies are not paused.
func (d *Dispatcher) PauseWrites() {
	d.pause.mu.Lock()
	d.pause.paused = true
	d.pauseOn.Store(true)
	d.pause.mu.Unlock()
	d.barrier()
}

// ResumeWrites ends a pause: every parked write runs again.
func (d *Dispatcher) ResumeWrites() {
	d.pause.mu.Lock()
	d.pause.paused = false
	d.pauseOn.Store(false)
	w := d.pause.waiters
	d.pause.waiters = nil
	d.pause.mu.Unlock()
	for _, resume := range w {
		resume(nil)
	}
}

// WritesPaused reports whether writes are paused.
func (d *Dispatcher) WritesPaused() bool { return d.pauseOn.Load() }

// park suspends x's connection until the pause ends, with the command
// left unconsumed so that it runs again then. It reports false when the
// pause ended meanwhile: the caller runs the command now.
func (d *Dispatcher) park(x *Ctx) bool {
	d.pause.mu.Lock()
	defer d.pause.mu.Unlock()
	if !d.pause.paused {
		return false
	}
	d.pause.waiters = append(d.pause.waiters, x.Block())
	x.Conn.retry = true
	return true
}
