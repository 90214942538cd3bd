package node_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/slotclient"
	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/ring"
)

// Process tests of atomic slot migration (CLUSTER MIGRATESLOTS).

// slotMigrations returns p's GETSLOTMIGRATIONS rows as maps.
func slotMigrations(t *testing.T, p *proc) []map[string]any {
	t.Helper()
	v, err := client(t, p).Do(context.Background(), "CLUSTER", "GETSLOTMIGRATIONS").Result()
	if err != nil {
		t.Fatalf("GETSLOTMIGRATIONS on %d: %v", p.port, err)
	}
	var out []map[string]any
	for _, row := range v.([]any) {
		m := map[string]any{}
		switch r := row.(type) {
		case []any:
			for i := 0; i+1 < len(r); i += 2 {
				m[fmt.Sprint(r[i])] = r[i+1]
			}
		case map[any]any:
			for k, v := range r {
				m[fmt.Sprint(k)] = v
			}
		}
		out = append(out, m)
	}
	return out
}

// waitMigration waits until every row of p's GETSLOTMIGRATIONS is in a
// final state and returns the rows.
func waitMigration(t *testing.T, p *proc, timeout time.Duration) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rows := slotMigrations(t, p)
		done := len(rows) > 0
		for _, r := range rows {
			switch r["state"] {
			case "success", "failed", "cancelled":
			default:
				done = false
			}
		}
		if done {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("migrations on %d did not finish within %v: %v", p.port, timeout, rows)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// movedCounter counts the MOVED replies a cluster client's node clients
// saw, per worker and slot: two workers that both had a write in flight
// to a slot as it moved each get one, which is the most a client should
// see per slot.
type movedCounter struct {
	mu    sync.Mutex
	slots map[[2]int]int // [worker, slot]
	other sync.Map       // other errors seen by node clients
}

type workerKey struct{}

func (m *movedCounter) hook() redis.Hook { return movedHook{m} }

type movedHook struct{ m *movedCounter }

func (h movedHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h movedHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		w, _ := ctx.Value(workerKey{}).(int)
		h.m.note(w, err)
		return err
	}
}

func (h movedHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		w, _ := ctx.Value(workerKey{}).(int)
		for _, c := range cmds {
			h.m.note(w, c.Err())
		}
		return err
	}
}

func (m *movedCounter) note(worker int, err error) {
	if err == nil || err == redis.Nil {
		return
	}
	s := err.Error()
	if strings.HasPrefix(s, "MOVED ") {
		f := strings.Fields(s)
		slot, _ := strconv.Atoi(f[1])
		m.mu.Lock()
		m.slots[[2]int{worker, slot}]++
		m.mu.Unlock()
		return
	}
	m.other.Store(s, true)
}

// keyNames returns inSlots key names whose slots are in [0, hi] and
// others elsewhere, interleaved.
func keyNames(inSlots, others, hi int) []string { return keyNamesIn(inSlots, others, 0, hi) }

// keyNamesIn is keyNames for the slots [lo, hi].
func keyNamesIn(inSlots, others, lo, hi int) []string {
	var in, out []string
	for i := 0; len(in) < inSlots || len(out) < others; i++ {
		k := "key:" + strconv.Itoa(i)
		if s := int(ring.KeySlot([]byte(k))); s >= lo && s <= hi {
			if len(in) < inSlots {
				in = append(in, k)
			}
		} else if len(out) < others {
			out = append(out, k)
		}
	}
	names := make([]string, 0, len(in)+len(out))
	for i := 0; i < len(in) || i < len(out); i++ {
		if i < len(in) {
			names = append(names, in[i])
		}
		if i < len(out) {
			names = append(names, out[i])
		}
	}
	return names
}

// atomicCluster creates masters with redis-cli and loads the keys, a
// quarter of them with a TTL, each holding "v" and its index.
func atomicCluster(t *testing.T, masters int, keys []string, extra ...string) ([]*proc, string) {
	return atomicClusterSized(t, masters, keys, 0, extra...)
}

// atomicClusterSized is atomicCluster with values padded to size bytes.
func atomicClusterSized(t *testing.T, masters int, keys []string, size int, extra ...string) ([]*proc, string) {
	t.Helper()
	cli := testenv.RequireBinary(t, "redis-cli")
	redis.SetLogger(quietRedis{})
	ps := make([]*proc, masters)
	args := []string{"--cluster", "create"}
	for i := range ps {
		ps[i] = startNode(t, freePort(t), t.TempDir(), extra...)
		args = append(args, ps[i].addr())
	}
	if out, err := exec.Command(cli, append(args, "--cluster-yes")...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitAgree(t, ps, 20*time.Second)
	loadKeys(t, ps, keys, size)
	return ps, cli
}

// loadKeys sets keys[j] to "v<j>", padded with '.' to size bytes.
func loadKeys(t *testing.T, ps []*proc, keys []string, size int) {
	t.Helper()
	cc := clusterClient(ps)
	defer cc.Close()
	ctx := context.Background()
	for i := 0; i < len(keys); i += 1000 {
		pipe := cc.Pipeline()
		for j := i; j < min(len(keys), i+1000); j++ {
			ttl := time.Duration(0)
			if j%4 == 0 {
				ttl = time.Hour
			}
			v := "v" + strconv.Itoa(j)
			if len(v) < size {
				v += strings.Repeat(".", size-len(v))
			}
			pipe.Set(ctx, keys[j], v, ttl)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// keysInSlots counts the key names whose slot is in [lo, hi].
func keysInSlots(keys []string, lo, hi int) int {
	c := 0
	for _, k := range keys {
		if s := int(ring.KeySlot([]byte(k))); s >= lo && s <= hi {
			c++
		}
	}
	return c
}

// mixedLoad reads and writes the loaded keys through a cluster client
// until stopped, recording acknowledged writes, every error the client
// returned, and the longest a write took.
type mixedLoad struct {
	acked   *ackedWrites
	errs    sync.Map
	writes  atomic.Int64
	longest atomic.Int64 // ns
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startMixed(cc *redis.ClusterClient, workers int, keys []string) *mixedLoad {
	l := &mixedLoad{acked: newAckedWrites(), stop: make(chan struct{})}
	for w := range workers {
		l.wg.Add(1)
		ctx := context.WithValue(context.Background(), workerKey{}, w)
		go func() {
			defer l.wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-l.stop:
					return
				default:
				}
				k := keys[(seq*7919+w*31)%len(keys)]
				v := "w" + strconv.Itoa(w) + "-" + strconv.Itoa(seq)
				t0 := time.Now()
				err := cc.Set(ctx, k, v, 0).Err()
				if d := int64(time.Since(t0)); d > l.longest.Load() {
					l.longest.Store(d)
				}
				if err != nil {
					l.acked.attempt(k, v)
					l.errs.Store("SET: "+err.Error(), true)
					continue
				}
				l.acked.record(k, v)
				l.writes.Add(1)
				if got, err := cc.Get(ctx, k).Result(); err != nil {
					l.errs.Store("GET: "+err.Error(), true)
				} else if got != v {
					l.errs.Store("GET after SET returned "+got+", want "+v, true)
				}
			}
		}()
	}
	return l
}

func (l *mixedLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

func (l *mixedLoad) errors() []string {
	var out []string
	l.errs.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	return out
}

// runMapWorkers runs workers slotclient workers, each writing keys of its
// own across all slots, until stop closes. A worker sees a second MOVED
// for a slot only if the cluster sent it back and forth, which an atomic
// migration must never do.
func runMapWorkers(t *testing.T, p *proc, workers int, acked *ackedWrites, stop chan struct{}) (wait func() []*slotclient.Client) {
	ws := make([]*slotclient.Client, workers)
	var wg sync.WaitGroup
	for i := range ws {
		w, err := slotclient.New(context.Background(), p.addr())
		if err != nil {
			t.Fatal(err)
		}
		ws[i] = w
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx := context.Background()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				k := "mw:" + strconv.Itoa(i) + ":" + strconv.Itoa(seq%5000)
				v := "m" + strconv.Itoa(i) + "-" + strconv.Itoa(seq)
				if ws[i].Do(ctx, k, "SET", k, v) == nil {
					acked.record(k, v)
				} else {
					acked.attempt(k, v)
				}
			}
		}(i)
	}
	return func() []*slotclient.Client {
		wg.Wait()
		for _, w := range ws {
			w.Close()
		}
		return ws
	}
}

func countingClient(ps []*proc, mc *movedCounter) *redis.ClusterClient {
	cc := clusterClient(ps)
	cc.OnNewNode(func(rc *redis.Client) { rc.AddHook(mc.hook()) })
	return cc
}

func clusterCheck(t *testing.T, cli string, p *proc) {
	t.Helper()
	out, _ := exec.Command(cli, "--cluster", "check", p.addr()).CombinedOutput()
	if !strings.Contains(string(out), "[OK] All 16384 slots covered.") || strings.Contains(string(out), "[WARNING]") ||
		strings.Contains(string(out), "[ERR]") {
		t.Fatalf("redis-cli --cluster check:\n%s", out)
	}
}

// TestAtomicMigrateSlotsUnderLoad moves 1000 slots holding 100,000 keys
// with CLUSTER MIGRATESLOTS while a cluster client reads and writes them
// and others: every acknowledged write must read back, the client must
// see no error, and a client that follows MOVED at most one per slot.
func TestAtomicMigrateSlotsUnderLoad(t *testing.T) {
	testenv.SkipShort(t, "starts 3 node processes and loads 120,000 keys")
	keys := keyNames(100000, 20000, 999)
	ps, cli := atomicCluster(t, 3, keys)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range ps {
				t.Logf("%d:\n%s", p.port, migrateLines(t, p))
			}
		}
	})
	from, to := myID(t, ps[0]), myID(t, ps[1])
	mc := &movedCounter{slots: map[[2]int]int{}}
	cc := countingClient(ps, mc)
	defer cc.Close()
	load := startMixed(cc, 3, keys)
	stopMap := make(chan struct{})
	waitMap := runMapWorkers(t, ps[2], 2, load.acked, stopMap)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if r := do(t, ps[0], "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", "999", "NODE", to); r != "OK" {
		t.Fatalf("MIGRATESLOTS: %v", r)
	}
	rows := waitMigration(t, ps[0], 2*time.Minute)
	took := time.Since(start)
	time.Sleep(300 * time.Millisecond) // the client keeps going on the new owner
	load.finish()
	close(stopMap)
	mapMoved := 0
	for i, w := range waitMap() {
		for _, e := range w.Errors() {
			t.Errorf("map worker %d: %s", i, e)
		}
		for s, c := range w.Moved() {
			mapMoved += c
			if s > 999 || c > 1 {
				t.Errorf("map worker %d saw %d MOVED for slot %d", i, c, s)
			}
		}
	}
	if len(rows) != 1 || rows[0]["state"] != "success" || rows[0]["operation"] != "EXPORT" ||
		rows[0]["slot_ranges"] != "0-999" || rows[0]["source_node"] != from || rows[0]["target_node"] != to {
		t.Fatalf("source's GETSLOTMIGRATIONS: %v", rows)
	}
	trows := waitMigration(t, ps[1], 30*time.Second)
	if len(trows) != 1 || trows[0]["state"] != "success" || trows[0]["operation"] != "IMPORT" {
		t.Fatalf("target's GETSLOTMIGRATIONS: %v", trows)
	}
	moved := keysInSlots(keys, 0, 999)
	t.Logf("MIGRATESLOTS of 1000 slots (%d keys) under load: %v (%.0f keys/s), %d writes acknowledged meanwhile, longest write %v",
		moved, took.Round(time.Millisecond), float64(moved)/took.Seconds(), load.writes.Load(),
		time.Duration(load.longest.Load()).Round(time.Millisecond))
	for _, e := range load.errors() {
		t.Errorf("client error during the migration: %s", e)
	}
	mc.other.Range(func(k, _ any) bool { t.Errorf("node client saw %v", k); return true })
	mc.mu.Lock()
	// go-redis reloads its slot map in the background after a MOVED, so
	// a command right behind the redirected one may be redirected too;
	// the map workers above hold the exact bound.
	cmoved := 0
	for ws, c := range mc.slots {
		cmoved += c
		if ws[1] > 999 {
			t.Errorf("MOVED for slot %d, which did not move (%d times)", ws[1], c)
		}
	}
	t.Logf("writes to the slots paused for %v on the source (log)", slotPause(t, ps[0]))
	t.Logf("MOVED seen: %d by the map workers (at most one per slot each), %d by go-redis's node clients", mapMoved, cmoved)
	mc.mu.Unlock()
	waitAgree(t, ps, 20*time.Second)
	for s := 0; s < 1000; s += 111 {
		if n := do(t, ps[0], "CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(s)).(int64); n != 0 {
			t.Errorf("the source still holds %d keys of slot %d", n, s)
		}
	}
	fresh := clusterClient(ps)
	defer fresh.Close()
	load.acked.verify(t, fresh)
	ctx := context.Background()
	for i := 0; i < len(keys); i += 7 {
		k := keys[i]
		if _, ok := load.acked.lastValue(k); ok {
			continue
		}
		if v, err := fresh.Get(ctx, k).Result(); err != nil || v != "v"+strconv.Itoa(i) {
			t.Fatalf("%s after the migration: %q %v", k, v, err)
		}
		if i%4 == 0 {
			if ttl := fresh.TTL(ctx, k).Val(); ttl <= 0 {
				t.Fatalf("%s lost its TTL: %v", k, ttl)
			}
		}
	}
	clusterCheck(t, cli, ps[0])
}

// slotPause returns how long p's log says writes to migrating slots were
// paused: from its first "writes paused" line to the next "writes
// resumed" line.
func slotPause(t *testing.T, p *proc) time.Duration {
	t.Helper()
	var from time.Time
	for _, l := range strings.Split(logOf(t, p), "\n") {
		at := func() time.Time {
			f := strings.Fields(l)
			if len(f) == 0 || !strings.HasPrefix(f[0], "time=") {
				return time.Time{}
			}
			ts, _ := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
			return ts
		}
		switch {
		case strings.Contains(l, "migrate: writes paused") && from.IsZero():
			from = at()
		case strings.Contains(l, "migrate: writes resumed") && !from.IsZero():
			return at().Sub(from)
		}
	}
	return -1
}
