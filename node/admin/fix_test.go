package admin

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/slottag"
	"github.com/hearsay/hearsay/ring"
)

func TestFixRedis(t *testing.T)   { testFix(t, redisBackend(t)) }
func TestFixHearsay(t *testing.T) { testFix(t, hearsayBackend(t)) }

// testFix leaves slots open the ways an interrupted redis-cli reshard does
// and checks that Fix closes them without losing or overwriting a key.
func testFix(t *testing.T, be backend) {
	if testing.Short() {
		t.Skip("process test; skipped with -short")
	}
	addrs := startNodes(t, be, 3)
	ctx := context.Background()
	tool := Tool{Wait: 30 * time.Second, Progress: func(s string) { t.Log(s) }}
	plan, err := tool.Create(ctx, addrs, 0)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	cl := map[string]*redis.Client{}
	for _, a := range addrs {
		cl[a] = redis.NewClient(&redis.Options{Addr: a, Protocol: 2, DisableIdentity: true})
		defer cl[a].Close()
	}
	m0, m1, m2 := plan.Masters[0].Addr, plan.Masters[1].Addr, plan.Masters[2].Addr
	if err := tool.poll(ctx, "cluster_state:ok everywhere", func() error {
		for _, a := range addrs {
			if s, err := cl[a].ClusterInfo(ctx).Result(); err != nil || !strings.Contains(s, "cluster_state:ok") {
				return fmt.Errorf("%s: %v %s", a, err, s)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	id := func(a string) string {
		s, err := cl[a].Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	must := func(c *redis.Client, args ...any) {
		t.Helper()
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v on %s: %v", args, c.Options().Addr, err)
		}
	}
	asking := func(c *redis.Client, key, val string) {
		t.Helper()
		pipe := c.Pipeline()
		pipe.Do(ctx, "ASKING")
		pipe.Set(ctx, key, val, 0)
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("ASKING SET %s on %s: %v", key, c.Options().Addr, err)
		}
	}
	// Slots of m0 (0-5460), m2 (10923-16383).
	const finish, back, busy, uncovered = 100, 200, 300, 16000
	id0, id1 := id(m0), id(m1)
	// finish: m0 MIGRATING to m1, m1 IMPORTING; half the keys moved, one
	// new key written on m1 through ASK.
	tf := slottag.For(finish)
	for i := range 20 {
		must(cl[m0], "SET", tf+strconv.Itoa(i), "v"+strconv.Itoa(i))
	}
	must(cl[m1], "CLUSTER", "SETSLOT", finish, "IMPORTING", id0)
	must(cl[m0], "CLUSTER", "SETSLOT", finish, "MIGRATING", id1)
	host, port, _ := splitAddr(m1)
	for i := range 10 {
		must(cl[m0], "MIGRATE", host, port, tf+strconv.Itoa(i), 0, 5000)
	}
	asking(cl[m1], tf+"new", "fresh")
	// back: m1 IMPORTING from m0 only, with keys written there.
	tb := slottag.For(back)
	must(cl[m1], "CLUSTER", "SETSLOT", back, "IMPORTING", id0)
	for i := range 3 {
		asking(cl[m1], tb+strconv.Itoa(i), "b"+strconv.Itoa(i))
	}
	// busy: an open move with one key on both sides.
	tk := slottag.For(busy)
	must(cl[m0], "SET", tk+"x", "on-owner")
	must(cl[m1], "CLUSTER", "SETSLOT", busy, "IMPORTING", id0)
	must(cl[m0], "CLUSTER", "SETSLOT", busy, "MIGRATING", id1)
	asking(cl[m1], tk+"x", "on-target")
	// uncovered: no master holds it any more, its keys are on m2.
	tu := slottag.For(uncovered)
	must(cl[m2], "SET", tu+"a", "u")
	for _, a := range addrs {
		must(cl[a], "CLUSTER", "DELSLOTS", uncovered)
	}

	did, err := tool.Fix(ctx, m0)
	t.Logf("fix:\n%s", strings.Join(did, "\n"))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("slot %d left open: keys exist on both", busy)) {
		t.Fatalf("Fix with a key on both sides: %v", err)
	}
	// Nothing overwritten: both copies of the busy key are intact.
	if v, _ := cl[m0].Get(ctx, tk+"x").Result(); v != "on-owner" {
		t.Fatalf("busy key on the owner: %q", v)
	}
	// The operator decides: the target's copy goes.
	pipe := cl[m1].Pipeline()
	pipe.Do(ctx, "ASKING")
	pipe.Del(ctx, tk+"x")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if did, err = tool.Fix(ctx, m0); err != nil {
		t.Fatalf("second Fix: %v\n%s", err, strings.Join(did, "\n"))
	}
	if err := tool.poll(ctx, "a clean check", func() error {
		rep, err := tool.Check(ctx, m0)
		if err != nil {
			return err
		}
		if !rep.OK() || len(rep.Warnings) > 0 || rep.Covered != ring.Slots {
			return fmt.Errorf("errors %q warnings %q covered %d", rep.Errors, rep.Warnings, rep.Covered)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2})
	defer cc.Close()
	want := map[string]string{tf + "new": "fresh", tk + "x": "on-owner", tu + "a": "u"}
	for i := range 20 {
		want[tf+strconv.Itoa(i)] = "v" + strconv.Itoa(i)
	}
	for i := range 3 {
		want[tb+strconv.Itoa(i)] = "b" + strconv.Itoa(i)
	}
	for k, v := range want {
		if got, err := cc.Get(ctx, k).Result(); got != v {
			t.Errorf("%s = %q (%v), want %q", k, got, err, v)
		}
	}
	// Each slot ended where the rules say.
	owner := func(slot int) string {
		lines, err := tool.Nodes(ctx, m2)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			for _, r := range l.Slots {
				if int(r.Start) <= slot && slot <= int(r.End) {
					return l.ID.String()
				}
			}
		}
		return ""
	}
	for _, c := range []struct {
		slot int
		want string
	}{{finish, id1}, {back, id0}, {busy, id1}, {uncovered, id(m2)}} {
		if got := owner(c.slot); got != c.want {
			t.Errorf("slot %d owned by %.8s, want %.8s", c.slot, got, c.want)
		}
	}
}
