package gossip

import (
	"time"

	"github.com/hearsay/hearsay/gossip/epidemic"
	"github.com/hearsay/hearsay/gossip/wire"
)

// Bounds that keep every message well inside wire.MaxBody.
const (
	maxRangesPerMessage = 4096
	syncRecordsPerChunk = 256
	syncClaimsPerChunk  = 64
)

// refreshBudget sets the retransmit budget to Lambda·⌈log2(N+1)⌉.
func (c *Core) refreshBudget() {
	b := epidemic.RetransmitBudget(c.cfg.Lambda, len(c.records))
	if c.recordQ.Budget() != b {
		c.recordQ.SetBudget(b)
		c.claimQ.SetBudget(b)
	}
}

// fillGossip adds the gossip section: the records and claims that changed
// most recently and have been sent the fewest times.
func (c *Core) fillGossip(m *wire.Message) {
	c.recordQ.Take(c.cfg.MaxGossip, func(id wire.NodeID) {
		r := c.lookup(id)
		if r == nil {
			return
		}
		w := r.wireRecord()
		if c.pfail(id) {
			w.Flags |= wire.FlagPFail
		}
		m.Gossip = append(m.Gossip, w)
	})
	ranges := 0
	c.claimQ.Take(c.cfg.MaxClaims, func(id wire.NodeID) {
		cl := c.claims[id]
		if cl == nil || ranges+len(cl.ranges) > maxRangesPerMessage {
			return
		}
		ranges += len(cl.ranges)
		m.Claims = append(m.Claims, cl.wire())
	})
}

// ping sends a PING with a gossip section and tracks the outstanding reply.
func (c *Core) ping(r *record) {
	m := c.newMessage(wire.TypePing)
	c.fillGossip(m)
	c.send(r, m)
	p := c.peer(r.id)
	if !p.pinged {
		p.pinged = true
		p.pingSent = c.now
	}
	p.lastPing = c.now
}

// gossipRound pings one random peer: the gossip exchange and, as in SWIM,
// a random probe of liveness. FAIL nodes are avoided when others exist.
func (c *Core) gossipRound() {
	n := len(c.records) - 1
	if n <= 0 {
		return
	}
	pick := -1
	for tries := 0; tries < 3; tries++ {
		i := 1 + c.rng.IntN(n)
		pick = i
		if !c.records[i].failed() {
			break
		}
	}
	c.ping(&c.records[pick])
}

// pingMonitored pings watched peers on the bus when no heartbeat path feeds
// liveness from outside.
func (c *Core) pingMonitored() {
	for _, id := range c.monitored {
		r := c.lookup(id)
		if r == nil {
			continue
		}
		p := c.peer(id)
		if p.lastPing == 0 && !p.pinged || c.now-p.lastPing >= c.cfg.PingInterval {
			c.ping(r)
		}
	}
}

// pushEager pushes hot rumors to Fanout random peers at once, so a config
// change or FAIL does not wait for the next gossip round.
func (c *Core) pushEager() {
	for _, i := range c.randomPeers(c.cfg.Fanout, wire.NodeID{}) {
		m := c.newMessage(wire.TypePing)
		c.fillGossip(m)
		if len(m.Gossip) == 0 && len(m.Claims) == 0 {
			c.used--
			return
		}
		c.send(&c.records[i], m)
	}
}

// syncRound starts an anti-entropy exchange with a peer whose digest
// differed from ours, if there is one: equal digests mean nothing to
// repair. While nodes join, a round without such a peer picks a random one.
func (c *Core) syncRound(joining bool) {
	total := c.mismatchN
	c.mismatchN = 0
	for k := 0; k < min(total, len(c.mismatch)); k++ {
		id := c.mismatch[(total-1-k)%len(c.mismatch)]
		if r := c.lookup(id); r != nil && !r.failed() {
			c.startSync(r)
			return
		}
	}
	if joining && len(c.records) > 1 {
		// No peer showed a different digest since the last round, but
		// nodes joined: a random peer may not have heard of them yet.
		if r := &c.records[1+c.rng.IntN(len(c.records)-1)]; !r.failed() {
			c.startSync(r)
		}
	}
}

// startSync opens an exchange with r in the configured direction.
func (c *Core) startSync(r *record) {
	if c.cfg.AntiEntropy == SyncPush {
		c.sendSyncData(r, ^uint64(0), false)
		return
	}
	m := c.newMessage(wire.TypeSync)
	m.Buckets = append(m.Buckets, c.buckets[:]...)
	m.Reply = c.cfg.AntiEntropy == SyncPushPull
	c.send(r, m)
}

// receiveSync answers a digest with our records for the buckets that differ.
func (c *Core) receiveSync(from *record, m *wire.Message) {
	if len(m.Buckets) != wire.SyncBuckets {
		c.stats.Dropped++
		return
	}
	var mask uint64
	for b := range m.Buckets {
		if m.Buckets[b] != c.buckets[b] {
			mask |= 1 << b
		}
	}
	if mask != 0 {
		c.sendSyncData(from, mask, m.Reply)
	}
}

// receiveSyncData merges a chunk of records and claims, and after the last
// chunk of a push-pull answer sends ours back for the same buckets.
func (c *Core) receiveSyncData(from *record, m *wire.Message) {
	for i := range m.Gossip {
		c.mergeRecord(&m.Gossip[i], false)
	}
	for i := range m.Claims {
		c.receiveClaim(&m.Claims[i], false)
	}
	if m.Reply && m.Last {
		if r := c.lookup(from.id); r != nil {
			c.sendSyncData(r, m.Mask, false)
		}
	}
}

// sendSyncData sends our records and claims in the buckets of mask, in
// bounded chunks.
func (c *Core) sendSyncData(to *record, mask uint64, reply bool) {
	var m *wire.Message
	ranges := 0
	open := func() {
		m = c.newMessage(wire.TypeSyncData)
		m.Mask, m.Reply = mask, reply
		ranges = 0
	}
	flush := func(last bool) {
		m.Last = last
		c.send(to, m)
		m = nil
	}
	for i := range c.records {
		r := &c.records[i]
		if mask&(1<<r.id.Bucket()) == 0 {
			continue
		}
		cl := c.claims[r.id]
		if m != nil && (len(m.Gossip) >= syncRecordsPerChunk || cl != nil && (len(m.Claims) >= syncClaimsPerChunk || ranges+len(cl.ranges) > maxRangesPerMessage)) {
			flush(false)
		}
		if m == nil {
			open()
		}
		m.Gossip = append(m.Gossip, r.wireRecord())
		if cl != nil {
			m.Claims = append(m.Claims, cl.wire())
			ranges += len(cl.ranges)
		}
	}
	if m == nil {
		open() // an empty last chunk still ends the exchange
	}
	flush(true)
}

// sweepPeers forgets liveness state that no longer matters, so that random
// probes over a large cluster do not grow it without bound.
func (c *Core) sweepPeers() {
	kept := c.peerList[:0]
	for _, p := range c.peerList {
		idle := !p.monitored && !p.pfail && !p.pinged && len(p.reports) == 0 &&
			c.now-p.lastSeen > 2*c.cfg.NodeTimeout && c.now-p.lastPing > 2*c.cfg.NodeTimeout
		if idle || c.lookup(p.id) == nil {
			delete(c.peers, p.id)
			continue
		}
		kept = append(kept, p)
	}
	clear(c.peerList[len(kept):])
	c.peerList = kept
}

// Tick advances the core's timers to now.
func (c *Core) Tick(now time.Duration) Ready {
	c.begin(now)
	if gap := now - c.lastTick; gap > c.cfg.NodeTimeout/2 {
		// We were starved (Lifeguard): our own silence is not evidence
		// against others, so restart their grace periods before judging.
		for _, p := range c.peerList {
			if p.monitored {
				p.monSince = now
			}
			if p.pinged {
				p.pingSent = now
			}
		}
	}
	c.lastTick = now
	c.wantTick = false
	c.liveCache.valid = false
	c.refreshBudget()
	c.refreshMonitors()
	c.expireBlacklist()
	c.tickHandshakes()
	c.tickUnmet()
	slack := c.roundSlack()
	if since := now - c.lastGossip; since >= c.cfg.SyncInterval-slack ||
		since >= c.cfg.GossipInterval && c.recordQ.Len()+c.claimQ.Len() > 0 {
		c.lastGossip = now
		c.gossipRound()
	}
	if !c.cfg.ExternalHeartbeat {
		c.pingMonitored()
	}
	c.checkLiveness()
	c.expireReports()
	c.maybeRefute()
	c.tickElection()
	c.tickReplicaMigration()
	if c.syncDue(now, slack) {
		joining := c.joining()
		c.lastSync = now
		c.syncedKnown = len(c.records)
		c.syncRound(joining)
		c.sweepPeers()
	}
	return c.finish()
}

// syncDue reports whether the sync round runs in this Tick: every
// SyncInterval, and every joinSyncInterval while nodes joined since the
// last round. A forming cluster converges in a few fast rounds instead of
// one round a second. Other changes (claims, flags, epochs) keep the
// ordinary rate: they travel as rumors, and a sync started the moment
// they arrive only queues ahead of them.
func (c *Core) syncDue(now, slack time.Duration) bool {
	since := now - c.lastSync
	return since >= c.cfg.SyncInterval-slack || c.joining() && since >= c.joinSyncInterval()-slack
}

// joining reports whether the table grew since the last sync round.
func (c *Core) joining() bool { return len(c.records) > c.syncedKnown }

// joinSyncInterval is the sync period while nodes join: half of
// SyncInterval, never below GossipInterval. A quarter converged a
// 1000-node join faster in the simulator, but with 10 % loss the exchanges
// of whole tables crowded out the rest and the join did not converge.
func (c *Core) joinSyncInterval() time.Duration {
	return max(c.cfg.SyncInterval/2, c.cfg.GossipInterval)
}
