package gossip

import (
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// ClaimSlots makes this master the owner of the given slots at a fresh
// configEpoch: the ClaimSlots intent of package migrate, which the target
// of an atomic migration carries out once the source granted the handoff.
//
// The slots may belong to another master; that is the point. A claim only
// beats the old owner's where its configEpoch is higher, so currentEpoch is
// raised by one and taken as this node's configEpoch, without a vote, as
// BUMPEPOCH does (migrate's claim window is what keeps it from racing a
// failover of the source). The new record and claim are pushed to every
// node at once, as after a promotion, so that clients see one MOVED and the
// source sees the claim it waits for before it deletes its copy.
//
// Ready.Persist is always set: the runtime must make the new epoch and
// slots durable before any message leaves, unlike SETSLOT's lazy write,
// because a target that restarted without them would leave the slots with
// a source that has already stopped writing them.
func (c *Core) ClaimSlots(now time.Duration, rs []wire.SlotRange) (Ready, error) {
	c.begin(now)
	if len(rs) == 0 {
		return c.finish(), ErrSlotRange
	}
	if err := checkRanges(rs); err != nil {
		return c.finish(), err
	}
	if c.self().flags&wire.FlagMaster == 0 {
		return c.finish(), ErrReplicaSlots
	}
	c.currentEpoch++
	c.event(EventEpochChanged, c.cfg.ID)
	c.setSelfConfigEpoch(c.currentEpoch)
	add := toSet(rs)
	c.own.Union(&add)
	// publishSelf applies our new claim like anyone's, so the old owners
	// lose the slots in our table here and in theirs when it arrives.
	c.publishSelf(true)
	c.broadcastSelf()
	c.markPersist()
	return c.finish(), nil
}
