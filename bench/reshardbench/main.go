// Command reshardbench measures slot migration side by side: 1000 slots
// holding 100,000 keys (100 per slot, 100-byte values) move between two
// masters of a 3-master cluster, once on redis-server 7 with `redis-cli
// --cluster reshard`, and on hearsay both with the same redis-cli command
// (the compatible path) and with `hearsay cluster reshard` (the atomic
// path, CLUSTER MIGRATESLOTS). A go-redis ClusterClient writes keys of the
// moving slots throughout and records its slowest write, which is the
// longest write pause a client saw. Rounds alternate the systems; medians
// and ratios are printed.
//
// `make bench-reshard` runs it with the defaults.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/bench/childproc"
	"github.com/hearsay/hearsay/bench/internal/cli"
	"github.com/hearsay/hearsay/bench/internal/testcluster"
	"github.com/hearsay/hearsay/internal/slottag"
	"github.com/hearsay/hearsay/node/admin"
)

type config struct {
	hearsay, server, redisCLI string
	rounds, slots, perSlot    int
	valueSize, pipeline       int
	cliPipeline               int
	nodeTimeout               time.Duration
}

// result is one timed move.
type result struct {
	took     time.Duration
	keys     int
	maxWrite time.Duration // slowest write of the concurrent writer
	writes   int
	errors   int
}

func main() { os.Exit(run()) }

func run() int {
	var c config
	fs := flag.NewFlagSet("reshardbench", flag.ContinueOnError)
	fs.StringVar(&c.hearsay, "hearsay", "bin/hearsay", "hearsay binary")
	fs.StringVar(&c.server, "redis-server", "redis-server", "redis-server binary")
	fs.StringVar(&c.redisCLI, "redis-cli", "redis-cli", "redis-cli binary")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; each moves the slots once per path")
	fs.IntVar(&c.slots, "slots", 1000, "slots moved")
	fs.IntVar(&c.perSlot, "per-slot", 100, "keys per moved slot")
	fs.IntVar(&c.valueSize, "value-size", 100, "bytes per value")
	fs.IntVar(&c.pipeline, "pipeline", 1, "hearsay cluster reshard --pipeline (migrations at once)")
	fs.IntVar(&c.cliPipeline, "cluster-pipeline", 10, "redis-cli --cluster-pipeline (keys per MIGRATE)")
	fs.DurationVar(&c.nodeTimeout, "node-timeout", time.Second, "node timeout of both systems")
	if err := cli.Parse(fs, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Println("usage: reshardbench [flags]")
			fmt.Print(strings.TrimPrefix(err.Error(), flag.ErrHelp.Error()+"\n"))
			return 0
		}
		fmt.Fprintln(os.Stderr, "reshardbench:", err)
		return 2
	}
	if c.slots < 1 || c.slots > 5000 || c.perSlot < 1 || c.rounds < 1 {
		fmt.Fprintln(os.Stderr, "reshardbench: -slots must be 1-5000 (the first master holds 5461), -per-slot 1 or more, -rounds 1 or more")
		return 2
	}
	ctx, stop := cli.Interruptible()
	defer stop()
	dir, err := os.MkdirTemp("", "reshardbench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reshardbench:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	keys := c.slots * c.perSlot
	fmt.Printf("reshardbench: %d slots holding %d keys (%d-byte values) between two of 3 masters, node timeout %v, %d rounds\n",
		c.slots, keys, c.valueSize, c.nodeTimeout, c.rounds)
	paths := []string{"redis: redis-cli reshard", "hearsay: redis-cli reshard", "hearsay: atomic (MIGRATESLOTS)"}
	res := map[string][]result{}
	for round := range c.rounds {
		for _, sys := range []string{"redis", "hearsay"} {
			got, err := runSystem(ctx, c, sys, filepath.Join(dir, fmt.Sprintf("%s-%d", sys, round)))
			for _, path := range paths {
				r, ok := got[path]
				if !ok {
					continue
				}
				res[path] = append(res[path], r)
				fmt.Printf("  round %d  %-32s %8v  %8.0f keys/s  slowest write %v (%d writes, %d errors)\n",
					round+1, path, r.took.Round(time.Millisecond), rate(r), r.maxWrite.Round(time.Millisecond), r.writes, r.errors)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "reshardbench: %s, round %d: %v\n", sys, round+1, err)
				return 1
			}
		}
	}
	fmt.Printf("\n| path | median time | keys/s | slowest write (median) | client errors |\n|---|---|---|---|---|\n")
	med := map[string]result{}
	for _, p := range paths {
		m := medianOf(res[p])
		med[p] = m
		errs := 0
		for _, r := range res[p] {
			errs += r.errors
		}
		fmt.Printf("| %s | %v | %.0f | %v | %d |\n", p, m.took.Round(time.Millisecond), rate(m), m.maxWrite.Round(time.Millisecond), errs)
	}
	ref := rate(med[paths[0]])
	if ref > 0 {
		fmt.Printf("\nkeys/s against redis-cli reshard on Redis 7: hearsay redis-cli reshard %.2f×, hearsay atomic %.2f×\n",
			rate(med[paths[1]])/ref, rate(med[paths[2]])/ref)
	}
	return 0
}

func rate(r result) float64 {
	if r.took <= 0 {
		return 0
	}
	return float64(r.keys) / r.took.Seconds()
}

// medianOf returns the result with the median time, and the median of
// the slowest writes (the two need not come from one round).
func medianOf(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return int(a.took - b.took) })
	m := s[len(s)/2]
	w := make([]time.Duration, len(rs))
	for i, r := range rs {
		w[i] = r.maxWrite
	}
	slices.Sort(w)
	m.maxWrite = w[len(w)/2]
	return m
}

// runSystem starts a 3-master cluster of sys, fills the slots and times
// each path of that system: redis-cli from master 0 to master 1, then (on
// hearsay) the atomic path back from master 1 to master 0.
func runSystem(ctx context.Context, c config, sys, dir string) (map[string]result, error) {
	cl, err := testcluster.Launch(testcluster.Options{
		System: sys, Hearsay: c.hearsay, Server: c.server, CLI: c.redisCLI,
		Dir: dir, NodeTimeout: c.nodeTimeout, Heartbeat: "udp",
	}, 3)
	if err != nil {
		return nil, err
	}
	defer cl.Stop()
	if _, err := cl.Create(ctx, c.redisCLI, 0); err != nil {
		return nil, err
	}
	addrs := make([]string, len(cl.Ports))
	for i, p := range cl.Ports {
		addrs[i] = testcluster.Addr(p)
	}
	if err := testcluster.Until(60*time.Second, func() bool {
		for _, n := range cl.Clients {
			if s, err := n.ClusterInfo(ctx).Result(); err != nil || !strings.Contains(s, "cluster_state:ok") {
				return false
			}
		}
		return true
	}); err != nil {
		return nil, fmt.Errorf("cluster did not become ok: %w", err)
	}
	ids := make([]string, len(cl.Clients))
	for i, n := range cl.Clients {
		if ids[i], err = n.Do(ctx, "CLUSTER", "MYID").Text(); err != nil {
			return nil, err
		}
	}
	keyName := slottag.Keys(c.slots, c.perSlot)
	keys := c.slots * c.perSlot
	if err := fill(ctx, cl.Clients[0], keyName, keys, c.valueSize); err != nil {
		return nil, err
	}
	out := map[string]result{}
	legacy := func() (int, error) {
		_, err := childproc.Run(ctx, 30*time.Minute, c.redisCLI, "--cluster", "reshard", addrs[0],
			"--cluster-from", ids[0], "--cluster-to", ids[1], "--cluster-slots", strconv.Itoa(c.slots),
			"--cluster-pipeline", strconv.Itoa(c.cliPipeline), "--cluster-yes")
		return keys, err
	}
	r, err := timed(ctx, addrs, keyName, keys, legacy)
	if err != nil {
		return nil, fmt.Errorf("redis-cli --cluster reshard: %w", err)
	}
	out[sys+": redis-cli reshard"] = r
	if err := moved(ctx, cl.Clients[1], keys); err != nil {
		return nil, err
	}
	if sys != "hearsay" {
		return out, nil
	}
	tool := &admin.Tool{Wait: 5 * time.Minute}
	atomic := func() (int, error) {
		res, err := tool.Reshard(ctx, addrs[1], ids[1], ids[0], c.slots, c.pipeline)
		if err != nil {
			return 0, err
		}
		return int(res.Keys), nil
	}
	r, err = timed(ctx, addrs, keyName, keys, atomic)
	if err != nil {
		return out, fmt.Errorf("atomic reshard: %w", err)
	}
	out[sys+": atomic (MIGRATESLOTS)"] = r
	if err := moved(ctx, cl.Clients[0], keys); err != nil {
		return out, err
	}
	return out, nil
}

// moved checks that the target now holds at least the moved keys.
func moved(ctx context.Context, target *redis.Client, keys int) error {
	n, err := target.DBSize(ctx).Result()
	if err != nil {
		return err
	}
	if n < int64(keys) {
		return fmt.Errorf("the target holds %d keys after the move, want %d", n, keys)
	}
	return nil
}

// timed runs move while a cluster client overwrites keys of the moving
// slots, and returns how long move took and the writer's slowest write.
func timed(ctx context.Context, addrs []string, keyName func(int) string, keys int, move func() (int, error)) (result, error) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2, MaxRedirects: 16,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	defer cc.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var r result
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			err := cc.Set(ctx, keyName((i*7919)%keys), "w"+strconv.Itoa(i), 0).Err()
			d := time.Since(t0)
			r.writes++
			r.maxWrite = max(r.maxWrite, d)
			if err != nil {
				r.errors++
				time.Sleep(time.Millisecond)
			}
		}
	}()
	// Let the writer's slowest write be about the move, not its start.
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	n, err := move()
	r.took = time.Since(t0)
	r.keys = n
	close(stop)
	wg.Wait()
	return r, err
}

// fill writes keys keys of the moving slots to their first owner.
func fill(ctx context.Context, c *redis.Client, keyName func(int) string, keys, size int) error {
	val := strings.Repeat("x", size)
	for i := 0; i < keys; i += 1000 {
		pipe := c.Pipeline()
		for j := i; j < min(i+1000, keys); j++ {
			pipe.Set(ctx, keyName(j), val, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("filling the slots: %w", err)
		}
	}
	return nil
}
