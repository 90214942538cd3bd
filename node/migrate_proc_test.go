package node_test

import (
	"context"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/slottag"
	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/ring"
)

// TestRedisCliReshard moves 1000 slots holding 100,000 keys between hearsay
// masters with redis-cli's own reshard, then rebalances (SETSLOT
// IMPORTING/MIGRATING, GETKEYSINSLOT, MIGRATE, SETSLOT NODE), while clients
// write and read, and checks that no key is lost.
func TestRedisCliReshard(t *testing.T) {
	cli := testenv.RequireBinary(t, "redis-cli")
	testenv.SkipShort(t, "starts 3 node processes")
	rc := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
	// 100,000 keys, 100 in each of the source's 1000 lowest slots (the
	// ones reshard moves), a quarter with a TTL.
	const n, moved = 100000, 1000
	keyName := slottag.Keys(moved, n/moved)
	for i := 0; i < n; i += 1000 {
		pipe := cc.Pipeline()
		for j := i; j < i+1000; j++ {
			ttl := time.Duration(0)
			if j%4 == 0 {
				ttl = time.Hour
			}
			pipe.Set(ctx, keyName(j), "v"+strconv.Itoa(j), ttl)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Writers run through the reshard and record what was acknowledged.
	acked := newAckedWrites()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var loadErrs sync.Map
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				k := keyName((seq*7919 + w*31) % n)
				v := "w" + strconv.Itoa(w) + "-" + strconv.Itoa(seq)
				if err := cc.Set(ctx, k, v, 0).Err(); err != nil {
					acked.attempt(k, v)
					loadErrs.Store(err.Error(), true)
					continue
				}
				acked.record(k, v)
				if _, err := cc.Get(ctx, k).Result(); err != nil {
					loadErrs.Store("GET: "+err.Error(), true)
				}
			}
		}()
	}
	from, to := myID(t, ps[0]), myID(t, ps[1])
	start := time.Now()
	out := rc("--cluster", "reshard", ps[0].addr(), "--cluster-from", from, "--cluster-to", to,
		"--cluster-slots", strconv.Itoa(moved), "--cluster-yes")
	close(stop)
	wg.Wait()
	if !strings.Contains(out, "Moving slot") {
		t.Fatalf("reshard moved nothing:\n%s", out)
	}
	loadErrs.Range(func(k, _ any) bool { t.Errorf("client error during the reshard: %v", k); return true })
	t.Logf("redis-cli --cluster reshard of %d slots (%d keys) under load: %v, %d keys written during it",
		moved, n, time.Since(start).Round(time.Millisecond), acked.count())
	if got := do(t, ps[1], "DBSIZE").(int64); got < n {
		t.Fatalf("the target holds %d keys after the reshard, want the %d of the moved slots", got, n)
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
	acked.verify(t, fresh)
	for i := 0; i < n; i += 97 {
		k := keyName(i)
		v, err := fresh.Get(ctx, k).Result()
		if err != nil || v == "" {
			t.Fatalf("%s after reshard and rebalance: %q %v", k, v, err)
		}
		if !written(acked, k) && v != "v"+strconv.Itoa(i) {
			t.Fatalf("%s = %q, never overwritten", k, v)
		}
		if i%4 == 0 {
			if ttl, _ := fresh.PTTL(ctx, k).Result(); ttl <= 0 && !written(acked, k) {
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
	// redis-cli --cluster fix closes the slot left open.
	cli := testenv.RequireBinary(t, "redis-cli")
	if out, err := exec.Command(cli, "--cluster", "fix", a.addr(), "--cluster-yes").CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster fix: %v\n%s", err, out)
	}
	out, err := exec.Command(cli, "--cluster", "check", a.addr()).CombinedOutput()
	if err != nil || strings.Contains(string(out), "[WARNING]") || !strings.Contains(string(out), "[OK] All 16384 slots covered.") {
		t.Fatalf("check after fix: %v\n%s", err, out)
	}
	for _, p := range []*proc{a, b} {
		if nodes, _ := client(t, p).ClusterNodes(ctx).Result(); strings.Contains(nodes, "[100-") {
			t.Fatalf("slot 100 still open on %d after fix:\n%s", p.port, nodes)
		}
	}
	// A standalone redis-server MIGRATEs keys into the hearsay node that
	// owns their slot (an import path from Redis).
	raddr := testenv.StartRedis(t, "")
	rc := redis.NewClient(&redis.Options{Addr: raddr, Protocol: 2})
	defer rc.Close()
	slot := ring.KeySlot([]byte("import:0"))
	target := a
	if slot >= 8192 || slot == 100 { // b's half, and slot 100 that fix moved to b
		target = b
	}
	var keys []any
	for i := 0; len(keys) < 50; i++ {
		if k := "import:" + strconv.Itoa(i); ring.KeySlot([]byte(k)) == slot {
			keys = append(keys, k)
			rc.Set(ctx, k, "from-redis-"+strconv.Itoa(i), time.Hour)
		}
	}
	args := append([]any{"MIGRATE", "127.0.0.1", strconv.Itoa(target.port), "", 0, 5000, "KEYS"}, keys...)
	if err := rc.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("MIGRATE from redis-server into hearsay: %v", err)
	}
	for _, k := range keys {
		if v, err := client(t, target).Get(ctx, k.(string)).Result(); err != nil || !strings.HasPrefix(v, "from-redis-") {
			t.Fatalf("imported %s = %q %v", k, v, err)
		}
	}
	if n, _ := rc.DBSize(ctx).Result(); n != 0 {
		t.Fatalf("redis-server kept %d keys after MIGRATE", n)
	}
}

// ackedWrites records the last acknowledged value of every key a test
// wrote, and the values written after it whose acknowledgement never came
// (a WAIT that timed out, a connection cut after the SET left): such a
// write may or may not have taken effect, so the key may hold one of those
// instead, but nothing older.
type ackedWrites struct {
	mu    sync.Mutex
	last  map[string]string
	later map[string][]string
}

func newAckedWrites() *ackedWrites {
	return &ackedWrites{last: map[string]string{}, later: map[string][]string{}}
}

// record notes an acknowledged write.
func (a *ackedWrites) record(k, v string) {
	a.mu.Lock()
	a.last[k] = v
	delete(a.later, k)
	a.mu.Unlock()
}

// attempt notes a write sent but not acknowledged.
func (a *ackedWrites) attempt(k, v string) {
	a.mu.Lock()
	a.later[k] = append(a.later[k], v)
	a.mu.Unlock()
}

func (a *ackedWrites) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.last)
}

func (a *ackedWrites) lastValue(k string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.last[k]
	return v, ok
}

// verify reads every recorded key through c and fails on any that holds
// neither its last acknowledged value nor one written after it.
func (a *ackedWrites) verify(t *testing.T, c *redis.ClusterClient) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	bad := 0
	for k, want := range a.last {
		got, err := c.Get(context.Background(), k).Result()
		if err != nil || got != want && !slices.Contains(a.later[k], got) {
			if bad++; bad <= 5 {
				t.Errorf("acknowledged write lost: %s = %q (%v), want %q", k, got, err, want)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", bad, len(a.last))
	}
}

func written(a *ackedWrites, k string) bool {
	_, ok := a.lastValue(k)
	return ok
}
