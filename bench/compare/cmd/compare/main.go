// Command compare runs hearsay and Redis 7 side by side on this machine and
// prints the figures the README's comparison table holds: redis-benchmark throughput against
// one node, and idle cluster-bus bytes per node per second on 6- and
// 30-node clusters. `make compare` runs it with the defaults; -quick is a
// one-minute version.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/hearsay/hearsay/bench/compare"
	"github.com/hearsay/hearsay/bench/internal/cli"
)

func main() { os.Exit(run()) }

func run() int {
	d := compare.Defaults()
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	cfg := d
	fs.StringVar(&cfg.Hearsay, "hearsay", d.Hearsay, "hearsay binary")
	fs.StringVar(&cfg.RedisServer, "redis-server", d.RedisServer, "redis-server binary")
	fs.StringVar(&cfg.RedisCLI, "redis-cli", d.RedisCLI, "redis-cli binary (creates the Redis clusters)")
	fs.StringVar(&cfg.RedisBenchmark, "redis-benchmark", d.RedisBenchmark, "redis-benchmark binary")
	fs.IntVar(&cfg.Requests, "n", d.Requests, "redis-benchmark -n: requests per test")
	fs.IntVar(&cfg.Pipeline, "P", d.Pipeline, "redis-benchmark -P: pipeline depth")
	fs.IntVar(&cfg.Clients, "c", d.Clients, "redis-benchmark -c: connections")
	fs.IntVar(&cfg.Rounds, "rounds", d.Rounds, "benchmark rounds per system, alternating hearsay and redis")
	sizes := fs.String("sizes", "6,30", "cluster sizes for the bus traffic (half masters, half replicas)")
	hbs := fs.String("heartbeats", "off,udp", "hearsay --heartbeat modes to measure (comma-separated; empty: none)")
	fs.DurationVar(&cfg.NodeTimeout, "node-timeout", d.NodeTimeout, "node timeout of both systems' clusters")
	fs.DurationVar(&cfg.Settle, "settle", d.Settle, "wait after the cluster is ok everywhere, before measuring")
	fs.DurationVar(&cfg.Window, "window", d.Window, "bus measurement window")
	fs.BoolVar(&cfg.SkipThroughput, "skip-throughput", false, "skip the redis-benchmark part")
	fs.BoolVar(&cfg.SkipBus, "skip-bus", false, "skip the bus traffic part")
	quick := fs.Bool("quick", false, "a short run: -n 100000 -sizes 6 -settle 2s -window 5s (flags given explicitly win)")
	out := fs.String("out", "", "also write the report to this file")
	if err := cli.Parse(fs, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "usage: compare [flags]\n\nRuns hearsay and Redis side by side; see bench/compare/doc.go for the method.")
			fmt.Fprint(os.Stderr, strings.TrimPrefix(err.Error(), flag.ErrHelp.Error()+"\n"))
			return 0
		}
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 2
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"n": "100000", "sizes": "6", "settle": "2s", "window": "5s"} {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					panic(err)
				}
			}
		}
	}
	var err error
	if cfg.Sizes, err = cli.Ints("sizes", *sizes); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 2
	}
	cfg.Heartbeats = cli.List(*hbs)
	cfg.Progress = os.Stderr

	// SIGINT/SIGTERM cancel the run; Run then stops every child and removes
	// its temporary directory before returning.
	ctx, stop := cli.Interruptible()
	defer stop()
	res, err := compare.Run(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "compare: interrupted; all processes stopped")
			return 130
		}
		fmt.Fprintf(os.Stderr, "compare: %v\n", err)
		return 1
	}
	var buf bytes.Buffer
	_ = res.Write(&buf)
	if err := cli.WriteReport(buf.Bytes(), *out); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 1
	}
	if *out != "" {
		fmt.Fprintf(os.Stderr, "compare: wrote %s\n", *out)
	}
	return 0
}
