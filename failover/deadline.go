package failover

import "time"

// NextDeadline returns the earliest time after which Tick has something to
// do for the election as it stands (a request to send or resend, a stalled
// round to retry, a deadline to give up at), and false when the election
// is idle. It changes nothing. A runtime that sleeps between ticks must
// tick by then; an attempt that is not scheduled yet starts on the tick
// after the master is seen failed, which the caller arranges.
func (e *Election) NextDeadline() (time.Duration, bool) {
	var at time.Duration
	set := false
	earliest := func(t time.Duration) {
		if !set || t < at {
			at, set = t, true
		}
	}
	cfg := &e.cfg
	if e.pausedEnd != 0 {
		earliest(e.mfEnd)
		if e.pausedSeen {
			earliest(e.lastPaused + cfg.resendEvery())
		}
	}
	if e.mfEnd != 0 {
		earliest(e.mfEnd)
	}
	if e.scheduled && !e.won {
		earliest(e.startAt + cfg.retryAfter())
		if !e.sent {
			earliest(e.sendAt)
		} else {
			earliest(e.lastSend + cfg.resendEvery())
			earliest(e.sendAt + cfg.authTimeout())
			if e.retries < maxQuickRetries {
				earliest(e.retryAt)
			}
		}
	}
	return at, set
}
