package gossip

import "time"

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
	at := c.lastTick + c.TickPeriod()
	earliest := func(t time.Duration) {
		if t < at {
			at = t
		}
	}
	if c.recordQ.Len()+c.claimQ.Len() > 0 {
		earliest(c.lastGossip + c.cfg.GossipInterval)
	}
	earliest(c.lastGossip + c.cfg.SyncInterval)
	earliest(c.lastSync + c.cfg.SyncInterval)
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
			earliest(from + timeout + 1)
		}
		if p.pinged {
			earliest(p.pingSent + timeout + 1)
		}
	}
	if h := &c.hb; c.cfg.ExternalHeartbeat && h.pinged && len(h.last) > 0 {
		earliest(c.nextRound())
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
			earliest(p.lastPing + c.cfg.PingInterval)
		}
	}
	for _, u := range c.unmet {
		earliest(u.lastPing + c.handshakeTimeout()/4)
		earliest(u.added + c.handshakeTimeout() + 1)
	}
	for _, hs := range c.handshakes {
		earliest(hs.lastSent + c.handshakeTimeout()/4)
		earliest(hs.started + c.handshakeTimeout() + 1)
	}
	if t, ok := c.elect.NextDeadline(); ok {
		earliest(t)
	}
	if c.selfFailed {
		earliest(c.failedSelf + 2*c.cfg.NodeTimeout)
	}
	return at
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
