package sim

import (
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// The simulator runs the real core. These names keep the one place where
// the simulator meets the core's API small.
type (
	// Core is the deterministic core under simulation.
	Core = gossip.Core
	// State is what a core persists and boots from.
	State = gossip.State
	// NodeView is one row of a core's node table.
	NodeView = gossip.NodeView
)

func newCore(cfg gossip.Config, st *State) (*Core, error) { return gossip.New(cfg, st) }

// TakeSlot makes node i claim slot, which another master may own, with a
// new configEpoch: what an operator does with CLUSTER BUMPEPOCH followed by
// CLUSTER SETSLOT <slot> NODE <self> on the taker. Each call's Ready is
// routed before the next call, as a runtime must.
func (s *Sim) TakeSlot(i int, slot uint16) error {
	if err := s.Do(i, bumpEpoch); err != nil {
		return err
	}
	return s.Do(i, func(c *Core, now time.Duration) (gossip.Ready, error) {
		return c.SetSlot(now, slot, gossip.SlotNode, c.ID())
	})
}

// ClaimSlots makes master i take rs with gossip.Core.ClaimSlots, as the
// target of an atomic migration does on the handoff: a new configEpoch
// without a vote, so the serving check counts it as unagreed.
func (s *Sim) ClaimSlots(i int, rs []wire.SlotRange) error {
	return s.Do(i, func(c *Core, now time.Duration) (gossip.Ready, error) {
		return c.ClaimSlots(now, rs)
	})
}

// bumpEpoch is CLUSTER BUMPEPOCH as a Do call; whether the epoch moved
// does not matter to the callers, only the Ready.
func bumpEpoch(c *Core, now time.Duration) (gossip.Ready, error) {
	_, _, r := c.BumpEpoch(now)
	return r, nil
}
