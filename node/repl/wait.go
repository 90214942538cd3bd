package repl

import (
	"strconv"
	"time"

	"github.com/hearsay/hearsay/node/command"
	"github.com/hearsay/hearsay/node/resp"
)

// waiter is a client blocked in WAIT.
type waiter struct {
	off    int64 // the offset replicas must acknowledge
	need   int
	resume func([]byte)
	timer  *time.Timer
	done   bool
	start  time.Time
}

// cmdWait is WAIT numreplicas timeout, with Redis's semantics: it returns
// as soon as numreplicas replicas acknowledged every write this client
// made, or at the timeout (0: none) with the number that did.
func (m *Manager) cmdWait(x *command.Ctx) {
	if m.role.Load() {
		x.W.Error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.")
		return
	}
	need, err := strconv.ParseInt(string(x.Args[1]), 10, 64)
	if err != nil {
		x.W.Error("ERR value is not an integer or out of range")
		return
	}
	timeout, err := strconv.ParseInt(string(x.Args[2]), 10, 64)
	if err != nil {
		x.W.Error("ERR timeout is not an integer or out of range")
		return
	}
	if timeout < 0 {
		x.W.Error("ERR timeout is negative")
		return
	}
	off := x.Conn.WriteOffset
	m.mu.Lock()
	defer m.mu.Unlock()
	acked := m.countAcked(off)
	if int64(acked) >= need {
		x.W.Int(int64(acked))
		return
	}
	w := &waiter{off: off, need: int(need), resume: x.Block(), start: time.Now()}
	m.waiters[w] = struct{}{}
	x.Conn.OnClose(func() {
		// The client went away: nobody needs the answer.
		m.mu.Lock()
		defer m.mu.Unlock()
		w.done = true
		delete(m.waiters, w)
		if w.timer != nil {
			w.timer.Stop()
		}
	})
	if timeout > 0 {
		w.timer = time.AfterFunc(time.Duration(timeout)*time.Millisecond, func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.finish(w)
		})
	}
	// Ask every replica for its offset now rather than at its next
	// periodic ack, once per batch of writes.
	if end := m.stream.Offset(); end != m.getAckAt {
		m.getAckAt = m.stream.Append(getAckCmd)
	}
}

// countAcked counts the online replicas that acknowledged off. Called with
// m.mu held.
func (m *Manager) countAcked(off int64) int {
	n := 0
	for r := range m.replicas {
		if st := r.state.Load(); st != nil && *st == "online" && r.ack.Load() >= off {
			n++
		}
	}
	return n
}

// checkWaiters wakes the WAITs that are satisfied.
func (m *Manager) checkWaiters() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for w := range m.waiters {
		if m.countAcked(w.off) >= w.need {
			m.finish(w)
		}
	}
}

// finish replies to w with the count of replicas that acknowledged its
// offset. Called with m.mu held.
func (m *Manager) finish(w *waiter) {
	if w.done {
		return
	}
	w.done = true
	delete(m.waiters, w)
	if w.timer != nil {
		w.timer.Stop()
	}
	w.resume(resp.AppendInt(nil, int64(m.countAcked(w.off))))
	if m.cfg.OnWait != nil {
		m.cfg.OnWait(time.Since(w.start))
	}
}
