package gossip

import (
	"math/rand/v2"
	"testing"

	"github.com/hearsay/hearsay/gossip/wire"
)

// The index must agree with a Go map through any sequence of inserts and
// swap-removes, including long probe runs that deletion has to repair.
func TestIDTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tab idTable
	var records []record
	model := map[wire.NodeID]bool{}
	randID := func() wire.NodeID {
		var id wire.NodeID
		// Few distinct values in the hashed bytes force collisions.
		id[0] = byte(rng.IntN(4))
		id[19] = byte(rng.IntN(200))
		id[18] = 1
		return id
	}
	for step := 0; step < 20000; step++ {
		id := randID()
		if rng.IntN(3) > 0 {
			if !model[id] {
				records = append(records, record{id: id})
				tab.put(records, id, int32(len(records)-1))
				model[id] = true
			}
		} else if model[id] {
			i, ok := tab.get(records, id)
			if !ok {
				t.Fatalf("step %d: %x missing", step, id)
			}
			tab.del(records, id)
			last := int32(len(records) - 1)
			if i != last {
				records[i] = records[last]
				tab.put(records, records[i].id, i)
			}
			records = records[:last]
			delete(model, id)
		}
		if tab.n != len(model) {
			t.Fatalf("step %d: table holds %d, model %d", step, tab.n, len(model))
		}
	}
	for id := range model {
		i, ok := tab.get(records, id)
		if !ok || records[i].id != id {
			t.Fatalf("lookup of %x failed", id)
		}
	}
	if _, ok := tab.get(records, wire.NodeID{9, 9}); ok {
		t.Fatal("found an ID never inserted")
	}
}
