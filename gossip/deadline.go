package gossip

import (
	"time"

	"github.com/hearsay/hearsay/internal/earliest"
)

// NextDeadline returns when the core next needs Tick if nothing arrives
// meanwhile: the earliest of its timers (a monitored peer turning PFAIL; a
// ping, a heartbeat round or a gossip round falling due; a handshake retry
// or a one-way MEET's ping or expiry; an election step; a refutation), at
// once when a Step or admin call left work for the next Tick (this
// replica's master turned FAIL, a manual failover moved on, this node
// learned it is held FAIL), and never later than TickPeriod after the last
// Tick.
//
// A runtime may sleep until then, or until a message or a heartbeat sample
// arrives, instead of ticking at a fixed rate. It must call NextDeadline
// again after every call into the core, since a Step can bring a timer
// forward. With external heartbeats it must feed the samples it holds
// before Tick, so that a peer is judged on its latest PONG.
//
// TickPeriod caps the sleep for the timers not listed here (report and
// blacklist expiry, replica migration, the heartbeat progress counter),
// which tolerate that delay.
func (c *Core) NextDeadline() time.Duration {
	if c.wantTick {
		return c.now
	}
	var d earliest.Deadline
	d.Add(c.lastTick + c.TickPeriod())
	if c.recordQ.Len()+c.claimQ.Len() > 0 {
		d.Add(c.lastGossip + c.cfg.GossipInterval)
	}
	slack := c.roundSlack()
	d.Add(c.lastGossip + c.cfg.SyncInterval + slack)
	d.Add(c.lastSync + c.cfg.SyncInterval + slack)
	if c.joining() {
		d.Add(c.lastSync + c.joinSyncInterval() + slack)
	}
	if t, ok := c.livenessDeadline(); ok {
		d.Add(t)
	}
	if c.gridRunning() {
		d.Add(c.nextRound())
	}
	if !c.cfg.ExternalHeartbeat {
		for _, id := range c.monitored {
			if c.lookup(id) == nil {
				continue
			}
			p := c.peers[id]
			if p == nil || p.lastPing == 0 && !p.pinged {
				return c.lastTick // never pinged: due now
			}
			d.Add(p.lastPing + c.cfg.PingInterval)
		}
	}
	for _, u := range c.unmet {
		d.Add(u.lastPing + c.handshakeTimeout()/4)
		d.Add(u.added + c.handshakeTimeout() + 1)
	}
	for _, hs := range c.handshakes {
		d.Add(hs.lastSent + c.handshakeTimeout()/4)
		d.Add(hs.started + c.handshakeTimeout() + 1)
	}
	if t, ok := c.elect.NextDeadline(); ok {
		d.Add(t)
	}
	if c.selfFailed {
		d.Add(c.failedSelf + 2*c.cfg.NodeTimeout)
	}
	at, _ := d.Get()
	return at
}

// roundSlack is how far from its due time the once-per-SyncInterval
// gossip and sync rounds may run, so that they ride on a heartbeat round's
// Tick instead of waking the runtime on their own: half a heartbeat
// interval while heartbeat rounds are on their grid. Tick then runs each
// round on the grid Tick nearest its due time, so an idle node ticks only
// on the grid and the rounds keep their rate. Without the grid, or with
// heartbeat rounds sparser than SyncInterval, the rounds keep their own
// times.
func (c *Core) roundSlack() time.Duration {
	if !c.gridRunning() || c.cfg.HeartbeatInterval > c.cfg.SyncInterval {
		return 0
	}
	return c.cfg.HeartbeatInterval / 2
}

// gridRunning reports whether heartbeat rounds fall due on their grid:
// external heartbeats, with a round asked for and peers to ping.
func (c *Core) gridRunning() bool {
	h := &c.hb
	return c.cfg.ExternalHeartbeat && h.pinged && len(h.last) > 0
}

// TickPeriod is the longest a runtime may go between ticks: a quarter of
// the node timeout, which keeps the gap well under the NodeTimeout/2 that
// Tick takes for a stall, and with external heartbeats at most the
// heartbeat interval. The progress counter stamped into our PONGs moves
// once per tick, and a tick falls on every heartbeat round (NextDeadline
// includes them): whatever the order of a peer's PINGs and our ticks near
// one round, at most every other PONG repeats a counter, so a live node's
// PONGs prove progress at least every two intervals, half the node timeout.
func (c *Core) TickPeriod() time.Duration {
	d := c.cfg.NodeTimeout / 4
	if c.cfg.ExternalHeartbeat {
		d = min(d, c.cfg.HeartbeatInterval)
	}
	return max(d, time.Millisecond)
}

// livenessCache holds the per-peer part of NextDeadline (when a watched or
// pinged peer can first turn PFAIL), the one part whose cost grows with the
// cluster. A runtime calls NextDeadline after every Step, and a Step only
// moves these times later or adds ones at least a node timeout away (a
// ping sent now, a peer heard now, a peer watched from now), which the
// TickPeriod cap already precedes; so the cache is recomputed on each Tick,
// when membership changes, and when a PFAIL peer comes back (its timer
// restarts from its last sign of life, which may be older than now). A
// cached time that is early only costs a spare Tick.
type livenessCache struct {
	at    time.Duration
	ok    bool
	valid bool
	gen   uint64 // membershipGen it was computed at
}

func (c *Core) livenessDeadline() (time.Duration, bool) {
	lc := &c.liveCache
	if lc.valid && lc.gen == c.membershipGen {
		return lc.at, lc.ok
	}
	lc.at, lc.ok = c.computeLivenessDeadline()
	lc.valid, lc.gen = true, c.membershipGen
	return lc.at, lc.ok
}

func (c *Core) computeLivenessDeadline() (time.Duration, bool) {
	var d earliest.Deadline
	timeout := c.cfg.NodeTimeout
	for _, p := range c.peerList {
		if p.pfail || c.lookup(p.id) == nil {
			continue
		}
		// checkLiveness marks PFAIL once the silence exceeds the
		// timeout, so the first instant it can is one past it.
		if p.monitored {
			from := p.monSince
			if a, ok := p.alive(); ok {
				from = max(from, a)
			}
			d.Add(from + timeout + 1)
		}
		if p.pinged {
			d.Add(p.pingSent + timeout + 1)
		}
	}
	return d.Get()
}
