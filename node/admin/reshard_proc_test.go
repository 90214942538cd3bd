package admin

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/slotclient"
	"github.com/hearsay/hearsay/internal/slottag"
	"github.com/hearsay/hearsay/ring"
)

// ackingWriter writes through a slotclient.Client, which counts the
// redirects, and remembers the last acknowledged value of every key.
type ackingWriter struct {
	*slotclient.Client
	mu    sync.Mutex
	acked map[string]string
}

func (w *ackingWriter) ack(val string, keys ...string) {
	w.mu.Lock()
	for _, k := range keys {
		w.acked[k] = val
	}
	w.mu.Unlock()
}

// set writes key=val.
func (w *ackingWriter) set(ctx context.Context, key, val string) {
	if w.Do(ctx, key, "SET", key, val) == nil {
		w.ack(val, key)
	}
}

// mset writes two keys of one slot in one command, and reads them back
// with MGET, as multi-key clients do while their slot moves.
func (w *ackingWriter) mset(ctx context.Context, k1, k2, val string) {
	if w.Do(ctx, k1, "MSET", k1, val, k2, val) == nil {
		w.ack(val, k1, k2)
		_ = w.Do(ctx, k1, "MGET", k1, k2)
	}
}

// TestHearsayReshardAtomic moves 1000 slots holding 100,000 keys with
// Tool.Reshard (hearsay cluster reshard: CLUSTER MIGRATESLOTS) while a
// client writes keys of those slots, one in ten with MSET of two keys of a
// slot followed by MGET: it sees no error, no ASK or TRYAGAIN, at most one
// MOVED per slot, and every acknowledged write holds.
func TestHearsayReshardAtomic(t *testing.T) {
	be := hearsayBackend(t)
	if testing.Short() {
		t.Skip("process test; skipped with -short")
	}
	addrs := startNodes(t, be, 3)
	ctx := context.Background()
	tool := Tool{Wait: 2 * time.Minute, Progress: func(s string) { t.Log(s) }}
	plan, err := tool.Create(ctx, addrs, 0)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	src, dst := plan.Masters[0].Addr, plan.Masters[1].Addr
	if err := tool.poll(ctx, "cluster_state:ok", func() error {
		for _, a := range addrs {
			c, err := tool.dial(ctx, a)
			if err != nil {
				return err
			}
			info, err := c.clusterInfo(ctx)
			c.close()
			if err != nil || info["cluster_state"] != "ok" {
				return fmt.Errorf("%s: %v %v", a, err, info["cluster_state"])
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const slots, per = 1000, 100
	key := slottag.Keys(slots, per)
	sc := redis.NewClient(&redis.Options{Addr: src, Protocol: 2})
	defer sc.Close()
	for i := 0; i < slots*per; i += 1000 {
		pipe := sc.Pipeline()
		for j := i; j < i+1000; j++ {
			pipe.Set(ctx, key(j), "v"+strconv.Itoa(j), 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sc2, err := slotclient.New(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer sc2.Close()
	w := &ackingWriter{Client: sc2, acked: map[string]string{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (i*7919 + g*104729) % (slots * per)
				v := "w" + strconv.Itoa(g) + "-" + strconv.Itoa(i)
				if i%10 == 0 {
					// The other key of the pair is in the same slot.
					w.mset(ctx, key(k), key(k-k%per+(k+1)%per), v)
				} else {
					w.set(ctx, key(k), v)
				}
			}
		}()
	}
	var moves []MoveProgress
	tool.Moved = func(p MoveProgress) { moves = append(moves, p) }
	res, err := tool.Reshard(ctx, src, plan.Masters[0].Addr, dst, slots, 4)
	// Keep writing a moment: every moved slot's first write after the
	// handoff is the one that may see MOVED.
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Reshard: %v", err)
	}
	t.Logf("moved %d keys in %v (%.0f keys/s), %d progress reports", res.Keys, res.Elapsed, res.KeysPerSecond(), len(moves))
	if res.Keys < slots*per {
		t.Errorf("the migrations moved %d keys, want at least %d", res.Keys, slots*per)
	}
	if len(moves) == 0 || moves[len(moves)-1].SlotsDone != slots {
		t.Errorf("progress reports end short of %d slots: %+v", slots, moves[max(len(moves)-1, 0):])
	}
	errs := w.Errors()
	for _, e := range errs[:min(len(errs), 10)] {
		t.Errorf("client error during the atomic move: %s", e)
	}
	for s, n := range w.Moved() {
		if n > 1 {
			t.Errorf("slot %d: %d MOVED replies, want at most one", s, n)
		}
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2})
	defer cc.Close()
	for k, v := range w.acked {
		if got, err := cc.Get(ctx, k).Result(); got != v {
			t.Fatalf("%s = %q (%v), last acknowledged %q", k, got, err, v)
		}
	}
	dc := redis.NewClient(&redis.Options{Addr: dst, Protocol: 2})
	defer dc.Close()
	// The source deletes its copy once it saw the claim.
	if err := tool.poll(ctx, "the source to drop the moved keys", func() error {
		if n, _ := sc.DBSize(ctx).Result(); n != 0 {
			return fmt.Errorf("the source still holds %d keys", n)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if n, _ := dc.DBSize(ctx).Result(); n != slots*per {
		t.Errorf("the target holds %d keys, want %d", n, slots*per)
	}
	rep, err := tool.Check(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Warnings) > 0 {
		t.Fatalf("check after the move: %q %q", rep.Errors, rep.Warnings)
	}
}

// TestHearsayRebalance adds an empty master to a 3-master cluster holding
// keys and rebalances with --use-empty-masters: every master ends within
// the threshold of 4096 slots, no key is lost, and a second rebalance
// finds nothing to do. A weight of 0 then empties the new master again.
func TestHearsayRebalance(t *testing.T) {
	be := hearsayBackend(t)
	if testing.Short() {
		t.Skip("process test; skipped with -short")
	}
	addrs := startNodes(t, be, 4)
	ctx := context.Background()
	tool := Tool{Wait: 2 * time.Minute, Progress: func(s string) { t.Log(s) }}
	if _, err := tool.Create(ctx, addrs[:3], 0); err != nil {
		t.Fatalf("Create: %v", err)
	}
	newID, err := tool.AddNode(ctx, addrs[3], addrs[0], "")
	if err != nil {
		t.Fatalf("AddNode: %v", err)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2})
	defer cc.Close()
	const keys = 20000
	if err := tool.poll(ctx, "writes accepted", func() error { return cc.Set(ctx, "probe", "x", 0).Err() }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < keys; i += 500 {
		pipe := cc.Pipeline()
		for j := i; j < i+500; j++ {
			pipe.Set(ctx, "k"+strconv.Itoa(j), strconv.Itoa(j), 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	shares := func() map[string]int {
		cl, err := tool.Load(ctx, addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, sh := range cl.Shards() {
			n := ring.RangesLen(sh.Master.Slots)
			out[sh.Master.ID.String()] = n
		}
		return out
	}
	plan, moves, err := tool.Rebalance(ctx, addrs[0], nil, 2, true, 2)
	if err != nil {
		t.Fatalf("Rebalance: %v", err)
	}
	if !plan.Needed || len(moves) == 0 {
		t.Fatalf("nothing moved: %+v", plan)
	}
	for id, n := range shares() {
		if n < 4096-82 || n > 4096+82 {
			t.Errorf("master %.8s holds %d slots after the rebalance, want 4096 ± 2%%", id, n)
		}
	}
	if plan, moves, err := tool.Rebalance(ctx, addrs[0], nil, 2, true, 2); err != nil || plan.Needed || len(moves) != 0 {
		t.Errorf("a second rebalance: needed %v, %d moves, %v", plan != nil && plan.Needed, len(moves), err)
	}
	if _, _, err := tool.Rebalance(ctx, addrs[0], map[string]float64{newID.String(): 0}, 2, false, 1); err != nil {
		t.Fatalf("Rebalance with weight 0: %v", err)
	}
	if n := shares()[newID.String()]; n != 0 {
		t.Errorf("the weight-0 master still holds %d slots", n)
	}
	for i := 0; i < keys; i += 37 {
		if v, err := cc.Get(ctx, "k"+strconv.Itoa(i)).Result(); err != nil || v != strconv.Itoa(i) {
			t.Fatalf("k%d after the rebalances: %q %v", i, v, err)
		}
	}
}
