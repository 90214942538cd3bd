// Command compare runs hearsay and Redis 7 side by side on this machine and
// prints the Targets figures of issue 3: redis-benchmark throughput against
// one node, and idle cluster-bus bytes per node per second on 6- and
// 30-node clusters. `make compare` runs it with the defaults; -quick is a
// one-minute version.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/hearsay/hearsay/bench/compare"
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
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: compare [flags]\n\nRuns hearsay and Redis side by side; see bench/compare/doc.go for the method.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "compare: unexpected arguments %q\n", fs.Args())
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
	cfg.Sizes = nil
	for _, s := range strings.Split(*sizes, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "compare: -sizes: %q is not a number\n", s)
			return 2
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	cfg.Heartbeats = nil
	for _, s := range strings.Split(*hbs, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Heartbeats = append(cfg.Heartbeats, s)
		}
	}
	cfg.Progress = os.Stderr

	// SIGINT/SIGTERM cancel the run; Run then stops every child and removes
	// its temporary directory before returning.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
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
	os.Stdout.Write(buf.Bytes())
	if *out != "" {
		if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "compare: -out: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "compare: wrote %s\n", *out)
	}
	return 0
}
