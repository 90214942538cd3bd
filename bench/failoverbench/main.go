// Command failoverbench measures failover time side by side: a 6-node
// hearsay cluster against a 6-node redis-server cluster of the same shape
// (3 masters, 3 replicas, created by redis-cli --cluster create), node
// timeout -timeout for both. Each trial kills one master with SIGKILL and
// times how long until every surviving node lists that master's replica
// as a master (and not failed). The systems alternate trial by trial and the
// medians are printed with their ratio.
//
// `make bench-failover` runs it with the defaults.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hearsay/hearsay/bench/internal/testcluster"
)

type config struct {
	hearsay, server, cli string
	trials               int
	timeout              time.Duration
	heartbeat            string
}

func main() {
	var c config
	fs := flag.NewFlagSet("failoverbench", flag.ExitOnError)
	fs.StringVar(&c.hearsay, "hearsay", "bin/hearsay", "hearsay binary")
	fs.StringVar(&c.server, "redis-server", "redis-server", "redis-server binary")
	fs.StringVar(&c.cli, "redis-cli", "redis-cli", "redis-cli binary")
	fs.IntVar(&c.trials, "trials", 5, "trials per system")
	fs.DurationVar(&c.timeout, "timeout", time.Second, "node timeout of both systems")
	fs.StringVar(&c.heartbeat, "heartbeat", "udp", "hearsay --heartbeat mode (off, udp, xdp, auto)")
	_ = fs.Parse(os.Args[1:])
	dir, err := os.MkdirTemp("", "failoverbench-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	fmt.Printf("failoverbench: 3 masters + 3 replicas, node timeout %v, %d trials each, kill -9 of a master until every survivor lists its replica as master\n", c.timeout, c.trials)
	times := map[string][]time.Duration{}
	for trial := range c.trials {
		for i, sys := range []string{"hearsay", "redis"} {
			d, err := runTrial(c, sys, filepath.Join(dir, fmt.Sprintf("%s-%d", sys, trial)), 23000+i*20)
			if err != nil {
				fail(fmt.Errorf("%s trial %d: %w", sys, trial, err))
			}
			fmt.Printf("  trial %d %-7s %v\n", trial+1, sys, d.Round(time.Millisecond))
			times[sys] = append(times[sys], d)
		}
	}
	h, r := median(times["hearsay"]), median(times["redis"])
	fmt.Printf("\n| system | median | trials |\n|---|---|---|\n")
	for _, sys := range []string{"hearsay", "redis"} {
		fmt.Printf("| %s | %v | %v |\n", sys, median(times[sys]).Round(time.Millisecond), roundAll(times[sys]))
	}
	fmt.Printf("\nhearsay / redis: %.2f×\n", h.Seconds()/r.Seconds())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "failoverbench:", err)
	os.Exit(1)
}

func median(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func roundAll(v []time.Duration) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, d := range v {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// runTrial forms a cluster on ports base..base+5, kills a master and
// returns the time until every survivor lists its replica as master.
func runTrial(c config, sys, dir string, base int) (time.Duration, error) {
	cl, err := testcluster.Start(testcluster.Options{System: sys, Hearsay: c.hearsay, Server: c.server, CLI: c.cli,
		Dir: dir, Base: base, NodeTimeout: c.timeout, Heartbeat: c.heartbeat})
	if err != nil {
		return 0, err
	}
	defer cl.Stop()
	ctx := context.Background()
	clients := cl.Clients
	// The replica of the master on base, and its ID.
	var victim = -1
	var replicaID string
	nodes, err := clients[0].ClusterNodes(ctx).Result()
	if err != nil {
		return 0, err
	}
	var masterID string
	for _, l := range strings.Split(nodes, "\n") {
		if f := strings.Fields(l); len(f) > 3 && strings.Contains(f[2], "myself") && strings.Contains(f[2], "master") {
			masterID, victim = f[0], 0
		}
	}
	if victim < 0 {
		// Node 0 is a replica: fail over its master instead.
		for _, l := range strings.Split(nodes, "\n") {
			if f := strings.Fields(l); len(f) > 3 && strings.Contains(f[2], "myself") {
				masterID = f[3]
			}
		}
	}
	for _, l := range strings.Split(nodes, "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[3] == masterID {
			replicaID = f[0]
		}
		if f := strings.Fields(l); len(f) > 1 && f[0] == masterID {
			port, _ := strconv.Atoi(strings.Split(strings.Split(f[1], "@")[0], ":")[1])
			victim = port - base
		}
	}
	if replicaID == "" || victim < 0 {
		return 0, fmt.Errorf("no master with a replica found in:\n%s", nodes)
	}
	if err := cl.WaitSynced(60 * time.Second); err != nil {
		return 0, fmt.Errorf("replicas did not sync: %w", err)
	}
	// A moment for the offsets to reach the bus headers on both systems.
	time.Sleep(time.Second)
	t0 := time.Now()
	_ = syscall.Kill(-cl.Procs[victim].Cmd.Process.Pid, syscall.SIGKILL)
	<-cl.Procs[victim].Done
	err = testcluster.Until(60*time.Second, func() bool {
		for k, c := range clients {
			if k == victim {
				continue
			}
			n, err := c.ClusterNodes(ctx).Result()
			if err != nil || !listsMaster(n, replicaID) {
				return false
			}
		}
		return true
	})
	return time.Since(t0), err
}

// listsMaster reports whether CLUSTER NODES text lists id as a master that
// is not FAIL.
func listsMaster(nodes, id string) bool {
	for _, l := range strings.Split(nodes, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != id {
			continue
		}
		flags := strings.Split(f[2], ",")
		return slices.Contains(flags, "master") && !slices.Contains(flags, "fail")
	}
	return false
}
