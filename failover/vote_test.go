package failover

import (
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// fakeCluster is a hand-built cluster view.
type fakeCluster struct {
	self   wire.NodeID
	epoch  uint64
	nodes  map[wire.NodeID]Node
	slotEp map[uint16]uint64
}

func (f *fakeCluster) Self() wire.NodeID    { return f.self }
func (f *fakeCluster) CurrentEpoch() uint64 { return f.epoch }
func (f *fakeCluster) Lookup(id wire.NodeID) (Node, bool) {
	n, ok := f.nodes[id]
	return n, ok
}
func (f *fakeCluster) Replicas(m wire.NodeID, dst []Node) []Node {
	for _, n := range f.nodes {
		if n.Master == m {
			dst = append(dst, n)
		}
	}
	return dst
}
func (f *fakeCluster) FailedMasters(dst []wire.NodeID) []wire.NodeID { return dst }
func (f *fakeCluster) Voters() int {
	n := 0
	for _, x := range f.nodes {
		if x.IsMaster && x.Slots > 0 {
			n++
		}
	}
	return n
}
func (f *fakeCluster) SlotsOf(wire.NodeID, []wire.SlotRange) []wire.SlotRange { return nil }
func (f *fakeCluster) SlotEpoch(s uint16) uint64                              { return f.slotEp[s] }

func nid(b byte) wire.NodeID { return wire.NodeID{b} }

// voterCluster: voter 1 and failed master 2 serve slots; 3 and 4 are
// replicas of 2.
func voterCluster() *fakeCluster {
	return &fakeCluster{
		self: nid(1), epoch: 10,
		nodes: map[wire.NodeID]Node{
			nid(1): {ID: nid(1), IsMaster: true, Slots: 100, ConfigEpoch: 1},
			nid(2): {ID: nid(2), IsMaster: true, Slots: 100, ConfigEpoch: 2, Failed: true},
			nid(3): {ID: nid(3), Master: nid(2)},
			nid(4): {ID: nid(4), Master: nid(2)},
		},
		slotEp: map[uint16]uint64{0: 2, 1: 2},
	}
}

func TestBallotRules(t *testing.T) {
	cfg := Config{NodeTimeout: time.Second}
	slots := []wire.SlotRange{{Start: 0, End: 1}}
	req := func(cand byte, epoch uint64) Request {
		return Request{Candidate: nid(cand), Master: nid(2), Epoch: epoch, MasterEpoch: 2, Slots: slots}
	}
	cl := voterCluster()
	var b Ballot
	now := time.Hour
	if ok, why := b.Decide(now, cfg, cl, req(3, 11)); !ok {
		t.Fatalf("first vote refused: %s", why)
	}
	if ok, why := b.Decide(now, cfg, cl, req(3, 11)); ok || why != RefuseEpochUsed {
		t.Fatalf("second vote in one epoch: %v %q", ok, why)
	}
	if ok, why := b.Decide(now+time.Second, cfg, cl, req(4, 12)); ok || why != RefuseRecentVote {
		t.Fatalf("another replica of the same master within 2×timeout: %v %q", ok, why)
	}
	if ok, why := b.Decide(now+time.Second, cfg, cl, req(3, 12)); !ok {
		t.Fatalf("the same candidate retrying in a new epoch: %q", why)
	}
	if ok, _ := b.Decide(now+3*time.Second, cfg, cl, req(4, 13)); !ok {
		t.Fatal("another replica after 2×timeout refused")
	}
	// A lower epoch not yet used may still be granted (another shard's).
	cl.nodes[nid(5)] = Node{ID: nid(5), IsMaster: true, Slots: 10, ConfigEpoch: 3, Failed: true}
	cl.nodes[nid(6)] = Node{ID: nid(6), Master: nid(5)}
	if ok, why := b.Decide(now+3*time.Second, cfg, cl, Request{Candidate: nid(6), Master: nid(5), Epoch: 9, MasterEpoch: 3}); !ok {
		t.Fatalf("unused lower epoch refused: %q", why)
	}

	cl = voterCluster()
	b = Ballot{}
	cl.nodes[nid(2)] = Node{ID: nid(2), IsMaster: true, Slots: 100, ConfigEpoch: 2}
	if ok, why := b.Decide(now, cfg, cl, req(3, 11)); ok || why != RefuseMasterAlive {
		t.Fatalf("vote for a live master: %v %q", ok, why)
	}
	forced := req(3, 11)
	forced.Force = true
	if ok, why := b.Decide(now, cfg, cl, forced); !ok {
		t.Fatalf("forced vote refused: %q", why)
	}

	cl = voterCluster()
	b = Ballot{}
	cl.slotEp[1] = 7 // slot 1 already moved on
	if ok, why := b.Decide(now, cfg, cl, req(3, 11)); ok || why != RefuseStaleSlots {
		t.Fatalf("stale slots: %v %q", ok, why)
	}
	if ok, why := b.Decide(now, cfg, cl, Request{Candidate: nid(1), Master: nid(2), Epoch: 20, MasterEpoch: 2}); ok || why != RefuseNotReplica {
		t.Fatalf("a master as candidate: %v %q", ok, why)
	}
	if ok, why := b.Decide(now, cfg, cl, Request{Candidate: nid(3), Master: nid(2), Epoch: 2, MasterEpoch: 2}); ok || why != RefuseStaleEpoch {
		t.Fatalf("epoch not above the master's: %v %q", ok, why)
	}
	cl.nodes[nid(1)] = Node{ID: nid(1), IsMaster: true}
	if ok, why := b.Decide(now, cfg, cl, req(3, 30)); ok || why != RefuseNotVoter {
		t.Fatalf("a master without slots voted: %v %q", ok, why)
	}
}

func TestBallotFloor(t *testing.T) {
	var b Ballot
	for e := uint64(1); e <= maxVotes+10; e++ {
		b.grant(Vote{Epoch: e})
	}
	if len(b.Votes) != maxVotes || b.Floor != 10 {
		t.Fatalf("len %d floor %d", len(b.Votes), b.Floor)
	}
	for e := uint64(0); e <= maxVotes+10; e++ {
		if !b.used(e) {
			t.Fatalf("epoch %d should count as used", e)
		}
	}
	if b.used(maxVotes + 11) {
		t.Fatal("a fresh epoch counts as used")
	}
	if b.LastEpoch() != maxVotes+10 {
		t.Fatalf("LastEpoch %d", b.LastEpoch())
	}
}
