// Command replbench measures replication side by side: hearsay→hearsay
// against redis-server→redis-server on this machine, in one run.
//
// For each system it starts a master and a replica, fills the master with
// -keys keys of -value bytes, attaches the replica and measures:
//
//   - full sync: from the attach command to master_link_status:up with
//     every key on the replica;
//   - the worst GET latency a client saw on the master during the sync
//     (the longest the master stalled);
//   - redis-benchmark -t set -P 16 -c 50 against the master with the
//     replica attached, -rounds rounds alternating the systems.
//
// `make bench-repl` runs it with the defaults.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/bench/childproc"
)

type config struct {
	hearsay, server, bench string
	keys, value, rounds    int
	requests               int
}

type result struct {
	system   string
	sync     time.Duration
	stall    time.Duration
	setRates []float64
}

func main() {
	var c config
	fs := flag.NewFlagSet("replbench", flag.ExitOnError)
	fs.StringVar(&c.hearsay, "hearsay", "bin/hearsay", "hearsay binary")
	fs.StringVar(&c.server, "redis-server", "redis-server", "redis-server binary")
	fs.StringVar(&c.bench, "redis-benchmark", "redis-benchmark", "redis-benchmark binary")
	fs.IntVar(&c.keys, "keys", 1000000, "keys on the master before the replica attaches")
	fs.IntVar(&c.value, "value", 100, "value size in bytes")
	fs.IntVar(&c.rounds, "rounds", 3, "redis-benchmark rounds per system, alternating")
	fs.IntVar(&c.requests, "n", 1000000, "redis-benchmark -n")
	_ = fs.Parse(os.Args[1:])
	dir, err := os.MkdirTemp("", "replbench-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	fmt.Printf("replbench: %d keys of %d bytes, redis-benchmark -t set -P 16 -c 50 -n %d, %d rounds\n", c.keys, c.value, c.requests, c.rounds)
	var res []*result
	var procs []*childproc.Proc
	defer func() { childproc.StopAll(5*time.Second, procs...) }()
	for i, sys := range []string{"hearsay", "redis", "redis-nodelay"} {
		r, ps, err := runSync(c, sys, filepath.Join(dir, sys), 21000+i*10)
		procs = append(procs, ps...)
		if err != nil {
			fail(fmt.Errorf("%s: %w", sys, err))
		}
		res = append(res, r)
	}
	for round := range c.rounds {
		for i, r := range res[:2] {
			rate, err := setRate(c, 21000+i*10)
			if err != nil {
				fail(fmt.Errorf("%s round %d: %w", r.system, round, err))
			}
			r.setRates = append(r.setRates, rate)
		}
	}
	h, rd, nd := res[0], res[1], res[2]
	fmt.Printf("\n| measure | hearsay | redis-server 7 | hearsay / redis |\n|---|---|---|---|\n")
	fmt.Printf("| full sync, %d keys (Redis defaults: 5 s diskless delay) | %v | %v | %.2f× |\n", c.keys, h.sync.Round(time.Millisecond), rd.sync.Round(time.Millisecond), h.sync.Seconds()/rd.sync.Seconds())
	fmt.Printf("| full sync, %d keys (Redis with repl-diskless-sync-delay 0) | %v | %v | %.2f× |\n", c.keys, h.sync.Round(time.Millisecond), nd.sync.Round(time.Millisecond), h.sync.Seconds()/nd.sync.Seconds())
	fmt.Printf("| worst GET latency during the sync | %v | %v (delay 0: %v) | |\n", h.stall.Round(10*time.Microsecond), rd.stall.Round(10*time.Microsecond), nd.stall.Round(10*time.Microsecond))
	hm, rm := median(h.setRates), median(rd.setRates)
	fmt.Printf("| SET rps with a replica (median of %d) | %.0f | %.0f | %.2f× |\n", c.rounds, hm, rm, hm/rm)
	fmt.Printf("\nrounds: hearsay %v, redis %v\n", h.setRates, rd.setRates)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "replbench:", err)
	os.Exit(1)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// runSync starts a master (port) and a replica (port+1), fills the master
// and times the replica's full sync.
func runSync(c config, sys, dir string, port int) (*result, []*childproc.Proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	var ps []*childproc.Proc
	start := func(name string, p int) error {
		var argv []string
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if sys == "hearsay" {
			argv = []string{c.hearsay, "node", "--port", strconv.Itoa(p), "--dir", d, "--heartbeat", "off", "--log-level", "warn"}
		} else {
			argv = []string{c.server, "--port", strconv.Itoa(p), "--bind", "127.0.0.1", "--dir", d, "--save", "", "--appendonly", "no"}
			if sys == "redis-nodelay" {
				argv = append(argv, "--repl-diskless-sync-delay", "0")
			}
		}
		proc, err := childproc.Start(sys+"-"+name, filepath.Join(dir, name+".log"), argv...)
		if err != nil {
			return err
		}
		ps = append(ps, proc)
		return waitPing(p)
	}
	if err := start("master", port); err != nil {
		return nil, ps, err
	}
	if err := start("replica", port+1); err != nil {
		return nil, ps, err
	}
	ctx := context.Background()
	m := redis.NewClient(&redis.Options{Addr: addr(port), Protocol: 2})
	rc := redis.NewClient(&redis.Options{Addr: addr(port + 1), Protocol: 2})
	defer m.Close()
	defer rc.Close()
	var attach func() error
	if sys == "hearsay" {
		if err := m.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
			return nil, ps, err
		}
		if err := rc.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(port)).Err(); err != nil {
			return nil, ps, err
		}
		id, err := m.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return nil, ps, err
		}
		if err := until(30*time.Second, func() bool {
			s, _ := rc.ClusterNodes(ctx).Result()
			info, _ := m.ClusterInfo(ctx).Result()
			return strings.Contains(s, id) && !strings.Contains(s, "handshake") && strings.Contains(info, "cluster_state:ok")
		}); err != nil {
			return nil, ps, fmt.Errorf("cluster did not form: %w", err)
		}
		attach = func() error { return rc.Do(ctx, "CLUSTER", "REPLICATE", id).Err() }
	} else {
		attach = func() error { return rc.Do(ctx, "REPLICAOF", "127.0.0.1", strconv.Itoa(port)).Err() }
	}
	if err := fill(ctx, addr(port), c.keys, c.value); err != nil {
		return nil, ps, err
	}
	// Probe the master with GETs while the sync runs.
	stop := make(chan struct{})
	var worst time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pc := redis.NewClient(&redis.Options{Addr: addr(port), Protocol: 2, PoolSize: 1})
		defer pc.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			_ = pc.Get(ctx, "key:1").Err()
			worst = max(worst, time.Since(t0))
			time.Sleep(time.Millisecond)
		}
	}()
	t0 := time.Now()
	if err := attach(); err != nil {
		return nil, ps, err
	}
	err := until(5*time.Minute, func() bool {
		info, _ := rc.Info(ctx, "replication").Result()
		if !strings.Contains(info, "master_link_status:up") {
			return false
		}
		n, _ := rc.DBSize(ctx).Result()
		return n >= int64(c.keys)
	})
	took := time.Since(t0)
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, ps, fmt.Errorf("replica did not sync: %w", err)
	}
	fmt.Printf("%s: full sync of %d keys in %v, worst GET during it %v\n", sys, c.keys, took.Round(time.Millisecond), worst)
	return &result{system: sys, sync: took, stall: worst}, ps, nil
}

func addr(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }

func waitPing(p int) error {
	c := redis.NewClient(&redis.Options{Addr: addr(p), Protocol: 2})
	defer c.Close()
	return until(10*time.Second, func() bool { return c.Ping(context.Background()).Err() == nil })
}

func until(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// fill writes n keys "key:<i>" with size-byte values over 4 pipelined
// connections.
func fill(ctx context.Context, a string, n, size int) error {
	val := strings.Repeat("v", size)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: a, Protocol: 2, PoolSize: 1})
			defer c.Close()
			for i := w * 1000; i < n; i += 4000 {
				pipe := c.Pipeline()
				for j := i; j < min(i+1000, n); j++ {
					pipe.Set(ctx, "key:"+strconv.Itoa(j), val, 0)
				}
				if _, err := pipe.Exec(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

var rpsRE = regexp.MustCompile(`SET: ([0-9.]+) requests per second`)

// setRate runs redis-benchmark's SET test against the master on port.
func setRate(c config, port int) (float64, error) {
	out, err := exec.Command(c.bench, "-p", strconv.Itoa(port), "-t", "set", "-P", "16", "-c", "50",
		"-n", strconv.Itoa(c.requests), "-r", "1000000", "-q").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark: %v\n%s", err, out)
	}
	m := rpsRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("redis-benchmark printed no rate:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
