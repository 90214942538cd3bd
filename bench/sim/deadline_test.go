package sim

import (
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// Cores ticked only at their own deadlines, with heartbeats from the
// modelled transport, hold every live peer alive: a tick on every
// heartbeat round moves the progress counter often enough, however the
// rounds of peers and the ticks interleave. With no loss and nobody down,
// any PFAIL is a false one.
func TestDeadlineTicksNoFalsePFail(t *testing.T) {
	for _, timeout := range []time.Duration{100 * time.Millisecond, time.Second} {
		var pfails int
		s := New(Options{Seed: 11, DeadlineTicks: true,
			Core: gossip.Config{NodeTimeout: timeout, ExternalHeartbeat: true},
			OnReady: func(i int, r *gossip.Ready) {
				for _, e := range r.Events {
					if e.Kind == gossip.EventNodePFail {
						pfails++
					}
				}
			}})
		s.AddNodes(20)
		if _, err := s.BootCluster(0, 20, 10, wire.NumSlots); err != nil {
			t.Fatal(err)
		}
		s.RunFor(60 * timeout)
		ticks := s.Stats().Ticks
		if pfails != 0 {
			t.Fatalf("node timeout %v: %d false PFAILs in %v", timeout, pfails, 60*timeout)
		}
		// Ticks at the deadlines, not at a fixed rate: about one per
		// heartbeat round (timeout/4) per node, plus the ones Steps ask for.
		perNodePerRound := float64(ticks) / 20 / 240
		if perNodePerRound > 2 {
			t.Fatalf("node timeout %v: %.2f ticks per node per heartbeat round", timeout, perNodePerRound)
		}
		t.Logf("node timeout %v: no PFAIL, %.2f ticks per node per heartbeat round", timeout, perNodePerRound)
	}
}
