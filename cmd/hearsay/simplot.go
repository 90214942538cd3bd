package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/hearsay/hearsay/bench/epidemic"
	"github.com/hearsay/hearsay/bench/plots"
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
