package sim

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestQueueOrder(t *testing.T) {
	var q queue
	rng := rand.New(rand.NewPCG(1, 2))
	var want []time.Duration
	for range 1000 {
		at := time.Duration(rng.IntN(100))
		want = append(want, at)
		q.push(event{at: at, kind: evTick})
	}
	slices.Sort(want)
	var lastSeq uint64
	for k, w := range want {
		e := q.pop()
		if e.at != w {
			t.Fatalf("pop %d: at %v, want %v", k, e.at, w)
		}
		if k > 0 && e.at == want[k-1] && e.seq < lastSeq {
			t.Fatalf("pop %d: equal times out of insertion order", k)
		}
		lastSeq = e.seq
	}
	if q.len() != 0 {
		t.Fatalf("queue not empty")
	}
}

// A seed must replay bit for bit: same traffic, same convergence.
func TestDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes = 40
	cfg.Loss = 0.05
	cfg.Seed = 7
	a, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Stats != b.Stats || a.ConvergeMS != b.ConvergeMS {
		t.Fatalf("two runs of seed 7 differ:\n%+v\n%+v", a.Stats, b.Stats)
	}
	if !a.Converged {
		t.Fatalf("40 nodes did not join: %s", a.String())
	}
}

func TestScenarios(t *testing.T) {
	for _, sc := range []string{ScenarioJoin, ScenarioFail, ScenarioConfig} {
		t.Run(sc, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Scenario = sc
			cfg.Nodes = 30
			cfg.Timeout = time.Second
			cfg.Duration = 30 * time.Second
			res, err := Run(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Converged || len(res.Violations) > 0 {
				t.Fatalf("%s\nviolations: %q\nreplay: %s", res.String(), res.Violations, cfg.Command())
			}
			if res.Stats.Sent == 0 || res.SteadyBytesPerNodePerS <= 0 {
				t.Fatalf("no traffic measured: %+v", res)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	cfg, asJSON, err := ParseFlags([]string{"--nodes", "10", "--scenario", "fail", "--loss", "5%", "--latency", "2ms", "--seed", "9", "--json"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Nodes != 10 || cfg.Scenario != ScenarioFail || cfg.Loss != 0.05 || cfg.Latency != 2*time.Millisecond || cfg.Seed != 9 || !asJSON {
		t.Fatalf("parsed %+v json=%v", cfg, asJSON)
	}
	for _, bad := range [][]string{
		{"--scenario", "boom"},
		{"--nodes", "1"},
		{"--loss", "1.5"},
		{"--loss", "x"},
		{"--latency", "0s"},
		{"--scenario", "config", "--masters", "1"},
		{"--scenario", "fail", "--nodes", "4"},
		{"--scenario", "fail", "--nodes", "10", "--masters", "2"},
		{"extra"},
	} {
		if _, _, err := ParseFlags(bad); err == nil {
			t.Errorf("ParseFlags(%q) accepted bad input", bad)
		}
	}
}

// The replay command a failing seed prints must parse back to the very
// configuration the test ran.
func TestCommandReplays(t *testing.T) {
	for _, cfg := range []Config{MixConfig(123), MixConfig(124), DefaultConfig()} {
		args := strings.Fields(cfg.Command())
		if len(args) < 3 || args[0] != "hearsay" || args[1] != "sim" || args[2] != "cluster" {
			t.Fatalf("command %q", cfg.Command())
		}
		got, _, err := ParseFlags(args[3:])
		if err != nil {
			t.Fatalf("%q: %v", cfg.Command(), err)
		}
		if got != cfg {
			t.Fatalf("%q parses to\n%+v, want\n%+v", cfg.Command(), got, cfg)
		}
	}
}

// Violations the simulator watches for are reported, not swallowed: a core
// booted from a state whose epochs are below what the node reported before
// is an epoch going backwards.
func TestEpochRegressionIsCaught(t *testing.T) {
	s := New(Options{Seed: 1, KeepState: true})
	s.AddNodes(3)
	if _, err := s.BootCluster(0, 3, 3, 16384); err != nil {
		t.Fatal(err)
	}
	s.RunFor(time.Second)
	st := s.Core(2).State()
	st.CurrentEpoch, st.ConfigEpoch = 0, 0
	s.Crash(2)
	s.nodes[2].saved = st // as if the disk lost the epochs
	if err := s.Restart(2); err != nil {
		t.Fatal(err)
	}
	if len(s.Violations()) == 0 {
		t.Fatal("restart with lower epochs went unnoticed")
	}
}
