package ring

import "slices"

// Snapshot is an immutable copy of a Table at one version. It never changes
// after creation, so any number of goroutines may read it without locks.
// A nil *Snapshot reads as an empty table, which lets a reader load a not
// yet published atomic.Pointer safely.
type Snapshot struct {
	version  uint64
	assigned int
	slot     [Slots]uint16
	owners   []owner
	marks    *marks // nil when no slot is marked, the usual case
	peers    []NodeID
}

// Snapshot returns an immutable copy of t. It copies the compact per-slot
// index (32 KiB), the small owner list, and the marks only when some slot is
// marked. Calling it again without an intervening change returns the same
// snapshot.
func (t *Table) Snapshot() *Snapshot {
	if t.snap != nil && t.snap.version == t.version {
		return t.snap
	}
	s := &Snapshot{
		version:  t.version,
		assigned: t.assigned,
		slot:     t.slot,
		owners:   slices.Clone(t.owners.vals),
	}
	if !t.marked.IsEmpty() {
		m := t.marks
		s.marks = &m
		s.peers = slices.Clone(t.peers.vals)
	}
	t.snap = s
	return s
}

// Version returns the version of the table the snapshot was taken from.
func (s *Snapshot) Version() uint64 {
	if s == nil {
		return 0
	}
	return s.version
}

// Assigned returns the number of slots that have an owner.
func (s *Snapshot) Assigned() int {
	if s == nil {
		return 0
	}
	return s.assigned
}

// Owner returns the owner of slot and its stored configEpoch; the zero
// NodeID when the slot is unassigned or slot >= Slots.
func (s *Snapshot) Owner(slot uint16) (NodeID, uint64) {
	if s == nil || slot >= Slots {
		return NodeID{}, 0
	}
	i := s.slot[slot]
	if i == 0 {
		return NodeID{}, 0
	}
	o := &s.owners[i]
	return o.id, o.epoch
}

// ServedSlots sets in dst the bit of every slot (bit slot&63 of word
// slot>>6) that id owns and that is not marked MIGRATING, and clears the
// others: the slots a node serves without further checks. It reads the
// compact index, so it costs a few microseconds rather than 16384 Owner
// calls.
func (s *Snapshot) ServedSlots(id NodeID, dst *[Slots / 64]uint64) {
	*dst = [Slots / 64]uint64{}
	if s == nil || id.IsZero() {
		return
	}
	mine := make([]bool, max(1, len(s.owners))) // index 0: unassigned
	for i := 1; i < len(s.owners); i++ {
		mine[i] = s.owners[i].id == id
	}
	for slot, i := range s.slot {
		if mine[i] && (s.marks == nil || s.marks.migrating[slot] == 0) {
			dst[slot>>6] |= 1 << (slot & 63)
		}
	}
}

// Migrating returns the node slot was migrating to, if it was marked.
func (s *Snapshot) Migrating(slot uint16) (NodeID, bool) {
	if s == nil || s.marks == nil || slot >= Slots {
		return NodeID{}, false
	}
	return s.peer(s.marks.migrating[slot])
}

// Importing returns the node slot was importing from, if it was marked.
func (s *Snapshot) Importing(slot uint16) (NodeID, bool) {
	if s == nil || s.marks == nil || slot >= Slots {
		return NodeID{}, false
	}
	return s.peer(s.marks.importing[slot])
}

func (s *Snapshot) peer(i uint16) (NodeID, bool) {
	if i == 0 {
		return NodeID{}, false
	}
	return s.peers[i], true
}
