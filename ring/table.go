package ring

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// NodeID identifies a node: 20 bytes, as on the cluster bus. The zero value
// means "no node". Callers convert from their own 20-byte ID types.
type NodeID [20]byte

// IsZero reports whether id is the zero ID, which stands for "no node".
func (id NodeID) IsZero() bool { return id == NodeID{} }

// String returns the 40-character lowercase hex form used by Redis.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// ErrZeroNode is returned when a zero NodeID is given where a node is needed.
var ErrZeroNode = errors.New("ring: zero node ID")

// owner is what a slot is bound to: a node and its configEpoch for the slot.
type owner struct {
	id    NodeID
	epoch uint64
}

// interner stores each distinct value once and hands out a uint16 index, so
// per-slot arrays stay 2 bytes a slot and a snapshot copies 32 KiB, not a
// map. Index 0 is reserved for "none". Values are reference-counted by the
// slots using them and their index is recycled when unused, so the number of
// indices in use never exceeds Slots and a uint16 cannot overflow.
type interner[K comparable] struct {
	vals  []K
	refs  []int32
	index map[K]uint16
	free  []uint16
}

// acquire returns the index of k, adding it if needed, and takes one
// reference to it.
func (in *interner[K]) acquire(k K) uint16 {
	if i, ok := in.index[k]; ok {
		in.refs[i]++
		return i
	}
	if in.index == nil {
		in.index = make(map[K]uint16)
		in.vals = make([]K, 1, 8)
		in.refs = make([]int32, 1, 8)
	}
	var i uint16
	if n := len(in.free); n > 0 {
		i = in.free[n-1]
		in.free = in.free[:n-1]
		in.vals[i] = k
	} else {
		i = uint16(len(in.vals))
		in.vals = append(in.vals, k)
		in.refs = append(in.refs, 0)
	}
	in.refs[i] = 1
	in.index[k] = i
	return i
}

// release drops one reference to index i, recycling it when unused.
func (in *interner[K]) release(i uint16) {
	in.refs[i]--
	if in.refs[i] == 0 {
		delete(in.index, in.vals[i])
		var zero K
		in.vals[i] = zero
		in.free = append(in.free, i)
	}
}

// marks holds the per-slot migrating and importing peers as interned
// indices; it is one value so a snapshot copies it with one allocation.
type marks struct {
	migrating [Slots]uint16
	importing [Slots]uint16
}

// Table is the mutable slot table: for every slot, its owner and the owner's
// configEpoch, and this node's migrating and importing marks. It is owned by
// one goroutine and is not safe for concurrent use; other goroutines read
// Snapshots. The zero value is an empty table ready to use. A Table must not
// be copied after first use.
type Table struct {
	slot     [Slots]uint16 // index into owners; 0 is unassigned
	owners   interner[owner]
	assigned int

	marks  marks
	peers  interner[NodeID] // nodes named by marks
	marked SlotSet          // the slots with any mark: snapshots skip marks without one, Marks visits only these

	version uint64
	snap    *Snapshot // last snapshot, reused while version is unchanged
}

// checkSlot validates a slot given to a Table mutator; the table is fed from
// admin commands and the bus, so bad input is an error, not a panic.
func checkSlot(slot uint16) error {
	if slot >= Slots {
		return fmt.Errorf("%w: %d", ErrSlotOutOfRange, slot)
	}
	return nil
}

// Version returns a counter that grows by one on every change to the table.
func (t *Table) Version() uint64 { return t.version }

// Owner returns the owner of slot and the configEpoch stored for it. An
// unassigned slot, or a slot >= Slots, gives the zero NodeID and epoch 0.
// It is O(1) and allocates nothing.
func (t *Table) Owner(slot uint16) (NodeID, uint64) {
	if slot >= Slots {
		return NodeID{}, 0
	}
	i := t.slot[slot]
	if i == 0 {
		return NodeID{}, 0
	}
	o := t.owners.vals[i]
	return o.id, o.epoch
}

// bind points slot at owners index i, moving one reference from the old
// owner. The caller holds a reference to i for the duration of the call.
func (t *Table) bind(slot uint16, i uint16) {
	old := t.slot[slot]
	t.owners.refs[i]++
	t.slot[slot] = i
	if old != 0 {
		t.owners.release(old)
	} else {
		t.assigned++
	}
}

// Assign binds slot to id at epoch unconditionally, as ADDSLOTS and
// SETSLOT NODE do. Marks are left alone.
func (t *Table) Assign(slot uint16, id NodeID, epoch uint64) error {
	if err := checkSlot(slot); err != nil {
		return err
	}
	if id.IsZero() {
		return ErrZeroNode
	}
	o := owner{id, epoch}
	if cur := t.slot[slot]; cur != 0 && t.owners.vals[cur] == o {
		return nil
	}
	i := t.owners.acquire(o)
	t.bind(slot, i)
	t.owners.release(i)
	t.version++
	return nil
}

// Unassign leaves slot without an owner, as DELSLOTS does. Marks are left
// alone.
func (t *Table) Unassign(slot uint16) error {
	if err := checkSlot(slot); err != nil {
		return err
	}
	if cur := t.slot[slot]; cur != 0 {
		t.slot[slot] = 0
		t.owners.release(cur)
		t.assigned--
		t.version++
	}
	return nil
}

// Claim applies a master's announcement that it serves set at configEpoch
// epoch, using the rebinding rule: a slot is rebound to the claimer when it
// is unassigned or when epoch is strictly greater than the stored epoch of
// its current owner. An equal or lower epoch leaves the slot alone and is
// not reported. Slots the claimer already owns keep their owner; their
// stored epoch is raised to epoch if it was lower.
//
// rebound lists the slots that changed owner as minimal sorted ranges.
// losers lists, sorted and without repeats, the previous owners that lost at
// least one slot. A zero claimer or a nil set claims nothing. Marks are
// untouched, and slots this node imports are not skipped: a caller that
// follows Redis there removes them from set first.
func (t *Table) Claim(id NodeID, epoch uint64, set *SlotSet) (rebound []Range, losers []NodeID) {
	if id.IsZero() || set == nil {
		return nil, nil
	}
	claim := owner{id, epoch}
	i := t.owners.acquire(claim) // held so the index cannot be recycled mid-loop
	var moved SlotSet
	var lost []bool // by owners index, sized lazily
	changed := false
	for w, word := range set {
		for word != 0 {
			slot := uint16(w<<6 | bits.TrailingZeros64(word))
			word &= word - 1
			cur := t.slot[slot]
			if cur == i {
				continue
			}
			if cur != 0 {
				o := t.owners.vals[cur]
				if epoch <= o.epoch {
					continue
				}
				// The claimer's own slot only has its epoch raised.
				if o.id != id {
					if lost == nil {
						lost = make([]bool, len(t.owners.vals))
					}
					if !lost[cur] {
						lost[cur] = true
						losers = append(losers, o.id)
					}
					moved.Add(slot)
				}
			} else {
				moved.Add(slot)
			}
			t.bind(slot, i)
			changed = true
		}
	}
	t.owners.release(i)
	if changed {
		t.version++
	}
	if len(losers) > 1 {
		slices.SortFunc(losers, func(a, b NodeID) int { return bytes.Compare(a[:], b[:]) })
		losers = slices.Compact(losers) // one node may have held several epochs
	}
	if !moved.IsEmpty() {
		rebound = moved.Ranges(nil)
	}
	return rebound, losers
}

// SetEpoch records that id's configEpoch is now epoch: every slot id owns
// gets that epoch, so later claims are judged against it.
func (t *Table) SetEpoch(id NodeID, epoch uint64) {
	if id.IsZero() {
		return
	}
	// One node usually has one entry, but Assign and Claim can leave it with
	// several epochs; they all merge into the entry for the new epoch.
	var stale []uint16
	for i, o := range t.owners.vals {
		if i != 0 && o.id == id && o.epoch != epoch && t.owners.refs[i] > 0 {
			stale = append(stale, uint16(i))
		}
	}
	if len(stale) == 0 {
		return
	}
	target := owner{id, epoch}
	if _, ok := t.owners.index[target]; !ok {
		// Re-key one stale entry in place: the common case, no slot rewrite.
		j := stale[0]
		stale = stale[1:]
		delete(t.owners.index, t.owners.vals[j])
		t.owners.vals[j] = target
		t.owners.index[target] = j
	}
	if len(stale) > 0 {
		to := t.owners.acquire(target)
		remap := make([]bool, len(t.owners.vals))
		for _, j := range stale {
			remap[j] = true
		}
		for s, cur := range t.slot {
			if remap[cur] {
				t.bind(uint16(s), to)
			}
		}
		t.owners.release(to)
	}
	t.version++
}

// SlotsOf returns the set of slots owned by id.
func (t *Table) SlotsOf(id NodeID) SlotSet {
	var s SlotSet
	if id.IsZero() {
		return s
	}
	match := make([]bool, len(t.owners.vals))
	found := false
	for i, o := range t.owners.vals {
		if i != 0 && o.id == id && t.owners.refs[i] > 0 {
			match[i] = true
			found = true
		}
	}
	if !found {
		return s
	}
	for slot, cur := range t.slot {
		if match[cur] {
			s[slot>>6] |= 1 << (slot & 63)
		}
	}
	return s
}

// RangesByOwner returns every owner's slots as ranges in slot order,
// found in one pass over the table. SlotsOf scans the table once per
// owner, and a runtime that lists all N nodes' slots (CLUSTER NODES, the
// client views it republishes after every change) paid N scans each time:
// half of a node's CPU while a 100-node cluster formed.
func (t *Table) RangesByOwner() map[NodeID][]Range {
	out := make(map[NodeID][]Range)
	if t.assigned == 0 {
		return out
	}
	// One owner may hold slots at several epochs, under several owners
	// indexes: runs are told apart by the first index of each ID, so the
	// pass over the slots compares small integers, not IDs.
	canon := make([]uint16, len(t.owners.vals))
	first := make(map[NodeID]uint16)
	for i, o := range t.owners.vals {
		if i == 0 || t.owners.refs[i] <= 0 {
			continue
		}
		c, ok := first[o.id]
		if !ok {
			c = uint16(i)
			first[o.id] = c
		}
		canon[i] = c
	}
	run, start := canon[t.slot[0]], 0
	for slot := 1; slot <= Slots; slot++ {
		if slot < Slots && canon[t.slot[slot]] == run {
			continue
		}
		if run != 0 {
			id := t.owners.vals[run].id
			out[id] = append(out[id], Range{uint16(start), uint16(slot - 1)})
		}
		if slot < Slots {
			run, start = canon[t.slot[slot]], slot
		}
	}
	return out
}

// Assigned returns the number of slots that have an owner.
func (t *Table) Assigned() int { return t.assigned }

// Owners returns the distinct nodes that own at least one slot, sorted by ID.
func (t *Table) Owners() []NodeID {
	var ids []NodeID
	for i, o := range t.owners.vals {
		if i != 0 && t.owners.refs[i] > 0 {
			ids = append(ids, o.id)
		}
	}
	slices.SortFunc(ids, func(a, b NodeID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(ids)
}

// setMark points one mark of slot at node, or clears it for a zero node,
// keeping the peer references and the marked-slot set right.
func (t *Table) setMark(m *[Slots]uint16, slot uint16, node NodeID) {
	old := m[slot]
	if old != 0 && t.peers.vals[old] == node {
		return
	}
	if old == 0 && node.IsZero() {
		return
	}
	if !node.IsZero() {
		m[slot] = t.peers.acquire(node)
	} else {
		m[slot] = 0
	}
	if old != 0 {
		t.peers.release(old)
	}
	if t.marks.migrating[slot] != 0 || t.marks.importing[slot] != 0 {
		t.marked.Add(slot)
	} else {
		t.marked.Remove(slot)
	}
	t.version++
}

// SetMigrating marks slot as migrating to node to (SETSLOT MIGRATING).
func (t *Table) SetMigrating(slot uint16, to NodeID) error {
	if err := checkSlot(slot); err != nil {
		return err
	}
	if to.IsZero() {
		return ErrZeroNode
	}
	t.setMark(&t.marks.migrating, slot, to)
	return nil
}

// SetImporting marks slot as importing from node from (SETSLOT IMPORTING).
func (t *Table) SetImporting(slot uint16, from NodeID) error {
	if err := checkSlot(slot); err != nil {
		return err
	}
	if from.IsZero() {
		return ErrZeroNode
	}
	t.setMark(&t.marks.importing, slot, from)
	return nil
}

// ClearMarks removes both marks from slot (SETSLOT STABLE).
func (t *Table) ClearMarks(slot uint16) error {
	if err := checkSlot(slot); err != nil {
		return err
	}
	t.setMark(&t.marks.migrating, slot, NodeID{})
	t.setMark(&t.marks.importing, slot, NodeID{})
	return nil
}

// Mark is one slot's migration mark: the slot is importing from Node or
// migrating to it.
type Mark struct {
	Slot      uint16
	Importing bool
	Node      NodeID
}

// Marks lists every migration mark in slot order (a slot can carry one of
// each kind). It costs nothing while no slot is marked.
func (t *Table) Marks() []Mark {
	if t.marked.IsEmpty() {
		return nil
	}
	var out []Mark
	// The node config file is written with every slot change, so this
	// runs often during a reshard; visit only the marked slots.
	for i := t.marked.next(0, true); i < Slots; i = t.marked.next(i+1, true) {
		s := uint16(i)
		if n, ok := t.Importing(s); ok {
			out = append(out, Mark{Slot: s, Importing: true, Node: n})
		}
		if n, ok := t.Migrating(s); ok {
			out = append(out, Mark{Slot: s, Node: n})
		}
	}
	return out
}

// Migrating returns the node slot is migrating to, if it is marked.
func (t *Table) Migrating(slot uint16) (NodeID, bool) {
	if slot >= Slots {
		return NodeID{}, false
	}
	return t.peer(t.marks.migrating[slot])
}

// Importing returns the node slot is importing from, if it is marked.
func (t *Table) Importing(slot uint16) (NodeID, bool) {
	if slot >= Slots {
		return NodeID{}, false
	}
	return t.peer(t.marks.importing[slot])
}

func (t *Table) peer(i uint16) (NodeID, bool) {
	if i == 0 {
		return NodeID{}, false
	}
	return t.peers.vals[i], true
}
