package node_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/testenv"
)

// TestRedisCliReshard moves slots between hearsay masters with redis-cli's
// own reshard and rebalance (SETSLOT IMPORTING/MIGRATING, GETKEYSINSLOT,
// MIGRATE, SETSLOT NODE) and checks that no key is lost.
func TestRedisCliReshard(t *testing.T) {
	cli := testenv.RequireBinary(t, "redis-cli")
	testenv.SkipShort(t, "starts 3 node processes")
	rc := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ps := make([]*proc, 3)
	args := []string{"--cluster", "create"}
	addrs := make([]string, len(ps))
	for i := range ps {
		ps[i] = startNode(t, freePort(t), t.TempDir())
		args = append(args, ps[i].addr())
		addrs[i] = ps[i].addr()
	}
	rc(append(args, "--cluster-yes")...)
	waitAgree(t, ps, 20*time.Second)
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2})
	defer cc.Close()
	const n = 3000
	for i := range n {
		ttl := time.Duration(0)
		if i%4 == 0 {
			ttl = time.Hour
		}
		if err := cc.Set(ctx, "key:"+strconv.Itoa(i), "v"+strconv.Itoa(i), ttl).Err(); err != nil {
			t.Fatal(err)
		}
	}
	from, to := myID(t, ps[0]), myID(t, ps[1])
	out := rc("--cluster", "reshard", ps[0].addr(), "--cluster-from", from, "--cluster-to", to,
		"--cluster-slots", "1000", "--cluster-yes")
	if !strings.Contains(out, "Moving slot") {
		t.Fatalf("reshard moved nothing:\n%s", out)
	}
	if out := rc("--cluster", "check", ps[0].addr()); !strings.Contains(out, "[OK] All 16384 slots covered.") || strings.Contains(out, "[WARNING]") {
		t.Fatalf("check after reshard:\n%s", out)
	}
	waitAgree(t, ps, 20*time.Second)
	out = rc("--cluster", "rebalance", ps[0].addr(), "--cluster-threshold", "1")
	if !strings.Contains(out, "Moving") {
		t.Fatalf("rebalance moved nothing:\n%s", out)
	}
	waitAgree(t, ps, 20*time.Second)
	fresh := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2})
	defer fresh.Close()
	for i := range n {
		k := "key:" + strconv.Itoa(i)
		v, err := fresh.Get(ctx, k).Result()
		if err != nil || v != "v"+strconv.Itoa(i) {
			t.Fatalf("%s after reshard and rebalance: %q %v", k, v, err)
		}
		if i%4 == 0 {
			if ttl, _ := fresh.PTTL(ctx, k).Result(); ttl <= 0 {
				t.Fatalf("%s lost its TTL: %v", k, ttl)
			}
		}
	}
	total := int64(0)
	for _, p := range ps {
		total += do(t, p, "DBSIZE").(int64)
	}
	if total != n {
		t.Fatalf("%d keys in the cluster, want %d", total, n)
	}
}
