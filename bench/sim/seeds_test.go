package sim

import (
	"flag"
	"fmt"
	"strings"
	"testing"
)

var seedsFlag = flag.Int("sim.seeds", 0, "number of seeds TestSimSeeds runs (0: 500, or 50 with -short)")

// TestSimSeeds runs the random fault mix (RunMix) over many seeds: joins,
// crashes and restarts from persisted state, partitions that heal and 0-20%
// loss over 10-20 nodes. On every step: epochs never go backwards, one vote
// per voter and one winner per epoch, and no two masters serving one slot at
// one configEpoch (see servingLog). After healing and settling, all nodes
// must hold one node table and one slot table. A failing seed prints the
// commands that replay it.
func TestSimSeeds(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 50
	}
	if *seedsFlag > 0 {
		n = *seedsFlag
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			cfg := MixConfig(seed)
			res, err := RunMix(cfg)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			if res.Collisions > 0 {
				t.Logf("seed %d: %d same-epoch collisions, the longest between connected masters %.0f ms", seed, res.Collisions, res.CollisionMS)
			}
			if len(res.Violations) > 0 {
				t.Errorf("seed %d (%d nodes, %d masters): %d invariant violations:\n  %s\nreplay:\n  go test ./bench/sim -run 'TestSimSeeds/seed=%d$' -v\n  %s",
					seed, res.Nodes, res.Masters, len(res.Violations), strings.Join(res.Violations, "\n  "), seed, cfg.Command())
			}
		})
	}
}
