package sim

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/hearsay/hearsay/bench/internal/cli"
)

// lossFlag parses a loss probability as a fraction (0.05) or a percentage
// (5%).
type lossFlag struct{ p *float64 }

func (f lossFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*f.p, 'g', -1, 64)
}

func (f lossFlag) Set(s string) error {
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return fmt.Errorf("not a number or a percentage")
	}
	if pct {
		v /= 100
	}
	if !(v >= 0 && v < 1) {
		return fmt.Errorf("must be in [0,1) or [0%%,100%%)")
	}
	*f.p = v
	return nil
}

// ParseFlags parses the arguments of `hearsay sim cluster`:
//
//	--nodes N [--masters M] --scenario join|fail|config|mix|failover|massfail
//	[--failing K] --loss P
//	--latency D [--jitter D] --seed S [--period D] [--timeout D]
//	[--warmup D] [--steady D] [--duration D] [--sample D]
//	[--external-heartbeat] [--deadline-ticks] [--json]
//
// Durations take Go syntax (1ms, 5s). Loss is a fraction or a percentage.
// It returns the Config, whether --json was given, and an error naming the
// flag for bad input. For -h or --help the error wraps flag.ErrHelp and
// carries the usage text.
func ParseFlags(args []string) (Config, bool, error) {
	cfg := DefaultConfig()
	var asJSON bool
	fs := flag.NewFlagSet("hearsay sim cluster", flag.ContinueOnError)
	fs.StringVar(&cfg.Scenario, "scenario", cfg.Scenario, "join, fail, config, mix, failover or massfail")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of nodes (mix: 0 draws 10-20 from the seed)")
	fs.IntVar(&cfg.Masters, "masters", cfg.Masters, "masters of the formed cluster (0: nodes/2, at most 500; failover and massfail: nodes/4)")
	fs.Var(lossFlag{&cfg.Loss}, "loss", "message loss probability: 0.05 or 5% (mix: the maximum drawn)")
	fs.DurationVar(&cfg.Latency, "latency", cfg.Latency, "mean one-way link latency")
	fs.DurationVar(&cfg.Jitter, "jitter", cfg.Jitter, "latency spread ± (0: latency/4, negative: none)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed; a seed replays exactly")
	fs.DurationVar(&cfg.Period, "period", cfg.Period, "gossip period (the core's GossipInterval)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "node timeout (the core's NodeTimeout)")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "virtual time a formed cluster runs before the steady window")
	fs.DurationVar(&cfg.Steady, "steady", cfg.Steady, "steady-state traffic window")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "virtual time allowed for convergence after the event")
	fs.DurationVar(&cfg.Sample, "sample", cfg.Sample, "how often convergence is checked (virtual time)")
	fs.BoolVar(&cfg.ExternalHeartbeat, "external-heartbeat", cfg.ExternalHeartbeat, "liveness from modelled XDP heartbeats (PINGs answered by each host's kernel, progress counters) instead of bus pings")
	fs.BoolVar(&cfg.DeadlineTicks, "deadline-ticks", cfg.DeadlineTicks, "tick each core when its next deadline says, as a node does, instead of every period/2")
	fs.IntVar(&cfg.Failing, "failing", cfg.Failing, "massfail: masters that crash at once (0: 100)")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	if err := cli.Parse(fs, args); err != nil {
		return Config{}, false, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, false, err
	}
	return cfg, asJSON, nil
}
