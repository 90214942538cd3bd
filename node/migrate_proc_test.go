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
	"github.com/hearsay/hearsay/ring"
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

// TestSlotMarksSurviveRestart: IMPORTING and MIGRATING marks are in the
// node config file, so a restarted node still shows [slot->-id] and
// [slot-<-id] in CLUSTER NODES and still redirects with ASK.
func TestSlotMarksSurviveRestart(t *testing.T) {
	testenv.SkipShort(t, "starts 2 node processes")
	ctx := context.Background()
	a := startNode(t, freePort(t), t.TempDir())
	b := startNode(t, freePort(t), t.TempDir())
	do(t, a, "CLUSTER", "ADDSLOTSRANGE", "0", "8191")
	do(t, b, "CLUSTER", "ADDSLOTSRANGE", "8192", "16383")
	do(t, a, "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(b.port))
	waitAgree(t, []*proc{a, b}, 20*time.Second)
	ida, idb := myID(t, a), myID(t, b)
	do(t, a, "CLUSTER", "SETSLOT", "100", "MIGRATING", idb)
	do(t, b, "CLUSTER", "SETSLOT", "100", "IMPORTING", ida)
	for _, p := range []*proc{a, b} {
		p.stop(t)
	}
	a = startNode(t, a.port, a.dir)
	b = startNode(t, b.port, b.dir)
	for _, c := range []struct {
		p    *proc
		want string
	}{{a, "[100->-" + idb + "]"}, {b, "[100-<-" + ida + "]"}} {
		nodes, err := client(t, c.p).ClusterNodes(ctx).Result()
		if err != nil || !strings.Contains(nodes, c.want) {
			t.Fatalf("after a restart, node %d lacks %s: %v\n%s", c.p.port, c.want, err, nodes)
		}
	}
	waitFor(t, 20*time.Second, "cluster ok after the restart", func() (bool, string) {
		s, _ := client(t, a).ClusterInfo(ctx).Result()
		return strings.Contains(s, "cluster_state:ok"), s
	})
	// A key of slot 100 that is not on the source is asked for on the target.
	key := ""
	for i := 0; key == ""; i++ {
		if k := "k" + strconv.Itoa(i); ring.KeySlot([]byte(k)) == 100 {
			key = k
		}
	}
	_, err := client(t, a).Get(ctx, key).Result()
	if err == nil || !strings.HasPrefix(err.Error(), "ASK 100 ") {
		t.Fatalf("GET of a missing key in a migrating slot after a restart: %v", err)
	}
}
