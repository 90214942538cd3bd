package sim

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hearsay/hearsay/gossip/wire"
)

// massfailConfig is the comparison's configuration: n nodes, a quarter of
// them masters with three replicas each, k of the masters crashing at once.
func massfailConfig(n, k int) Config {
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Failing = n, k
	return cfg
}

// checkMassFail asserts what a failover or massfail run must end with: it
// converged without violations, every crashed shard got exactly one new
// master, no slot has two owners with the same configEpoch in any live
// node's table, every slot belongs to a live master, and the winners'
// configEpochs are distinct.
func checkMassFail(t *testing.T, s *Sim, res *Result) {
	t.Helper()
	if !res.Converged || len(res.Violations) > 0 {
		t.Fatalf("%s\nviolations: %q", res, res.Violations)
	}
	for j, p := range res.Promotions {
		if p != 1 {
			t.Errorf("crashed shard %d got %d new masters, want 1", j, p)
		}
	}
	if res.Elections != res.Failing {
		t.Errorf("%d elections won for %d crashed shards", res.Elections, res.Failing)
	}
	var live []int
	epochs := map[uint64]wire.NodeID{}
	for i := range s.Len() {
		if !s.Up(i) {
			continue
		}
		live = append(live, i)
		if !s.isMaster(i) {
			continue
		}
		_, ce := s.Core(i).Epochs()
		if prev, ok := epochs[ce]; ok {
			t.Errorf("masters %s and %s share configEpoch %d", prev, s.ID(i), ce)
		}
		epochs[ce] = s.ID(i)
	}
	if msg := sameEpochOwners(s, live); msg != "" {
		t.Error(msg)
	}
	liveMaster := map[wire.NodeID]bool{}
	for _, i := range live {
		for slot := range uint16(wire.NumSlots) {
			o, _ := s.Core(i).SlotOwner(slot)
			ok, seen := liveMaster[o]
			if !seen {
				k, known := s.Index(o)
				ok = known && s.Up(k) && s.isMaster(k)
				liveMaster[o] = ok
			}
			if !ok {
				t.Fatalf("node %d gives slot %d to %s, which is not a live master", i, slot, o)
			}
		}
	}
}

// runKept runs one failover or massfail experiment and returns the Sim with
// the result, for checks on the final state.
func runKept(t *testing.T, cfg Config) (*Sim, Result) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := New(cfg.options())
	res := Result{Scenario: cfg.Scenario, Nodes: cfg.Nodes, Seed: cfg.Seed, ConvergeMS: -1}
	if err := runFailover(s, &cfg, &res, newMemMeter(1<<62)); err != nil {
		t.Fatal(err)
	}
	res.Violations = s.Violations()
	return s, res
}

// TestMassFail crashes 30 of 75 masters (300 nodes, three replicas each)
// at once, for a few seeds, and checks the outcome against a single
// failover of the same cluster: exactly one new master per shard, no two
// owners of a slot at one configEpoch, every live node converged, and, in
// virtual time (deterministic), every shard re-mastered everywhere within
// twice the single failover's time.
func TestMassFail(t *testing.T) {
	for _, seed := range []uint64{1, 3, 7} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			cfg := massfailConfig(300, 30)
			cfg.Seed = seed
			cfg.Scenario = ScenarioFailover
			s1, single := runKept(t, cfg)
			checkMassFail(t, s1, &single)
			cfg.Scenario = ScenarioMassFail
			s2, mass := runKept(t, cfg)
			checkMassFail(t, s2, &mass)
			t.Logf("single: %s", &single)
			t.Logf("mass:   %s", &mass)
			if mass.ConvergeMS > 2*single.ConvergeMS {
				t.Errorf("30 masters failing at once converged in %.0fms, more than twice a single failover's %.0fms; replay: %s",
					mass.ConvergeMS, single.ConvergeMS, cfg.Command())
			}
		})
	}
}

// TestMassFail1k is the target at full size: 100 of 250 masters of a
// 1000-node cluster crash at once and every shard is re-mastered on every
// live node within twice the single failover's time. About a minute and a
// half, so -short skips it.
func TestMassFail1k(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 nodes with 100 elections at once take over a minute; run without -short")
	}
	cfg := massfailConfig(1000, 100)
	cfg.Scenario = ScenarioFailover
	s1, single := runKept(t, cfg)
	checkMassFail(t, s1, &single)
	cfg.Scenario = ScenarioMassFail
	s2, mass := runKept(t, cfg)
	checkMassFail(t, s2, &mass)
	t.Logf("single: %s\nmass:   %s", &single, &mass)
	if mass.ConvergeMS > 2*single.ConvergeMS {
		t.Errorf("100 masters failing at once converged in %.0fms, more than twice a single failover's %.0fms", mass.ConvergeMS, single.ConvergeMS)
	}
}

// BenchmarkMassFail prints single failover against 100 masters failing at
// once over 1000 nodes (250 masters x 3 replicas), five seeds: the medians
// and their ratio, as README.md records them. Run it with -benchtime 1x
// (make sim-massfail); each iteration is ten runs, several minutes.
func BenchmarkMassFail(b *testing.B) {
	if testing.Short() {
		b.Skip("ten 1000-node runs take minutes; run without -short")
	}
	cfg := massfailConfig(1000, 100)
	var cmp FailoverComparison
	for b.Loop() {
		var err error
		cmp, err = CompareFailover(cfg, []uint64{1, 2, 3, 4, 5}, func(r *Result) {
			b.Logf("%s", r)
			if !r.Converged || len(r.Violations) > 0 {
				b.Errorf("did not converge cleanly: %s %q", r, r.Violations)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	// Printed, not logged: a benchmark's log is cut after ten lines.
	fmt.Printf("%s\n", strings.TrimSpace(cmp.Table()))
	b.ReportMetric(cmp.SingleConvergeMS, "single_ms")
	b.ReportMetric(cmp.MassConvergeMS, "mass_ms")
	b.ReportMetric(cmp.Ratio, "ratio")
	b.ReportMetric(cmp.MassShardsMS, "mass_shards_ms")
	b.ReportMetric(cmp.MassBytes, "mass_bytes/node/s")
}
