package gossip

import (
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

func (c *Core) blacklisted(id wire.NodeID) bool {
	exp, ok := c.blacklist[id]
	return ok && c.now < exp
}

// observeHeader applies what every message says about its sender: epochs,
// the sender's own record, proof of life, its digest, and epoch collisions.
func (c *Core) observeHeader(h *wire.Header) {
	if h.CurrentEpoch > c.currentEpoch {
		c.currentEpoch = h.CurrentEpoch
		c.markPersist()
		c.event(EventEpochChanged, c.cfg.ID)
	}
	self := headerRecord(h)
	c.mergeRecord(&self, true)
	n := c.lookup(h.Sender)
	if n == nil {
		return
	}
	n.replOffset = h.ReplOffset
	if p := c.peers[h.Sender]; p != nil {
		c.heardFrom(p)
	}
	if h.StateDigest != c.digest {
		c.noteMismatch(h.Sender)
	}
	c.handleCollision(h)
	if n.failed() && n.failVersion >= n.version {
		// It does not know yet that the cluster holds it FAIL; tell it so
		// that it can refute once the undo rule allows.
		p := c.peer(n.id)
		if p.lastFail == 0 || c.now-p.lastFail >= c.cfg.GossipInterval*5 {
			p.lastFail = c.now
			c.sendFail(n, n)
		}
	}
}

func (c *Core) noteMismatch(id wire.NodeID) {
	c.mismatch[c.mismatchN%len(c.mismatch)] = id
	c.mismatchN++
}

// mergeRecord folds one record from the wire into the table: a higher
// version replaces what we hold, and FAIL travels with the version it is
// about. It reports whether anything changed.
//
// Rumor says whether news is passed on: true for what arrives as gossip,
// false for records an anti-entropy exchange repairs. The exchange already
// reaches whoever lacks them, and re-rumoring a thousand records a joiner
// pulled at once kept gossip sections full for minutes.
func (c *Core) mergeRecord(w *wire.NodeRecord, rumor bool) bool {
	if w.ID.IsZero() {
		return false
	}
	if w.ID == c.cfg.ID {
		if w.Flags&wire.FlagFail != 0 {
			c.learnSelfFailed(w.Version, 0)
		}
		return false
	}
	if c.blacklisted(w.ID) || !w.Addr.IP.IsValid() {
		return false
	}
	r := c.lookup(w.ID)
	if r == nil {
		c.dropHandshake(w.Addr)
		nr := recordFrom(w)
		nr.failAt = c.now
		c.addRecord(nr)
		c.spread(w.ID, rumor)
		c.event(EventNodeAdded, w.ID)
		c.dirty = true
		return true
	}
	flags := w.Flags & (roleFlags | wire.FlagFail)
	switch {
	case w.Version > r.version:
		c.hashIn(r, -1)
		roleChanged := r.flags&roleFlags != flags&roleFlags || r.master != w.Master
		wasFailed, oldFailVersion := r.failed(), r.failVersion
		r.setAddr(w.Addr)
		r.master = w.Master
		r.configEpoch = w.ConfigEpoch
		r.version = w.Version
		r.flags = r.flags&wire.FlagFail | flags&roleFlags
		if flags&wire.FlagFail != 0 {
			r.flags |= wire.FlagFail
			if !wasFailed || w.Version > oldFailVersion {
				r.failAt = c.now
			}
			r.failVersion = w.Version
		} else if wasFailed && w.Version > r.failVersion {
			r.flags &^= wire.FlagFail
		}
		c.hashIn(r, +1)
		if wasFailed && !r.failed() {
			c.event(EventNodeFailCleared, r.id)
		} else if !wasFailed && r.failed() {
			c.event(EventNodeFail, r.id)
		}
		if roleChanged {
			c.membershipGen++
		}
		c.spread(r.id, rumor)
		c.dirty = true
		return true
	case w.Version == r.version && flags&wire.FlagFail != 0 && !r.failed():
		c.markFail(r, w.Version, c.now)
		return true
	}
	return false
}

// spread queues a changed record as a rumor and pushes it at once.
func (c *Core) spread(id wire.NodeID, rumor bool) {
	if rumor {
		c.recordQ.Add(id)
		c.eager = true
	}
}

// headerRecord is the sender's own record as its header states it.
func headerRecord(h *wire.Header) wire.NodeRecord {
	return wire.NodeRecord{ID: h.Sender, Addr: h.Addr, Flags: h.Flags & roleFlags, Master: h.Master, ConfigEpoch: h.ConfigEpoch, Version: h.Version}
}

// addFromHeader adds an unknown sender from its header (MEET, or a node that
// learned of us before we learned of it).
func (c *Core) addFromHeader(h *wire.Header) *record {
	if h.Sender.IsZero() || h.Sender == c.cfg.ID || c.blacklisted(h.Sender) || !h.Addr.IP.IsValid() {
		return nil
	}
	w := headerRecord(h)
	c.mergeRecord(&w, true)
	return c.lookup(h.Sender)
}

// handshakeTimeout is how long a MEET may go unanswered, as Redis: the node
// timeout, at least one second.
func (c *Core) handshakeTimeout() time.Duration { return max(c.cfg.NodeTimeout, time.Second) }

func sameNode(a, b wire.Addr) bool {
	return a.IP == b.IP && (a.BusPort == b.BusPort || a.Port == b.Port)
}

// dropHandshake ends a handshake for addr, if one is in flight. It reports
// whether there was one.
func (c *Core) dropHandshake(addr wire.Addr) bool {
	for i := range c.handshakes {
		if sameNode(c.handshakes[i].addr, addr) {
			c.handshakes = append(c.handshakes[:i], c.handshakes[i+1:]...)
			return true
		}
	}
	return false
}

func (c *Core) sendMeet(hs *handshake) {
	m := c.newMessage(wire.TypeMeet)
	c.fillGossip(m)
	c.sendTo(wire.NodeID{}, hs.addr, m)
	hs.lastSent = c.now
}

func (c *Core) tickHandshakes() {
	kept := c.handshakes[:0]
	for _, hs := range c.handshakes {
		if c.now-hs.started > c.handshakeTimeout() {
			continue
		}
		// Four tries per handshake, so one lost MEET does not lose the
		// join (the timeout can be as short as one second).
		if c.now-hs.lastSent >= c.handshakeTimeout()/4 {
			c.sendMeet(&hs)
		}
		kept = append(kept, hs)
	}
	c.handshakes = kept
}

// unmet is a node that we know only from its MEET.
type unmet struct {
	id       wire.NodeID
	added    time.Duration
	lastPing time.Duration
}

// noteMet records that id joined the table through its MEET alone. A MEET
// proves that its sender reaches us, not that we reach it: a node whose
// cluster secret differs sends MEETs we accept (we have no secret) while
// refusing every answer, and without this the table kept it as a PFAIL
// ghost forever. Redis adds a MEET's sender as a handshake node, deleted
// when no PONG completes the handshake within the handshake timeout;
// hearsay keeps the sender's real ID but drops it on the same terms.
func (c *Core) noteMet(id wire.NodeID) {
	for i := range c.unmet {
		if c.unmet[i].id == id {
			return
		}
	}
	// The first prompt waits a quarter timeout: a node that got our PONG
	// usually speaks before that.
	c.unmet = append(c.unmet, unmet{id: id, added: c.now, lastPing: c.now})
}

// confirmMet is called for every message but a MEET: a node that got our
// PONG goes on with PINGs, PONGs or an anti-entropy exchange, so anything
// else from it completes the handshake.
func (c *Core) confirmMet(id wire.NodeID) {
	for i := range c.unmet {
		if c.unmet[i].id == id {
			c.unmet = append(c.unmet[:i], c.unmet[i+1:]...)
			return
		}
	}
}

// tickUnmet pings the nodes known only from their MEET, four times per
// handshake timeout as MEETs are resent, and drops those that have said
// nothing else once it has passed.
func (c *Core) tickUnmet() {
	kept := c.unmet[:0]
	var drop []wire.NodeID
	for _, u := range c.unmet {
		r := c.lookup(u.id)
		switch {
		case r == nil:
			continue // forgotten or reset meanwhile
		case c.now-u.added > c.handshakeTimeout():
			drop = append(drop, u.id)
			continue
		case c.now-u.lastPing >= c.handshakeTimeout()/4:
			c.ping(r)
			u.lastPing = c.now
		}
		kept = append(kept, u)
	}
	c.unmet = kept
	for _, id := range drop {
		if c.self().master == id {
			continue // never our own master (see Forget)
		}
		c.removeNode(id)
		c.markPersist()
	}
}

func (c *Core) expireBlacklist() {
	for id, exp := range c.blacklist {
		if c.now >= exp {
			delete(c.blacklist, id)
		}
	}
}
