package node_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/testenv"
)

// TestAtomicVsReshardFigures measures, in one run and on one machine, the
// same move three ways: 1000 slots holding 100,000 keys (100-byte values)
// from one of three masters to another, under a client that writes and
// reads those keys, with CLUSTER MIGRATESLOTS on hearsay, with redis-cli
// --cluster reshard on hearsay, and with redis-cli --cluster reshard on a
// Redis 7 cluster. It logs keys/s and the longest write a client saw, and
// asserts only that each move completed and lost nothing. Set
// HEARSAY_MIGRATE_FIGURES=1 to run it: it takes minutes.
func TestAtomicVsReshardFigures(t *testing.T) {
	if os.Getenv("HEARSAY_MIGRATE_FIGURES") == "" {
		t.Skip("set HEARSAY_MIGRATE_FIGURES=1 to measure")
	}
	cli := testenv.RequireBinary(t, "redis-cli")
	testenv.RequireBinary(t, "redis-server")
	keys := keyNames(100000, 0, 999)
	type result struct {
		name    string
		took    time.Duration
		longest time.Duration
		writes  int64
	}
	var results []result
	measure := func(name string, addrs []string, move func()) {
		t.Helper()
		ps := make([]*proc, len(addrs))
		for i, a := range addrs {
			port, _ := strconv.Atoi(strings.TrimPrefix(a, "127.0.0.1:"))
			ps[i] = &proc{port: port}
		}
		cc := clusterClient(ps)
		defer cc.Close()
		load := startMixed(cc, 2, keys)
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		move()
		took := time.Since(start)
		time.Sleep(500 * time.Millisecond)
		load.finish()
		for _, e := range load.errors() {
			t.Logf("%s: client error: %s", name, e)
		}
		fresh := clusterClient(ps)
		defer fresh.Close()
		load.acked.verify(t, fresh)
		results = append(results, result{name, took, time.Duration(load.longest.Load()), load.writes.Load()})
	}
	rc := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	addrsOf := func(ps []*proc) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.addr())
		}
		return out
	}

	// hearsay, atomic.
	ps, _ := atomicClusterSized(t, 3, keys, 100)
	atomicPs := append([]*proc(nil), ps...)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range atomicPs {
				t.Logf("%d:\n%s", p.port, migrateLines(t, p))
			}
		}
	})
	to := myID(t, ps[1])
	measure("hearsay CLUSTER MIGRATESLOTS", addrsOf(ps), func() {
		do(t, ps[0], "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", "999", "NODE", to)
		if rows := waitMigration(t, ps[0], 10*time.Minute); rows[0]["state"] != "success" {
			t.Fatalf("migration: %v", rows)
		}
	})
	t.Logf("MIGRATESLOTS paused writes to the slots for %v (source's log)", slotPause(t, ps[0]))
	for _, p := range ps {
		p.kill()
	}

	// hearsay, redis-cli reshard.
	ps, _ = atomicClusterSized(t, 3, keys, 100)
	from, to := myID(t, ps[0]), myID(t, ps[1])
	measure("hearsay redis-cli --cluster reshard", addrsOf(ps), func() {
		rc("--cluster", "reshard", ps[0].addr(), "--cluster-from", from, "--cluster-to", to,
			"--cluster-slots", "1000", "--cluster-yes")
	})
	if n := do(t, ps[0], "CLUSTER", "COUNTKEYSINSLOT", "500").(int64); n != 0 {
		t.Fatalf("reshard left %d keys in slot 500 on the source", n)
	}
	for _, p := range ps {
		p.kill()
	}

	// Redis 7, redis-cli reshard.
	var raddrs []string
	for range 3 {
		raddrs = append(raddrs, testenv.StartRedis(t, t.TempDir(), "--cluster-enabled", "yes", "--cluster-node-timeout", "1000"))
	}
	rc(append(append([]string{"--cluster", "create"}, raddrs...), "--cluster-yes")...)
	var rps []*proc
	for _, a := range raddrs {
		port, _ := strconv.Atoi(strings.TrimPrefix(a, "127.0.0.1:"))
		rps = append(rps, &proc{port: port})
	}
	waitRedisOK(t, raddrs)
	loadKeys(t, rps, keys, 100)
	rid := func(a string) string {
		c := redis.NewClient(&redis.Options{Addr: a, Protocol: 2})
		defer c.Close()
		id, err := c.Do(context.Background(), "CLUSTER", "MYID").Text()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	measure("Redis 7 redis-cli --cluster reshard", raddrs, func() {
		rc("--cluster", "reshard", raddrs[0], "--cluster-from", rid(raddrs[0]), "--cluster-to", rid(raddrs[1]),
			"--cluster-slots", "1000", "--cluster-yes")
	})
	for _, r := range results {
		t.Logf("%-38s %8v  %8.0f keys/s  longest write %v  (%d writes acknowledged in the measured window)",
			r.name, r.took.Round(time.Millisecond), float64(len(keys))/r.took.Seconds(),
			r.longest.Round(time.Millisecond), r.writes)
	}
}

// waitRedisOK waits until every redis-server reports cluster_state:ok.
func waitRedisOK(t *testing.T, addrs []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a, Protocol: 2})
		for {
			info, _ := c.ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: cluster not ok:\n%s", a, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
		c.Close()
	}
}
