package failover

import (
	"time"

	"github.com/hearsay/hearsay/internal/earliest"
)

// NextDeadline returns the earliest time after which Tick has something to
// do for the election as it stands (a request to send or resend, a stalled
// round to retry, a deadline to give up at), and false when the election
// is idle. It changes nothing. A runtime that sleeps between ticks must
// tick by then; an attempt that is not scheduled yet starts on the tick
// after the master is seen failed, which the caller arranges.
func (e *Election) NextDeadline() (time.Duration, bool) {
	var d earliest.Deadline
	cfg := &e.cfg
	if e.pausedEnd != 0 {
		d.Add(e.mfEnd)
		if e.pausedSeen {
			d.Add(e.lastPaused + cfg.resendEvery())
		}
	}
	if e.mfEnd != 0 {
		d.Add(e.mfEnd)
	}
	if e.scheduled && !e.won {
		d.Add(e.startAt + cfg.retryAfter())
		if !e.sent {
			d.Add(e.sendAt)
		} else {
			d.Add(e.lastSend + cfg.resendEvery())
			d.Add(e.sendAt + cfg.authTimeout())
			if e.retries < maxQuickRetries {
				d.Add(e.retryAt)
			}
		}
	}
	return d.Get()
}
