package gossip

import (
	"fmt"
	"time"

	"github.com/hearsay/hearsay/failover"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// Meet starts a handshake with the node at addr (CLUSTER MEET). Meeting
// this node, a live known address or one already in handshake is a no-op,
// as in Redis. The address of a FAIL node is met again: after CLUSTER
// RESET HARD a new ID answers there (Redis has marked the old one noaddr by
// then, so its MEET starts a handshake too).
func (c *Core) Meet(now time.Duration, addr wire.Addr) (Ready, error) {
	c.begin(now)
	if !addr.IP.IsValid() || addr.Port == 0 || addr.BusPort == 0 {
		return c.finish(), ErrBadAddr
	}
	for i := range c.records {
		if sameNode(c.records[i].addr(), addr) && (i == 0 || !c.records[i].failed()) {
			return c.finish(), nil
		}
	}
	for i := range c.handshakes {
		if sameNode(c.handshakes[i].addr, addr) {
			return c.finish(), nil
		}
	}
	hs := handshake{addr: addr, started: now}
	for i := range hs.tempID {
		hs.tempID[i] = byte(c.rng.Uint32())
	}
	c.sendMeet(&hs)
	c.handshakes = append(c.handshakes, hs)
	return c.finish(), nil
}

// Forget removes a node and keeps it out of gossip for 60 seconds
// (CLUSTER FORGET). Its slots become unassigned here.
func (c *Core) Forget(now time.Duration, id wire.NodeID) (Ready, error) {
	c.begin(now)
	switch {
	case id == c.cfg.ID:
		return c.finish(), ErrForgetMyself
	case c.lookup(id) == nil:
		return c.finish(), fmt.Errorf("ERR Unknown node %s", id)
	case c.self().master == id:
		return c.finish(), ErrForgetMaster
	}
	c.removeNode(id)
	c.blacklist[id] = now + blacklistTTL
	c.markPersist()
	return c.finish(), nil
}

// removeNode drops a node, its claim and its liveness state.
func (c *Core) removeNode(id wire.NodeID) {
	if cl := c.claims[id]; cl != nil {
		c.dropClaim(id)
		changed := false
		for _, r := range cl.ranges {
			for s := int(r.Start); s <= int(r.End); s++ {
				if cur, _ := c.table.Owner(uint16(s)); wire.NodeID(cur) == id {
					c.settle(uint16(s))
					changed = true
				}
			}
		}
		if changed {
			c.tableChanged()
			c.event(EventSlotsChanged, id)
		}
	}
	for s := 0; s < ring.Slots; s++ {
		if to, ok := c.table.Migrating(uint16(s)); ok && wire.NodeID(to) == id {
			_ = c.table.ClearMarks(uint16(s))
		}
		if from, ok := c.table.Importing(uint16(s)); ok && wire.NodeID(from) == id {
			_ = c.table.ClearMarks(uint16(s))
		}
	}
	c.removeRecord(id)
	c.recordQ.Remove(id)
	c.claimQ.Remove(id)
	if p := c.peers[id]; p != nil {
		delete(c.peers, id)
		for i, q := range c.peerList {
			if q == p {
				c.peerList = append(c.peerList[:i], c.peerList[i+1:]...)
				break
			}
		}
	}
	c.event(EventNodeRemoved, id)
}

// AddSlots assigns unassigned slots to this node (CLUSTER ADDSLOTS). Nothing
// changes unless every slot is free.
func (c *Core) AddSlots(now time.Duration, rs []wire.SlotRange) (Ready, error) {
	c.begin(now)
	if err := checkRanges(rs); err != nil {
		return c.finish(), err
	}
	var seen ring.SlotSet
	for _, r := range rs {
		for s := int(r.Start); s <= int(r.End); s++ {
			if cur, _ := c.table.Owner(uint16(s)); !cur.IsZero() {
				return c.finish(), fmt.Errorf("ERR Slot %d is already busy", s)
			}
			if seen.Has(uint16(s)) {
				return c.finish(), fmt.Errorf("ERR Slot %d specified multiple times", s)
			}
			seen.Add(uint16(s))
		}
	}
	if c.self().flags&wire.FlagMaster == 0 {
		return c.finish(), fmt.Errorf("ERR Replica can't own slots")
	}
	c.own.Union(&seen)
	c.publishSelf(true)
	return c.finish(), nil
}

// DelSlots unassigns slots in this node's table (CLUSTER DELSLOTS). Slots of
// this node leave its claim; another node's slots come back when it next
// publishes a claim, as in Redis, where DELSLOTS is local.
func (c *Core) DelSlots(now time.Duration, rs []wire.SlotRange) (Ready, error) {
	c.begin(now)
	if err := checkRanges(rs); err != nil {
		return c.finish(), err
	}
	for _, r := range rs {
		for s := int(r.Start); s <= int(r.End); s++ {
			if cur, _ := c.table.Owner(uint16(s)); cur.IsZero() {
				return c.finish(), fmt.Errorf("ERR Slot %d is already unassigned", s)
			}
		}
	}
	mine := false
	for _, r := range rs {
		for s := int(r.Start); s <= int(r.End); s++ {
			if c.own.Has(uint16(s)) {
				c.own.Remove(uint16(s))
				mine = true
			}
			_ = c.table.ClearMarks(uint16(s))
		}
	}
	if mine {
		c.publishSelf(true)
	}
	// Another master's slots stay with its claim, as in Redis they come back
	// on that master's next PING.
	c.markPersist()
	return c.finish(), nil
}

// SetConfigEpoch sets this node's configEpoch on a fresh node
// (CLUSTER SET-CONFIG-EPOCH), as redis-cli --cluster create does.
func (c *Core) SetConfigEpoch(now time.Duration, e uint64) (Ready, error) {
	c.begin(now)
	switch {
	case len(c.records) > 1:
		return c.finish(), ErrNotEmptyForEpoch
	case c.self().configEpoch != 0:
		return c.finish(), ErrEpochNotZero
	}
	c.setSelfConfigEpoch(e)
	c.currentEpoch = max(c.currentEpoch, e)
	c.publishSelf(true)
	return c.finish(), nil
}

// BumpEpoch takes a new configEpoch without consensus unless this node
// already has the unique highest one (CLUSTER BUMPEPOCH).
func (c *Core) BumpEpoch(now time.Duration) (bumped bool, epoch uint64, r Ready) {
	c.begin(now)
	bumped = c.bumpWithoutConsensus()
	return bumped, c.self().configEpoch, c.finish()
}

func (c *Core) bumpWithoutConsensus() bool {
	// Redis's rule: bump unless this node's configEpoch is already the
	// greatest epoch it knows, currentEpoch included.
	maxEpoch := c.currentEpoch
	for i := range c.records {
		maxEpoch = max(maxEpoch, c.records[i].configEpoch)
	}
	s := c.self()
	if s.configEpoch != 0 && s.configEpoch == maxEpoch {
		return false
	}
	c.currentEpoch++
	c.setSelfConfigEpoch(c.currentEpoch)
	c.publishSelf(true)
	return true
}

// Replicate makes this node a replica of master (CLUSTER REPLICATE).
func (c *Core) Replicate(now time.Duration, master wire.NodeID) (Ready, error) {
	c.begin(now)
	r := c.lookup(master)
	switch {
	case master == c.cfg.ID:
		return c.finish(), ErrReplicateMyself
	case r == nil:
		return c.finish(), fmt.Errorf("ERR Unknown node %s", master)
	case r.flags&wire.FlagMaster == 0:
		return c.finish(), ErrReplicateReplica
	case c.masters[c.cfg.ID] > 0:
		return c.finish(), ErrReplicateSlots
	}
	s := c.self()
	if s.master == master && s.flags&wire.FlagReplica != 0 {
		return c.finish(), nil
	}
	c.becomeReplica(master)
	c.publishSelf(true)
	return c.finish(), nil
}

// Reset forgets every other node and drops all slots (CLUSTER RESET). A
// hard reset also takes newID and sets the epochs to zero. A replica becomes
// an empty master. The runtime checks that a master holds no keys first.
func (c *Core) Reset(now time.Duration, hard bool, newID wire.NodeID) (Ready, error) {
	c.begin(now)
	if hard && newID.IsZero() {
		return c.finish(), fmt.Errorf("ERR a hard reset needs a new node ID")
	}
	for len(c.records) > 1 {
		c.removeNode(c.records[len(c.records)-1].id)
	}
	c.dropClaim(c.cfg.ID)
	c.own = ring.SlotSet{}
	for s := 0; s < ring.Slots; s++ {
		c.unassign(uint16(s))
		_ = c.table.ClearMarks(uint16(s))
	}
	c.tableChanged()
	c.handshakes = c.handshakes[:0]
	c.unmet = c.unmet[:0]
	clear(c.blacklist)
	s := c.self()
	c.hashIn(s, -1)
	s.flags = wire.FlagMaster
	s.master = wire.NodeID{}
	if hard {
		c.index.del(c.records, s.id)
		s.id = newID
		c.cfg.ID = newID
		c.index.put(c.records, newID, 0)
		s.version = 0
		s.configEpoch = 0
		c.currentEpoch = 0
		c.lastVoteEpoch = 0
		c.ballot = failover.Ballot{}
	}
	c.hashIn(s, +1)
	c.event(EventRoleChanged, c.cfg.ID)
	c.event(EventSlotsChanged, c.cfg.ID)
	c.membershipGen++
	c.publishSelf(false)
	c.resetAlone = true
	return c.finish(), nil
}

// SlotState is a CLUSTER SETSLOT subcommand.
type SlotState uint8

// CLUSTER SETSLOT states.
const (
	SlotImporting SlotState = iota + 1
	SlotMigrating
	SlotStable
	SlotNode
)

// SetSlot applies CLUSTER SETSLOT. Checks that need the store (keys left in
// a slot) are the runtime's.
func (c *Core) SetSlot(now time.Duration, slot uint16, st SlotState, id wire.NodeID) (Ready, error) {
	c.begin(now)
	if slot >= ring.Slots {
		return c.finish(), ErrSlotRange
	}
	if c.self().flags&wire.FlagMaster == 0 {
		return c.finish(), ErrSetSlotReplica
	}
	owner, _ := c.table.Owner(slot)
	mine := wire.NodeID(owner) == c.cfg.ID
	if st != SlotStable && c.lookup(id) == nil {
		return c.finish(), fmt.Errorf("ERR I don't know about node %s", id)
	}
	// The marks are part of State, so the coalesced write of the node
	// config file (and the one at shutdown) keeps them. Like Redis, which
	// rewrites its config without an fsync on SETSLOT, this does not wait
	// for the disk: an fsync per SETSLOT made a 1000-slot reshard take
	// tens of seconds longer.
	c.dirty = true
	switch st {
	case SlotImporting:
		if mine {
			return c.finish(), fmt.Errorf("ERR I'm already the owner of hash slot %d", slot)
		}
		_ = c.table.ClearMarks(slot)
		_ = c.table.SetImporting(slot, ring.NodeID(id))
	case SlotMigrating:
		if !mine {
			return c.finish(), fmt.Errorf("ERR I'm not the owner of hash slot %d", slot)
		}
		_ = c.table.ClearMarks(slot)
		_ = c.table.SetMigrating(slot, ring.NodeID(id))
	case SlotStable:
		_ = c.table.ClearMarks(slot)
	case SlotNode:
		if c.lookup(id).flags&wire.FlagMaster == 0 {
			return c.finish(), fmt.Errorf("ERR Target node is not a master")
		}
		_, importing := c.table.Importing(slot)
		_ = c.table.ClearMarks(slot)
		switch {
		case id == c.cfg.ID:
			if importing {
				// The new owner takes a fresh epoch so that its claim
				// beats the source's everywhere.
				c.currentEpoch++
				c.setSelfConfigEpoch(c.currentEpoch)
			}
			// Claimed at our epoch: it wins if that is the highest, as in
			// Redis, where a BUMPEPOCH that follows makes it so.
			c.own.Add(slot)
			c.publishSelf(true)
		case c.own.Has(slot):
			c.own.Remove(slot)
			c.publishSelf(true)
		}
		// Elsewhere the slot follows the claims: the new owner's claim, made
		// when it took the slot, is what moves it here. Binding it by hand
		// could leave this table out of step with every digest, where
		// nothing would ever repair it.
		c.tableChanged()
		c.event(EventSlotsChanged, id)
	default:
		return c.finish(), fmt.Errorf("ERR Invalid CLUSTER SETSLOT action or number of arguments")
	}
	c.dirty = true
	return c.finish(), nil
}

// CountMasters returns the number of masters that serve slots.
func (c *Core) CountMasters() int {
	n := 0
	for i := range c.records {
		if c.servesSlots(&c.records[i]) {
			n++
		}
	}
	return n
}

// servesSlots says r is a master that owns slots in this node's table: a
// voter in a small cluster, and a master that waits before refuting FAIL.
func (c *Core) servesSlots(r *record) bool {
	return r.flags&wire.FlagMaster != 0 && c.masters[r.id] > 0
}
