package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hearsay/hearsay/bench/epidemic"
	"github.com/hearsay/hearsay/bench/sim"
)

func init() {
	subcommands["sim"] = subcommand{
		summary: "run a simulation: epidemic (dissemination strategies) or cluster (N real cores)",
		run:     runSim,
	}
}

const simUsage = `usage: hearsay sim <experiment> [flags]

experiments:
  epidemic  Demers et al.'s dissemination strategies in synchronous cycles
  cluster   N real gossip cores on a virtual network (join, fail, config, mix,
            failover, massfail)

Run "hearsay sim <experiment> -h" for its flags.
`

// runSim dispatches `hearsay sim epidemic|cluster`. It prints one key=value
// line (or JSON with --json) and returns 0; 2 for bad usage; 1 when a
// cluster run did not converge or broke an invariant.
func runSim(args []string) int {
	return simMain(args, os.Stdout, os.Stderr)
}

func simMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, simUsage)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, simUsage)
		return 0
	case "epidemic":
		rest, plotFile, err := cutPlotFlag(args[1:])
		if err != nil {
			return flagError(stdout, stderr, "epidemic", err)
		}
		cfg, asJSON, err := epidemic.ParseFlags(rest)
		if err != nil {
			return flagError(stdout, stderr, "epidemic", err)
		}
		if plotFile != "" {
			if err := plotEpidemic(cfg, plotFile, stdout); err != nil {
				fmt.Fprintf(stderr, "hearsay sim epidemic: %v\n", err)
				return 1
			}
			return 0
		}
		res, err := epidemic.Run(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "hearsay sim epidemic: %v\n", err)
			return 2
		}
		if asJSON {
			return printJSON(stdout, stderr, res)
		}
		fmt.Fprintln(stdout, res.String())
		return 0
	case "cluster":
		rest, plotFile, err := cutPlotFlag(args[1:])
		if err != nil {
			return flagError(stdout, stderr, "cluster", err)
		}
		cfg, asJSON, err := sim.ParseFlags(rest)
		if err != nil {
			return flagError(stdout, stderr, "cluster", err)
		}
		if plotFile != "" && cfg.Scenario == sim.ScenarioMix {
			fmt.Fprintln(stderr, "hearsay sim cluster: --plot draws join, fail or config, not mix")
			return 2
		}
		sim.SetMemoryLimit(0.8)
		res, err := sim.Run(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "hearsay sim cluster: %v\n", err)
			return 1
		}
		if asJSON {
			fmt.Fprintln(stdout, res.JSON())
		} else {
			fmt.Fprintln(stdout, res.String())
		}
		if plotFile != "" {
			if err := plotCluster(res, plotFile); err != nil {
				fmt.Fprintf(stderr, "hearsay sim cluster: %v\n", err)
				return 1
			}
			fmt.Fprintf(stderr, "wrote %s\n", plotFile)
		}
		code := 0
		if !res.Converged {
			fmt.Fprintf(stderr, "hearsay sim cluster: did not converge within %v of virtual time; replay: %s\n", cfg.Duration, cfg.Command())
			code = 1
		}
		for _, v := range res.Violations {
			fmt.Fprintf(stderr, "hearsay sim cluster: violation: %s\n", v)
			code = 1
		}
		if len(res.Violations) > 0 {
			fmt.Fprintf(stderr, "hearsay sim cluster: replay: %s\n", cfg.Command())
		}
		return code
	default:
		fmt.Fprintf(stderr, "hearsay sim: unknown experiment %q\n%s", args[0], simUsage)
		return 2
	}
}

func flagError(stdout, stderr io.Writer, name string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		// The error carries the usage text after its first line.
		msg := err.Error()
		if i := len(flag.ErrHelp.Error()); len(msg) > i {
			msg = msg[i+1:]
		}
		fmt.Fprint(stdout, msg)
		return 0
	}
	fmt.Fprintf(stderr, "hearsay sim %s: %v\n", name, err)
	return 2
}

func printJSON(stdout, stderr io.Writer, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(stderr, "hearsay sim: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, string(b))
	return 0
}
