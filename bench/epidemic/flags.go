package epidemic

import (
	"errors"
	"flag"
	"fmt"

	"github.com/hearsay/hearsay/bench/internal/cli"
)

// ParseFlags parses the arguments of `hearsay sim epidemic`:
//
//	--nodes N --mode rumor|anti-entropy --direction push|pull|push-pull
//	--loss feedback|blind --stop counter|coin --k K --fanout F
//	--runs R --seed S --json
//
// Defaults: 1000 nodes, rumor, push, feedback, counter, k 2, fanout 1,
// 10 runs, seed 1. It returns the Config, whether --json was given, and an
// error naming the flag and its allowed values for bad input. For -h or
// --help the error wraps flag.ErrHelp and carries the usage text.
func ParseFlags(args []string) (Config, bool, error) {
	cfg := DefaultConfig()
	var asJSON bool
	fs := flag.NewFlagSet("hearsay sim epidemic", flag.ContinueOnError)
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of sites (>= 2)")
	fs.Var(&cfg.Policy.Mode, "mode", "rumor or anti-entropy")
	fs.Var(&cfg.Policy.Direction, "direction", "push, pull or push-pull")
	fs.Var(&cfg.Policy.Loss, "loss", "rumor loss of interest: feedback or blind")
	fs.Var(&cfg.Policy.Stop, "stop", "rumor stop rule: counter or coin")
	fs.IntVar(&cfg.Policy.K, "k", cfg.Policy.K, "rumor counter limit, or 1/k coin (>= 1)")
	fs.IntVar(&cfg.Policy.Fanout, "fanout", cfg.Policy.Fanout, "partners per site per cycle (1..nodes-1)")
	fs.IntVar(&cfg.Runs, "runs", cfg.Runs, "independent runs to average (>= 1)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed; run r uses seed+r")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	if err := cli.Parse(fs, args); err != nil {
		return Config{}, false, err
	}
	if err := checkFlags(cfg); err != nil {
		return Config{}, false, err
	}
	return cfg, asJSON, nil
}

// checkFlags reports out-of-range numbers, naming the flag.
func checkFlags(cfg Config) error {
	var errs []error
	if cfg.Nodes < 2 {
		errs = append(errs, fmt.Errorf("invalid value %d for flag --nodes: must be at least 2", cfg.Nodes))
	}
	if cfg.Policy.K < 1 {
		errs = append(errs, fmt.Errorf("invalid value %d for flag --k: must be at least 1", cfg.Policy.K))
	}
	if cfg.Policy.Fanout < 1 || (cfg.Nodes >= 2 && cfg.Policy.Fanout > cfg.Nodes-1) {
		errs = append(errs, fmt.Errorf("invalid value %d for flag --fanout: must be between 1 and nodes-1 (%d)", cfg.Policy.Fanout, max(cfg.Nodes-1, 1)))
	}
	if cfg.Runs < 1 {
		errs = append(errs, fmt.Errorf("invalid value %d for flag --runs: must be at least 1", cfg.Runs))
	}
	return errors.Join(errs...)
}
