package gossip

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// checkRanges validates ranges from the wire or an admin call.
func checkRanges(rs []wire.SlotRange) error {
	for _, r := range rs {
		if r.Start > r.End || r.End >= ring.Slots {
			return fmt.Errorf("%w: %d-%d", ErrSlotRange, r.Start, r.End)
		}
	}
	return nil
}

// beats reports whether a claim at (epoch, id) takes a slot held at
// (curEpoch, cur): a higher configEpoch wins, and equal epochs go to the
// smaller ID so that every core picks the same owner while a collision lasts.
func beats(epoch uint64, id wire.NodeID, curEpoch uint64, cur wire.NodeID) bool {
	if epoch != curEpoch {
		return epoch > curEpoch
	}
	return bytes.Compare(id[:], cur[:]) < 0
}

func toSet(rs []wire.SlotRange) ring.SlotSet {
	var s ring.SlotSet
	for _, r := range rs {
		_ = s.AddRange(ring.Range{Start: r.Start, End: r.End})
	}
	return s
}

func fromSet(s *ring.SlotSet) []wire.SlotRange {
	rr := s.Ranges(nil)
	out := make([]wire.SlotRange, len(rr))
	for i, r := range rr {
		out[i] = wire.SlotRange{Start: r.Start, End: r.End}
	}
	return out
}

// setClaim stores cl in place of the owner's previous claim, keeping the
// digest in step. It does not touch the slot table.
func (c *Core) setClaim(cl *claim) {
	if old := c.claims[cl.owner]; old != nil {
		c.claimHashIn(old, -1)
	}
	c.claims[cl.owner] = cl
	c.claimHashIn(cl, +1)
}

func (c *Core) dropClaim(owner wire.NodeID) {
	if old := c.claims[owner]; old != nil {
		c.claimHashIn(old, -1)
		delete(c.claims, owner)
	}
}

// bestFor finds the winning claim for slot among all claims, or nil.
func (c *Core) bestFor(slot uint16) *claim {
	var best *claim
	for _, cl := range c.claims {
		if best != nil && !beats(cl.epoch, cl.owner, best.epoch, best.owner) {
			continue
		}
		for _, r := range cl.ranges {
			if r.Start <= slot && slot <= r.End {
				best = cl
				break
			}
		}
	}
	return best
}

// settle binds slot to the claim that wins it, or leaves it unassigned:
// what a slot becomes when the claim that held it goes away.
func (c *Core) settle(slot uint16) {
	if best := c.bestFor(slot); best != nil {
		c.assign(slot, best.owner, best.epoch)
	} else {
		c.unassign(slot)
	}
}

// bindClaims fills the empty slot table of a restored core from its claims.
func (c *Core) bindClaims() {
	for _, cl := range c.claims {
		for _, r := range cl.ranges {
			for s := int(r.Start); s <= int(r.End); s++ {
				cur, ce := c.table.Owner(uint16(s))
				if cur.IsZero() || beats(cl.epoch, cl.owner, ce, wire.NodeID(cur)) {
					c.assign(uint16(s), cl.owner, cl.epoch)
				}
			}
		}
	}
	c.markStale()
	c.tableChanged()
}

// markStale flags the claims that name a slot someone else holds at a
// higher epoch, so their owners get an UPDATE when they next talk to us.
func (c *Core) markStale() {
	for _, cl := range c.claims {
		cl.stale = false
		for _, r := range cl.ranges {
			for s := int(r.Start); s <= int(r.End) && !cl.stale; s++ {
				cur, ce := c.table.Owner(uint16(s))
				if wire.NodeID(cur) != cl.owner && ce > cl.epoch {
					cl.stale = true
				}
			}
		}
	}
}

// tableChanged notes that the slot table changed and must be saved.
func (c *Core) tableChanged() { c.dirty = true }

// assign binds slot to id at epoch, keeping the per-owner slot counts.
func (c *Core) assign(slot uint16, id wire.NodeID, epoch uint64) {
	cur, _ := c.table.Owner(slot)
	if wire.NodeID(cur) != id {
		c.uncount(wire.NodeID(cur))
		c.masters[id]++
		c.shardGen++
	}
	_ = c.table.Assign(slot, ring.NodeID(id), epoch)
}

// unassign leaves slot without an owner.
func (c *Core) unassign(slot uint16) {
	cur, _ := c.table.Owner(slot)
	c.uncount(wire.NodeID(cur))
	_ = c.table.Unassign(slot)
}

func (c *Core) uncount(id wire.NodeID) {
	if id.IsZero() {
		return
	}
	c.shardGen++
	if c.masters[id]--; c.masters[id] <= 0 {
		delete(c.masters, id)
	}
}

// applyClaim installs a newer claim and rebinds slots by the claim rules. It
// reports whether the slot table changed.
func (c *Core) applyClaim(cl *claim) bool {
	old := c.claims[cl.owner]
	c.setClaim(cl)
	if old != nil && cl.epoch >= old.epoch && slices.Equal(old.ranges, cl.ranges) && c.ownsAll(cl) {
		// The common case after an epoch bump: same slots, higher epoch.
		if cl.epoch != old.epoch {
			c.table.SetEpoch(ring.NodeID(cl.owner), cl.epoch)
			c.tableChanged()
			c.event(EventSlotsChanged, cl.owner)
			return true
		}
		return false
	}
	changed := false
	selfLost := false
	masterLost := false
	var taker wire.NodeID
	for _, r := range cl.ranges {
		for s := int(r.Start); s <= int(r.End); s++ {
			slot := uint16(s)
			cur, ce := c.table.Owner(slot)
			curID := wire.NodeID(cur)
			switch {
			case curID == cl.owner:
				if ce != cl.epoch {
					c.assign(slot, curID, cl.epoch)
					changed = true
				}
			case cur.IsZero() || beats(cl.epoch, cl.owner, ce, curID):
				c.assign(slot, cl.owner, cl.epoch)
				changed = true
				switch {
				case curID == c.cfg.ID:
					selfLost = true
					taker = cl.owner
				case !curID.IsZero() && curID == c.self().master:
					masterLost = true
					fallthrough
				default:
					if lc := c.claims[curID]; lc != nil {
						lc.stale = true
					}
				}
			default:
				cl.stale = true
			}
		}
	}
	if old != nil {
		gone := toSet(old.ranges)
		now := toSet(cl.ranges)
		gone.Difference(&now)
		for _, r := range gone.Ranges(nil) {
			for s := int(r.Start); s <= int(r.End); s++ {
				slot := uint16(s)
				if cur, _ := c.table.Owner(slot); wire.NodeID(cur) != cl.owner {
					continue
				}
				changed = true
				c.settle(slot)
			}
		}
	}
	if changed {
		c.tableChanged()
		c.event(EventSlotsChanged, cl.owner)
	}
	if selfLost {
		c.selfLostSlots(taker)
	}
	if masterLost {
		c.followTaker(c.self().master, cl.owner)
	}
	return changed
}

// ownsAll reports whether the claim's owner holds every slot it claims.
func (c *Core) ownsAll(cl *claim) bool {
	n := 0
	for _, r := range cl.ranges {
		n += int(r.End-r.Start) + 1
	}
	if c.masters[cl.owner] != n {
		return false
	}
	for _, r := range cl.ranges {
		for s := int(r.Start); s <= int(r.End); s++ {
			if cur, _ := c.table.Owner(uint16(s)); wire.NodeID(cur) != cl.owner {
				return false
			}
		}
	}
	return true
}

// selfLostSlots runs when a higher claim took some of our slots: they leave
// our own claim, and a master left with no slots follows the node that took
// them, as Redis does after a failover.
func (c *Core) selfLostSlots(taker wire.NodeID) {
	had := !c.own.IsEmpty()
	lost := c.ownNotHeld()
	c.own.Difference(&lost)
	s := c.self()
	if had && c.own.IsEmpty() && s.flags&wire.FlagMaster != 0 && c.lookup(taker) != nil {
		c.becomeReplica(taker)
	}
	c.publishSelf(true)
}

// becomeReplica turns this node into a replica of master; the caller
// publishes the new record.
func (c *Core) becomeReplica(master wire.NodeID) {
	s := c.self()
	c.hashIn(s, -1)
	s.flags = s.flags&^wire.FlagMaster | wire.FlagReplica
	s.master = master
	c.hashIn(s, +1)
	c.membershipGen++
	c.event(EventRoleChanged, c.cfg.ID)
}

// ownNotHeld returns the slots this node claims but its table gives to
// another node (or to none).
func (c *Core) ownNotHeld() ring.SlotSet {
	var lost ring.SlotSet
	for _, r := range c.own.Ranges(nil) {
		for slot := int(r.Start); slot <= int(r.End); slot++ {
			if cur, _ := c.table.Owner(uint16(slot)); wire.NodeID(cur) != c.cfg.ID {
				lost.Add(uint16(slot))
			}
		}
	}
	return lost
}

// publishSelf bumps this node's record version, rebuilds its claim from the
// slots it claims (c.own) and applies that claim like any other, so the
// slot table stays a function of the claims. Both are queued as rumors;
// priority pushes them at once.
func (c *Core) publishSelf(priority bool) {
	s := c.self()
	c.hashIn(s, -1)
	s.version++
	c.hashIn(s, +1)
	c.recordQ.Add(s.id)
	old := c.claims[s.id]
	wasVoter := c.masters[s.id] > 0
	var ranges []wire.SlotRange
	if s.flags&wire.FlagMaster != 0 {
		ranges = fromSet(&c.own)
	} else {
		c.own = ring.SlotSet{}
	}
	if old == nil && len(ranges) == 0 {
		// Never claimed anything: nothing to retract.
	} else if old == nil || old.epoch != s.configEpoch || !slices.Equal(old.ranges, ranges) {
		c.applyClaim(&claim{owner: s.id, epoch: s.configEpoch, version: s.version, ranges: ranges})
		c.claimQ.Add(s.id)
	}
	if !wasVoter && c.masters[s.id] > 0 {
		// A new voter: the elections of epochs up to now were counted
		// over a set of voters without it, so it must not vote in them,
		// or one epoch could gather two majorities (Redis gets the same
		// from voting only in its own currentEpoch).
		c.ballot.Floor = max(c.ballot.Floor, c.currentEpoch)
	}
	if priority {
		c.eager = true
	}
	c.markPersist()
}

// setSelfConfigEpoch changes this node's configEpoch in its record and table.
func (c *Core) setSelfConfigEpoch(e uint64) {
	s := c.self()
	if s.configEpoch == e {
		return
	}
	c.hashIn(s, -1)
	s.configEpoch = e
	c.hashIn(s, +1)
	c.table.SetEpoch(ring.NodeID(c.cfg.ID), e)
	c.event(EventEpochChanged, c.cfg.ID)
}

// receiveClaim handles a claim from the wire; its ranges alias the decoder
// and are copied before they are kept.
func (c *Core) receiveClaim(w *wire.SlotClaim, rumor bool) {
	if w.Owner == c.cfg.ID || w.Owner.IsZero() || c.blacklisted(w.Owner) {
		return
	}
	if checkRanges(w.Ranges) != nil {
		c.stats.Dropped++
		return
	}
	if old := c.claims[w.Owner]; old != nil && w.Version <= old.version {
		return
	}
	cl := &claim{owner: w.Owner, epoch: w.ConfigEpoch, version: w.Version, ranges: slices.Clone(w.Ranges)}
	c.applyClaim(cl)
	if rumor {
		c.claimQ.Add(cl.owner)
		c.eager = true
	}
	c.currentEpoch = max(c.currentEpoch, cl.epoch)
}

// maybeUpdate sends the owner of a stale claim the claim that beats it.
func (c *Core) maybeUpdate(n *record) {
	cl := c.claims[n.id]
	if cl == nil || !cl.stale {
		return
	}
	p := c.peer(n.id)
	if p.updated && c.now-p.lastUpdate < c.cfg.NodeTimeout/2 {
		return
	}
	for _, r := range cl.ranges {
		for s := int(r.Start); s <= int(r.End); s++ {
			cur, ce := c.table.Owner(uint16(s))
			if wire.NodeID(cur) == cl.owner || ce <= cl.epoch {
				continue
			}
			winner := c.claims[wire.NodeID(cur)]
			if winner == nil {
				continue
			}
			m := c.newMessage(wire.TypeUpdate)
			m.Claims = append(m.Claims, winner.wire())
			c.send(n, m)
			p.updated, p.lastUpdate = true, c.now
			return
		}
	}
	cl.stale = false
}

// handleCollision applies Redis's configEpoch collision rule: two masters
// with the same configEpoch, and this one has the smaller ID, so it takes a
// new epoch.
func (c *Core) handleCollision(h *wire.Header) {
	s := c.self()
	if h.Flags&wire.FlagMaster == 0 || s.flags&wire.FlagMaster == 0 || h.ConfigEpoch != s.configEpoch {
		return
	}
	// Only a master that serves slots needs an epoch of its own: its claims
	// are what epochs order. Redis also bumps empty masters, which in a
	// join of hundreds of fresh nodes turns into a storm of bumps, each
	// announced to everyone, for epochs that order nothing.
	if c.masters[c.cfg.ID] == 0 {
		return
	}
	if bytes.Compare(c.cfg.ID[:], h.Sender[:]) >= 0 {
		return
	}
	c.currentEpoch++
	c.setSelfConfigEpoch(c.currentEpoch)
	c.publishSelf(true)
}
