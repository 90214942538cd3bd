package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/hearsay/hearsay/bench/epidemic"
	"github.com/hearsay/hearsay/bench/plots"
	"github.com/hearsay/hearsay/bench/sim"
)

// cutPlotFlag removes --plot FILE (or --plot=FILE, one or two dashes) from
// args and returns the file, "" when absent.
func cutPlotFlag(args []string) ([]string, string, error) {
	var rest []string
	file := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "plot" {
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, "", fmt.Errorf("flag needs an argument: --plot FILE.svg|FILE.png")
			}
			i++
			val = args[i]
		}
		file = val
	}
	return rest, file, nil
}

// epidemicStrategies are the lines of `hearsay sim epidemic --plot`: the
// three anti-entropy directions and the three rumor-mongering ones.
var epidemicStrategies = []struct{ mode, direction string }{
	{"anti-entropy", "push"}, {"anti-entropy", "pull"}, {"anti-entropy", "push-pull"},
	{"rumor", "push"}, {"rumor", "pull"}, {"rumor", "push-pull"},
}

// plotEpidemic runs every strategy with cfg's sites, runs, seed and rumor
// rules, prints each result line, and draws the fraction of sites reached
// per cycle into file.
func plotEpidemic(cfg epidemic.Config, file string, stdout io.Writer) error {
	chart := plots.Chart{
		Title:  fmt.Sprintf("One update among %d sites (mean of %d runs, seed %d)", cfg.Nodes, cfg.Runs, cfg.Seed),
		XLabel: "cycle", YLabel: "fraction of sites reached",
	}
	for _, s := range epidemicStrategies {
		c := cfg
		if err := c.Policy.Mode.Set(s.mode); err != nil {
			return err
		}
		if err := c.Policy.Direction.Set(s.direction); err != nil {
			return err
		}
		curve, err := epidemic.Curve(c)
		if err != nil {
			return err
		}
		res, err := epidemic.Run(c)
		if err != nil {
			return err
		}
		name := s.mode + " " + s.direction
		if s.mode == "rumor" {
			name += fmt.Sprintf(" (%s, %s k=%d)", c.Policy.Loss, c.Policy.Stop, c.Policy.K)
		}
		fmt.Fprintf(stdout, "%s: %s\n", name, res)
		ser := plots.Series{Name: name}
		for i, y := range curve {
			ser.X = append(ser.X, float64(i))
			ser.Y = append(ser.Y, y)
		}
		chart.Series = append(chart.Series, ser)
	}
	if err := plots.Save(chart, file); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", file)
	return nil
}

// clusterWhat says what "knowing the change" means per scenario.
var clusterWhat = map[string]string{
	"join":   "nodes that list all others",
	"fail":   "live nodes that hold the crashed master FAIL",
	"config": "nodes that give the slot to its new owner",
}

// plotCluster draws a cluster run's convergence: above, the nodes that know
// the change over virtual time; below, bus bytes per node per second.
func plotCluster(res sim.Result, file string) error {
	if len(res.Timeline) == 0 {
		return fmt.Errorf("the run recorded no timeline to plot")
	}
	know := plots.Series{Name: clusterWhat[res.Scenario]}
	bytes := plots.Series{Name: "bus bytes per node per second"}
	for _, p := range res.Timeline {
		know.X = append(know.X, p.MS)
		know.Y = append(know.Y, float64(p.Knowing))
		bytes.X = append(bytes.X, p.MS)
		bytes.Y = append(bytes.Y, p.BytesPerNodePerS)
	}
	title := fmt.Sprintf("%s, %d nodes, seed %d: converged in %.0f ms", res.Scenario, res.Nodes, res.Seed, res.ConvergeMS)
	return plots.SaveStack([]plots.Chart{
		{Title: title, XLabel: "virtual ms after the event", YLabel: "nodes that know the change", Series: []plots.Series{know}},
		{XLabel: "virtual ms after the event", YLabel: "bytes per node per second", Series: []plots.Series{bytes}},
	}, file)
}
