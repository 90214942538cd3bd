// Command scale starts N real hearsay nodes and N real redis-server nodes
// on this machine, one system at a time, creates each cluster with the same
// redis-cli command and prints what an idle node of each costs (see
// bench/scale for the method). `make scale` runs it for SCALE_N (default
// 30 100 200). It needs root for the kernel's bus byte counters only.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/hearsay/hearsay/bench/internal/cli"
	"github.com/hearsay/hearsay/bench/scale"
)

func main() { os.Exit(run()) }

func run() int {
	d := scale.Defaults()
	cfg := d
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.StringVar(&cfg.Hearsay, "hearsay", d.Hearsay, "hearsay binary")
	fs.StringVar(&cfg.RedisServer, "redis-server", d.RedisServer, "redis-server binary")
	fs.StringVar(&cfg.RedisCLI, "redis-cli", d.RedisCLI, "redis-cli binary (creates both systems' clusters)")
	fs.StringVar(&cfg.Nft, "nft", d.Nft, "nft binary (the bus byte counters; also looked for in /usr/sbin)")
	sizes := fs.String("n", "30 100 200", "cluster sizes, separated by spaces or commas")
	systems := fs.String("systems", "hearsay,redis", "systems to measure, in this order")
	fs.DurationVar(&cfg.NodeTimeout, "node-timeout", d.NodeTimeout, "both systems' node timeout")
	fs.DurationVar(&cfg.Settle, "settle", d.Settle, "wait after every node knows all N, before the idle window")
	fs.DurationVar(&cfg.Window, "window", d.Window, "idle window measured")
	fs.DurationVar(&cfg.KnownTimeout, "known-timeout", d.KnownTimeout, "longest wait for every node to know all N")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of the markdown table")
	out := fs.String("out", "", "also write the report to this file")
	if err := cli.Parse(fs, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stdout, "usage: scale [flags]\n\nMeasures idle hearsay and Redis clusters of N nodes; see bench/scale/scale.go for the method.")
			fmt.Fprintln(os.Stdout, strings.TrimPrefix(err.Error(), flag.ErrHelp.Error()))
			return 0
		}
		fmt.Fprintln(os.Stderr, "scale:", err)
		return 2
	}
	var err error
	if cfg.Sizes, err = cli.Ints("n", *sizes); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		return 2
	}
	cfg.Systems = cli.List(*systems)
	cfg.Progress = os.Stderr

	// SIGINT/SIGTERM cancel the run; Run then stops every node, deletes its
	// nftables table and removes its directory before returning.
	ctx, stop := cli.Interruptible()
	defer stop()
	rep, err := scale.Run(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "scale: interrupted; every node stopped")
			return 130
		}
		fmt.Fprintf(os.Stderr, "scale: %v\n", err)
		if rep == nil || len(rep.Rows) == 0 {
			return 1
		}
		fmt.Fprintln(os.Stderr, "scale: the report, failed rows included:")
	}
	var b strings.Builder
	if *asJSON {
		_ = rep.WriteJSON(&b)
	} else {
		_ = rep.WriteMarkdown(&b)
	}
	if werr := cli.WriteReport([]byte(b.String()), *out); werr != nil {
		fmt.Fprintln(os.Stderr, "scale:", werr)
		return 1
	}
	if err != nil {
		return 1
	}
	return 0
}
