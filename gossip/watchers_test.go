package gossip

import (
	"testing"

	"github.com/hearsay/hearsay/gossip/wire"
)

// Heartbeats are only answered between peers that know each other, so
// whoever monitors a node must be among that node's Watchers.
func TestWatchersMirrorMonitored(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		small int
	}{{"small", 6, 0}, {"scale", 40, 8}} {
		t.Run(tc.name, func(t *testing.T) {
			tn := formed(t, tc.n, func(c *Config) {
				if tc.small > 0 {
					c.SmallCluster = tc.small
				}
			})
			watchers := map[wire.NodeID]map[wire.NodeID]bool{}
			for _, c := range tn.cores {
				set := map[wire.NodeID]bool{}
				for _, p := range c.Watchers(nil) {
					if set[p.ID] {
						t.Fatalf("node %v lists watcher %v twice", c.ID(), p.ID)
					}
					set[p.ID] = true
				}
				if tc.small == 0 && len(set) != tc.n-1 {
					t.Fatalf("small cluster: node %v has %d watchers, want %d", c.ID(), len(set), tc.n-1)
				}
				if tc.small > 0 && len(set) > 8+2 {
					t.Fatalf("at scale node %v has %d watchers, want about K=8", c.ID(), len(set))
				}
				watchers[c.ID()] = set
			}
			asym := 0
			for _, c := range tn.cores {
				for _, p := range c.Monitored(nil) {
					if !watchers[p.ID][c.ID()] {
						t.Fatalf("node %v monitors %v but is not among its watchers", c.ID(), p.ID)
					}
					if !watchersOf(tn, c.ID())[p.ID] {
						asym++ // p does not monitor c back
					}
				}
			}
			if tc.small > 0 && asym == 0 {
				t.Fatal("at scale monitoring should be asymmetric; the test proves nothing")
			}
		})
	}
}

func watchersOf(tn *testNet, id wire.NodeID) map[wire.NodeID]bool {
	set := map[wire.NodeID]bool{}
	for _, c := range tn.cores {
		for _, p := range c.Monitored(nil) {
			if p.ID == id {
				set[c.ID()] = true
			}
		}
	}
	return set
}
