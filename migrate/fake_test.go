package migrate

import (
	"github.com/hearsay/hearsay/gossip/wire"
)

// binding is one slot's owner and configEpoch in a view.
type binding struct {
	owner wire.NodeID
	epoch uint64
}

// fakeCluster is one node's hand-built view of the cluster.
type fakeCluster struct {
	self                 wire.NodeID
	nodes                map[wire.NodeID]Node
	slots                map[uint16]binding
	migrating, importing bool
}

func (f *fakeCluster) Self() wire.NodeID { return f.self }
func (f *fakeCluster) Lookup(id wire.NodeID) (Node, bool) {
	n, ok := f.nodes[id]
	return n, ok
}
func (f *fakeCluster) SlotOwner(s uint16) (wire.NodeID, uint64) {
	b := f.slots[s]
	return b.owner, b.epoch
}
func (f *fakeCluster) LegacyMarks() (bool, bool) { return f.migrating, f.importing }

func nid(b byte) wire.NodeID { return wire.NodeID{b} }

// Node IDs of the test clusters: masters 1, 2 and 3, replica 4 of 1.
var (
	srcID  = nid(1)
	dstID  = nid(2)
	thirdI = nid(3)
	replID = nid(4)
)

// threeMasters: 1 owns 0-99 at epoch 1, 2 owns 100-199 at epoch 2, 3 owns
// 200-299 at epoch 3; slot 300 is unassigned; 4 replicates 1.
func threeMasters(self wire.NodeID) *fakeCluster {
	f := &fakeCluster{self: self, nodes: map[wire.NodeID]Node{
		srcID:  {ID: srcID, IsMaster: true},
		dstID:  {ID: dstID, IsMaster: true},
		thirdI: {ID: thirdI, IsMaster: true},
		replID: {ID: replID, Master: srcID},
	}, slots: map[uint16]binding{}}
	for s := uint16(0); s < 300; s++ {
		switch {
		case s < 100:
			f.slots[s] = binding{srcID, 1}
		case s < 200:
			f.slots[s] = binding{dstID, 2}
		default:
			f.slots[s] = binding{thirdI, 3}
		}
	}
	return f
}

func rng(a, b uint16) Slots { return Slots{{Start: a, End: b}} }

func kinds(in []Intent) []IntentKind {
	var out []IntentKind
	for _, i := range in {
		if i.Kind != Note {
			out = append(out, i.Kind)
		}
	}
	return out
}

func has(in []Intent, k IntentKind) bool {
	for _, i := range in {
		if i.Kind == k {
			return true
		}
	}
	return false
}
