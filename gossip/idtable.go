package gossip

import (
	"encoding/binary"

	"github.com/hearsay/hearsay/gossip/wire"
)

// idTable maps node IDs to indexes in Core.records. It is an open-addressing
// table of int32 slots (linear probing, backward-shift deletion) rather than a
// Go map because a simulator holds thousands of cores that each know
// thousands of nodes: this costs about 8 bytes per node instead of about 35,
// and holds no pointers for the garbage collector to scan.
type idTable struct {
	slots []int32 // index into records, or -1
	n     int
}

func idHash(id *wire.NodeID) uint64 {
	h := binary.LittleEndian.Uint64(id[0:8]) ^ binary.LittleEndian.Uint64(id[8:16])*0x9e3779b97f4a7c15
	h ^= h >> 32
	return h * 0xbf58476d1ce4e5b9
}

func (t *idTable) get(records []record, id wire.NodeID) (int32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	for h := idHash(&id) & mask; ; h = (h + 1) & mask {
		i := t.slots[h]
		if i < 0 {
			return 0, false
		}
		if records[i].id == id {
			return i, true
		}
	}
}

// put sets id's index; records[i].id must already be id.
func (t *idTable) put(records []record, id wire.NodeID, i int32) {
	if (t.n+1)*2 > len(t.slots) {
		t.grow(records, max(16, len(t.slots)*2))
	}
	mask := uint64(len(t.slots) - 1)
	for h := idHash(&id) & mask; ; h = (h + 1) & mask {
		j := t.slots[h]
		if j < 0 {
			t.slots[h] = i
			t.n++
			return
		}
		if records[j].id == id {
			t.slots[h] = i
			return
		}
	}
}

// reserve sizes the table for n entries up front.
func (t *idTable) reserve(records []record, n int) {
	size := 16
	for size < 2*n {
		size *= 2
	}
	if size > len(t.slots) {
		t.grow(records, size)
	}
}

func (t *idTable) grow(records []record, size int) {
	old := t.slots
	t.slots = make([]int32, size)
	for k := range t.slots {
		t.slots[k] = -1
	}
	t.n = 0
	for _, i := range old {
		if i >= 0 {
			t.put(records, records[i].id, i)
		}
	}
}

// del removes id, shifting later entries of its probe run back.
func (t *idTable) del(records []record, id wire.NodeID) {
	if len(t.slots) == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	h := idHash(&id) & mask
	for {
		i := t.slots[h]
		if i < 0 {
			return
		}
		if records[i].id == id {
			break
		}
		h = (h + 1) & mask
	}
	t.slots[h] = -1
	t.n--
	for j := (h + 1) & mask; t.slots[j] >= 0; j = (j + 1) & mask {
		i := t.slots[j]
		home := idHash(&records[i].id) & mask
		// Move i back into the hole if its home is not in (h, j].
		if (j > h && (home <= h || home > j)) || (j < h && home <= h && home > j) {
			t.slots[h] = i
			t.slots[j] = -1
			h = j
		}
	}
}
