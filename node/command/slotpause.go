package command

import (
	"sync"
	"sync/atomic"

	"github.com/hearsay/hearsay/ring"
)

// slotPause is the write gate of an atomic slot migration: while the
// source hands slots to their new owner, writes to those slots only are
// held back, so that the stream the target applies comes to rest at an
// offset the source can name, and the rest of the node keeps serving.
// Unlike Redis's CLIENT PAUSE and the manual-failover pause, it is per
// slot, and it never answers TRYAGAIN: a parked write runs again, from
// routing on, when its slot is resumed, so it is then either served here
// or answered with the MOVED of the slot's new owner.
type slotPause struct {
	mu      sync.Mutex
	slots   ring.SlotSet
	count   int
	waiters []slotWaiter
	// bits mirrors slots for the lock-free test every write makes under
	// its slot's writer lock; on is set while any slot is paused, so that
	// a node with no migration pays one load per write.
	bits [ring.Slots / 64]atomic.Uint64
	on   atomic.Bool
}

// slotWaiter is a parked connection. keyless waiters (FLUSHALL) touch
// every slot and wait until no slot is paused.
type slotWaiter struct {
	slot    uint16
	keyless bool
	resume  func([]byte)
}

func (p *slotPause) has(slot uint16) bool {
	return p.on.Load() && p.bits[slot/64].Load()&(1<<(slot%64)) != 0
}

// PauseSlotWrites parks client writes to the slots in rs (reads, the
// replication stream a replica applies, and other slots go on). When it
// returns, every write to those slots that was not parked has finished and
// is in the replication stream, so the stream's offset then is final for
// them until ResumeSlotWrites. Pausing a slot already paused is a no-op
// for that slot.
func (d *Dispatcher) PauseSlotWrites(rs []ring.Range) {
	p := &d.slotPause
	p.mu.Lock()
	eachSlot(rs, func(slot uint16) {
		if !p.slots.Has(slot) {
			p.slots.Add(slot)
			p.count++
			p.bits[slot/64].Or(1 << (slot % 64))
		}
	})
	p.on.Store(p.count > 0)
	p.mu.Unlock()
	// A write checks the gate under its slot's writer lock, so taking
	// each lock once waits out every write that got past the gate before
	// it closed; later ones see it closed.
	eachSlot(rs, d.st.WaitWrites)
}

// ResumeSlotWrites reopens the slots in rs and wakes the connections
// parked on them, in the order they parked; each runs its write again from
// the start (routing included) before anything that followed it on that
// connection.
func (d *Dispatcher) ResumeSlotWrites(rs []ring.Range) {
	p := &d.slotPause
	p.mu.Lock()
	eachSlot(rs, func(slot uint16) {
		if p.slots.Has(slot) {
			p.slots.Remove(slot)
			p.count--
			p.bits[slot/64].And(^uint64(1 << (slot % 64)))
		}
	})
	p.on.Store(p.count > 0)
	var wake []func([]byte)
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if (w.keyless && p.count == 0) || (!w.keyless && !p.slots.Has(w.slot)) {
			wake = append(wake, w.resume)
		} else {
			kept = append(kept, w)
		}
	}
	clear(p.waiters[len(kept):])
	p.waiters = kept
	p.mu.Unlock()
	for _, resume := range wake {
		resume(nil)
	}
}

// eachSlot calls f for every slot of rs; out-of-range ends are cut at the
// last slot rather than trusted.
func eachSlot(rs []ring.Range, f func(uint16)) {
	for _, r := range rs {
		for s := int(r.Start); s <= int(r.End) && s < ring.Slots; s++ {
			f(uint16(s))
		}
	}
}

// SlotWritesPaused reports whether writes to slot are paused.
func (d *Dispatcher) SlotWritesPaused(slot uint16) bool { return d.slotPause.has(slot) }

// PausedSlots returns how many slots have their writes paused.
func (d *Dispatcher) PausedSlots() int {
	d.slotPause.mu.Lock()
	defer d.slotPause.mu.Unlock()
	return d.slotPause.count
}

// parkSlot suspends x's connection until slot is resumed (keyless: until
// no slot is paused), leaving the command unconsumed as park does. It
// reports false when the gate opened meanwhile: the caller runs the
// command now.
func (d *Dispatcher) parkSlot(x *Ctx, slot uint16, keyless bool) bool {
	p := &d.slotPause
	p.mu.Lock()
	defer p.mu.Unlock()
	if keyless && p.count == 0 || !keyless && !p.slots.Has(slot) {
		return false
	}
	p.waiters = append(p.waiters, slotWaiter{slot: slot, keyless: keyless, resume: x.Block()})
	x.Conn.retry = true
	return true
}

// lockSlotWrites takes slot's writer lock for x's write once neither the
// failover pause nor the slot's gate holds it back. It reports false, with
// the lock not held, when the write was parked instead.
func (d *Dispatcher) lockSlotWrites(x *Ctx, slot uint16) bool {
	d.st.LockWrites(slot)
	for {
		// Checked under the lock: the pauses' barriers then cover every
		// write that got past them.
		switch {
		case d.pauseOn.Load():
			d.st.UnlockWrites(slot)
			if d.park(x) {
				return false
			}
		case d.slotPause.has(slot):
			d.st.UnlockWrites(slot)
			if d.parkSlot(x, slot, false) {
				return false
			}
		default:
			return true
		}
		d.st.LockWrites(slot)
	}
}
