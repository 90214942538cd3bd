package sim

import (
	"cmp"
	"math/bits"
	"slices"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// slotSet is a bitmap of the 16384 slots.
type slotSet [wire.NumSlots / 64]uint64

func (b *slotSet) add(slot uint16) { b[slot/64] |= 1 << (slot % 64) }

// firstCommon returns the lowest slot in both sets.
func (b *slotSet) firstCommon(o *slotSet) (uint16, bool) {
	for k := range b {
		if w := b[k] & o[k]; w != 0 {
			return uint16(k*64 + bits.TrailingZeros64(w)), true
		}
	}
	return 0, false
}

// servingLog follows which slots every master serves, and at which
// configEpoch, on every step. Serving means the node sees itself as a
// master and its own slot table gives it the slot: it answers clients for
// that slot.
//
// Two masters serving one slot at one configEpoch is what elections exist
// to prevent. An epoch is agreed when it came with the cluster's formation
// or from an election won by votes; at most one node may ever hold an
// agreed epoch. Epochs taken without consensus (BUMPEPOCH, SETSLOT NODE
// after a bump, TAKEOVER, the collision rule's own bump) can collide while
// the two sides cannot hear each other, as they can in Redis; such a
// collision must end within collisionBound once the two masters can talk.
type servingLog struct {
	on      bool
	bound   time.Duration
	serving [][]epochSlots // node -> the slots it serves, grouped by epoch
	agreed  map[uint64]int // agreed epoch -> the node that got it
	open    map[collision]*pairState
	longest time.Duration // longest resolved collision between connected masters
	seen    int           // collisions recorded
}

type epochSlots struct {
	epoch uint64
	slots *slotSet
}

type collision struct {
	a, b  int // a < b
	epoch uint64
}

type pairState struct {
	slot      uint16
	connected time.Duration // since when both could talk; -1 while they cannot
}

// collisionBound is how long two masters that hear each other may serve a
// slot at the same configEpoch before the collision rule must have split
// them, in node timeouts: one ping each way (at most half a node timeout
// apart, 20% loss) and the bump's propagation, with a wide margin.
const collisionBound = 5

// CheckServing turns on the every-step check of who serves which slot (see
// servingLog). It costs O(nodes) bitmap work per slot-table change, so the
// fault mix uses it and the thousand-node scenarios do not.
func (s *Sim) CheckServing() {
	l := &s.serve
	l.on = true
	to := s.opt.Core.NodeTimeout
	if to <= 0 {
		to = 5 * time.Second // the core's default
	}
	l.bound = collisionBound * to
	l.agreed = make(map[uint64]int)
	l.open = make(map[collision]*pairState)
	for i := range s.nodes {
		if s.Up(i) {
			s.recomputeServing(i)
		}
	}
}

// LongestCollision returns the longest time two connected masters served a
// slot at one configEpoch before the collision rule split them.
func (s *Sim) LongestCollision() time.Duration { return s.serve.longest }

// Collisions returns how many times two masters were seen serving a slot
// at one configEpoch.
func (s *Sim) Collisions() int { return s.serve.seen }

// agreeEpoch records that node i got epoch by agreement.
func (s *Sim) agreeEpoch(i int, epoch uint64) {
	l := &s.serve
	if !l.on {
		return
	}
	if prev, ok := l.agreed[epoch]; ok && prev != i {
		s.violate("configEpoch %d was agreed twice: for node %d and for node %d", epoch, prev, i)
	}
	l.agreed[epoch] = i
}

// servingChanged reports whether r may have changed what node i serves.
func servingChanged(r *gossip.Ready) bool {
	for _, e := range r.Events {
		switch e.Kind {
		case gossip.EventSlotsChanged, gossip.EventRoleChanged, gossip.EventEpochChanged, gossip.EventNodeRemoved:
			return true
		}
	}
	return false
}

// observeServing is called with every Ready of node i.
func (s *Sim) observeServing(i int, r *gossip.Ready) {
	if !s.serve.on {
		return
	}
	for _, e := range r.Failover {
		if e.Kind == gossip.FailoverPromoted {
			s.agreeEpoch(i, e.Epoch)
		}
	}
	if servingChanged(r) {
		s.recomputeServing(i)
	}
}

// recomputeServing rebuilds node i's serving set from its own table and
// checks it against every other master's.
func (s *Sim) recomputeServing(i int) {
	l := &s.serve
	if !l.on {
		return
	}
	for len(l.serving) < len(s.nodes) {
		l.serving = append(l.serving, nil)
	}
	l.serving[i] = l.serving[i][:0]
	if c := s.nodes[i].core; c != nil && s.isMaster(i) {
		id := s.nodes[i].id
		_, conf := c.Epochs()
		for slot := range uint16(wire.NumSlots) {
			o, e := c.SlotOwner(slot)
			if o != id {
				continue
			}
			if e != conf {
				s.violate("node %d serves slot %d at configEpoch %d, but its own configEpoch is %d", i, slot, e, conf)
			}
			l.setOf(i, e).add(slot)
		}
	}
	for _, k := range l.openKeys() {
		if k.a == i || k.b == i {
			s.recheck(k)
		}
	}
	for j := range l.serving {
		if j == i {
			continue
		}
		for _, a := range l.serving[i] {
			if b := l.slotsAt(j, a.epoch); b != nil {
				if slot, ok := a.slots.firstCommon(b); ok {
					s.collide(min(i, j), max(i, j), a.epoch, slot)
				}
			}
		}
	}
}

func (l *servingLog) setOf(i int, epoch uint64) *slotSet {
	if set := l.slotsAt(i, epoch); set != nil {
		return set
	}
	es := epochSlots{epoch: epoch, slots: new(slotSet)}
	l.serving[i] = append(l.serving[i], es)
	return es.slots
}

// collide records that nodes a and b both serve slot at epoch.
func (s *Sim) collide(a, b int, epoch uint64, slot uint16) {
	l := &s.serve
	k := collision{a, b, epoch}
	if _, ok := l.open[k]; ok {
		return
	}
	if l.agreedBy(a, epoch) && l.agreedBy(b, epoch) {
		s.violate("nodes %d and %d both serve slot %d at agreed configEpoch %d", a, b, slot, epoch)
	}
	l.seen++
	p := &pairState{slot: slot, connected: -1}
	l.open[k] = p
	s.recheck(k)
}

func (l *servingLog) agreedBy(i int, epoch uint64) bool {
	who, ok := l.agreed[epoch]
	return ok && who == i
}

// recheck ends collision k if it no longer holds, and otherwise starts or
// stops its clock by whether its two masters can talk.
func (s *Sim) recheck(k collision) {
	l := &s.serve
	p := l.open[k]
	still := false
	if a, b := l.slotsAt(k.a, k.epoch), l.slotsAt(k.b, k.epoch); a != nil && b != nil {
		_, still = a.firstCommon(b)
	}
	if !still {
		if p.connected >= 0 {
			l.longest = max(l.longest, s.now-p.connected)
		}
		delete(l.open, k)
		return
	}
	switch {
	case !s.canTalk(k.a, k.b):
		p.connected = -1
	case p.connected < 0:
		p.connected = s.now
	case s.now-p.connected > l.bound:
		s.violate("nodes %d and %d served slot %d at configEpoch %d for %v while they could talk (bound %v)",
			k.a, k.b, p.slot, k.epoch, s.now-p.connected, l.bound)
		delete(l.open, k) // one report per collision
	}
}

// slotsAt returns the slots node i serves at epoch, or nil.
func (l *servingLog) slotsAt(i int, epoch uint64) *slotSet {
	for _, g := range l.serving[i] {
		if g.epoch == epoch {
			return g.slots
		}
	}
	return nil
}

// canTalk reports whether nodes a and b are both running, on one side of
// any partition, and know each other past the handshake.
func (s *Sim) canTalk(a, b int) bool {
	na, nb := &s.nodes[a], &s.nodes[b]
	if na.core == nil || nb.core == nil || na.stalled || nb.stalled || na.group != nb.group {
		return false
	}
	va, oka := na.core.Node(nb.id)
	vb, okb := nb.core.Node(na.id)
	return oka && okb && (va.Flags|vb.Flags)&wire.FlagHandshake == 0
}

// sweepServing rechecks every open collision; the fault mix calls it
// periodically, since a collision between quiet nodes produces no Ready.
func (s *Sim) sweepServing() {
	for _, k := range s.serve.openKeys() {
		s.recheck(k)
	}
}

// openKeys lists the open collisions in a fixed order, so that a run's
// violations come out the same on every replay.
func (l *servingLog) openKeys() []collision {
	keys := make([]collision, 0, len(l.open))
	for k := range l.open {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y collision) int {
		return cmp.Or(cmp.Compare(x.a, y.a), cmp.Compare(x.b, y.b), cmp.Compare(x.epoch, y.epoch))
	})
	return keys
}
