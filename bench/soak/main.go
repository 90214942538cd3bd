// Command soak runs a hearsay cluster with a short node timeout while a CPU
// hog keeps every core busy, and counts false failovers: a 6-node cluster
// (3 masters, 3 replicas, created by redis-cli --cluster create) with no
// node ever stopped, a client writing at a steady rate, and busy-looping
// threads at the nodes' own priority, one per core. Nothing fails, so every
// FAIL mark, election or promotion is a false one; PFAIL marks (a node's
// own suspicion, which needs no agreement) are reported too.
//
// `make soak` runs it with the defaults: node timeout 100 ms, UDP
// heartbeats, 10 minutes. It exits 1 if any failover happened.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/bench/childproc"
	"github.com/hearsay/hearsay/bench/internal/testcluster"
)

func main() {
	var (
		o        testcluster.Options
		duration time.Duration
		hogs     int
		rate     int
		every    time.Duration
	)
	fs := flag.NewFlagSet("soak", flag.ExitOnError)
	fs.StringVar(&o.Hearsay, "hearsay", "bin/hearsay", "hearsay binary")
	fs.StringVar(&o.CLI, "redis-cli", "redis-cli", "redis-cli binary")
	fs.DurationVar(&o.NodeTimeout, "timeout", 100*time.Millisecond, "node timeout")
	fs.StringVar(&o.Heartbeat, "heartbeat", "udp", "hearsay --heartbeat mode (off, udp, xdp, auto)")
	fs.DurationVar(&duration, "duration", 10*time.Minute, "how long to soak")
	fs.IntVar(&hogs, "hogs", runtime.NumCPU(), "busy-looping processes (0 for none)")
	fs.IntVar(&rate, "rate", 1000, "most client writes per second (one writer, so fewer when replies are slow)")
	fs.DurationVar(&every, "report", 30*time.Second, "progress line period")
	keep := fs.Bool("keep", false, "keep the nodes' directories and logs (info level) and print where")
	_ = fs.Parse(os.Args[1:])
	o.System, o.Base = "hearsay", 24000
	dir, err := os.MkdirTemp("", "soak-")
	if err != nil {
		fail(err)
	}
	if *keep {
		o.LogLevel = "info"
		fmt.Println("soak: nodes' logs in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	o.Dir = dir
	httpPorts := make([]int, testcluster.Size)
	// Each node serves /metrics, where its counters are read.
	for k := range httpPorts {
		httpPorts[k] = o.Base + 100 + k
	}
	o.PerNode = func(k int) []string { return []string{"--http", testcluster.Addr(httpPorts[k])} }
	cl, err := testcluster.Start(o)
	if err != nil {
		fail(err)
	}
	defer cl.Stop()
	if err := cl.WaitSynced(60 * time.Second); err != nil {
		fail(fmt.Errorf("replicas did not sync: %w", err))
	}
	ctx := context.Background()
	before, err := mastersEverywhere(ctx, cl)
	if err != nil {
		fail(err)
	}
	base := scrapeAll(httpPorts)
	fmt.Printf("soak: 3 masters + 3 replicas, node timeout %v, heartbeat %s, %d CPU hog process(es) on %d cores, up to %d writes/s, %v\n",
		o.NodeTimeout, o.Heartbeat, hogs, runtime.NumCPU(), rate, duration)

	// The hogs are separate processes: busy threads inside this one
	// would be the same scheduler's, and a locked thread that exits takes
	// the children it forked with it (their parent-death signal).
	var hogProcs []*childproc.Proc
	for k := range hogs {
		h, err := childproc.Start(fmt.Sprintf("hog-%d", k), os.DevNull, "sh", "-c", "while :; do :; done")
		if err != nil {
			fail(err)
		}
		hogProcs = append(hogProcs, h)
	}
	var stop atomic.Bool
	var writes, writeErrs atomic.Int64
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{testcluster.Addr(o.Base)}, Protocol: 2, MaxRedirects: 8})
	defer cc.Close()
	go func() {
		tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
		defer tick.Stop()
		for i := 0; !stop.Load(); i++ {
			<-tick.C
			if err := cc.Set(ctx, "soak:"+strconv.Itoa(i%10000), i, 0).Err(); err != nil {
				writeErrs.Add(1)
			} else {
				writes.Add(1)
			}
		}
	}()
	start := time.Now()
	var last counters
	for time.Since(start) < duration {
		time.Sleep(min(every, duration-time.Since(start)))
		last = scrapeAll(httpPorts).minus(base)
		fmt.Printf("  %6s  pfail %d  fail %d  elections %d  promotions %d  writes %d (errors %d)\n",
			time.Since(start).Round(time.Second), last.pfail, last.fail, last.elections, last.promotions, writes.Load(), writeErrs.Load())
	}
	stop.Store(true)
	childproc.StopAll(time.Second, hogProcs...)
	after, err := mastersEverywhere(ctx, cl)
	if err != nil {
		fail(err)
	}
	falseFailovers := last.fail + last.promotions
	if after != before {
		falseFailovers++
		fmt.Printf("the masters changed: before %s, after %s\n", before, after)
	}
	fmt.Printf("\n| node timeout | heartbeat | CPU hogs | duration | PFAIL marks | FAIL marks | elections | promotions | writes (errors) |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %v | %s | %d | %v | %d | %d | %d | %d | %d (%d) |\n", o.NodeTimeout, o.Heartbeat, hogs, duration,
		last.pfail, last.fail, last.elections, last.promotions, writes.Load(), writeErrs.Load())
	fmt.Printf("\nfalse failovers: %d\n", falseFailovers)
	if falseFailovers > 0 {
		os.Exit(1)
	}
}

// mastersEverywhere returns the master set, which every node must agree on,
// with no node flagged fail.
func mastersEverywhere(ctx context.Context, cl *testcluster.Cluster) (string, error) {
	var first string
	for k, c := range cl.Clients {
		n, err := c.ClusterNodes(ctx).Result()
		if err != nil {
			return "", err
		}
		ids, anyFail := testcluster.Masters(n)
		set := strings.Join(ids, ",")
		if anyFail {
			return "", fmt.Errorf("node %d lists a failed node:\n%s", k, n)
		}
		if k == 0 {
			first = set
		} else if set != first {
			return "", fmt.Errorf("nodes disagree on the masters: %s against %s", set, first)
		}
	}
	return first, nil
}

type counters struct{ pfail, fail, elections, promotions int64 }

func (a counters) minus(b counters) counters {
	return counters{a.pfail - b.pfail, a.fail - b.fail, a.elections - b.elections, a.promotions - b.promotions}
}

// scrapeAll sums the counters of every node's /metrics.
func scrapeAll(ports []int) counters {
	var c counters
	for _, p := range ports {
		resp, err := http.Get("http://" + testcluster.Addr(p) + "/metrics")
		if err != nil {
			fail(err)
		}
		sc := bufio.NewScanner(resp.Body)
		seen := 0
		for sc.Scan() {
			name, val, ok := strings.Cut(sc.Text(), " ")
			if !ok {
				continue
			}
			v, _ := strconv.ParseFloat(val, 64)
			switch {
			case name == `hearsay_cluster_events_total{kind="node-pfail"}`:
				c.pfail += int64(v)
				seen |= 1
			case name == `hearsay_cluster_events_total{kind="node-fail"}`:
				c.fail += int64(v)
				seen |= 2
			case name == `hearsay_failover_promotions_total`:
				c.promotions += int64(v)
			case strings.HasPrefix(name, `hearsay_failover_steps_total{step="election_started"`):
				c.elections += int64(v)
			}
		}
		resp.Body.Close()
		// The event counters exist from the start; the failover ones
		// appear with their first event, so their absence means zero.
		if seen != 3 {
			fail(fmt.Errorf("node on %d: /metrics lacks the PFAIL and FAIL event counters", p))
		}
	}
	return c
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "soak:", err)
	os.Exit(1)
}
