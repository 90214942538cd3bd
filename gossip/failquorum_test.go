package gossip

import (
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// TestFailWithHalfTheObserversDown: at scale a node that crashes together
// with half of its observers (a rack) is still marked FAIL once those
// observers are FAIL themselves: the quorum counts the observers still
// standing.
func TestFailWithHalfTheObserversDown(t *testing.T) {
	tn := formed(t, 40, func(c *Config) { c.SmallCluster = 8 })
	if tn.cores[0].smallCluster() {
		t.Fatal("expected observer mode")
	}
	index := map[wire.NodeID]int{}
	for i, c := range tn.cores {
		index[c.ID()] = i
	}
	victim := 17
	vid := tn.cores[victim].ID()
	obs, need := tn.cores[0].voters(vid)
	if len(obs) != 8 || need != 5 {
		t.Fatalf("victim has %d observers, quorum %d; want 8 and 5", len(obs), need)
	}
	tn.down[victim] = true
	for _, id := range obs[:4] {
		tn.down[index[id]] = true
	}
	tn.run(6 * time.Second)
	for _, i := range tn.live() {
		for _, id := range append([]wire.NodeID{vid}, obs[:4]...) {
			if !hasFlag(tn.cores[i], id, wire.FlagFail) {
				t.Fatalf("node %d does not see node %d FAIL", i, index[id])
			}
		}
	}
}
