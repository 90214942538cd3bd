package node_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/testenv"
)

// infoField returns one field of INFO section from p.
func infoField(t *testing.T, addr, section, field string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DialTimeout: time.Second})
	defer c.Close()
	s, err := c.Info(context.Background(), section).Result()
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return v
		}
	}
	return ""
}

// waitReplicaCaughtUp waits until the replica at raddr is linked to its
// master at maddr and has processed its whole stream.
func waitReplicaCaughtUp(t *testing.T, maddr, raddr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		mo := infoField(t, maddr, "replication", "master_repl_offset")
		ro := infoField(t, raddr, "replication", "slave_repl_offset")
		up := infoField(t, raddr, "replication", "master_link_status")
		if up == "up" && mo != "" && mo == ro {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s did not catch up with %s: link %q, offsets %s / %s", raddr, maddr, up, mo, ro)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keyspaceOf reads every key of the node at addr with its value and TTL
// (READONLY, so a replica serves its master's keys).
func keyspaceOf(t *testing.T, addr string) map[string][2]string {
	t.Helper()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, PoolSize: 1,
		OnConnect: func(ctx context.Context, cn *redis.Conn) error { return cn.ReadOnly(ctx).Err() }})
	defer c.Close()
	out := map[string][2]string{}
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			t.Fatalf("SCAN on %s: %v", addr, err)
		}
		for _, k := range keys {
			v, err := c.Get(ctx, k).Result()
			if err != nil {
				t.Fatalf("GET %s on %s: %v", k, addr, err)
			}
			ttl, _ := c.PTTL(ctx, k).Result()
			out[k] = [2]string{v, strconv.FormatInt(ttl.Milliseconds(), 10)}
		}
		if cursor = next; cursor == 0 {
			return out
		}
	}
}

// sameData compares two keyspaces: values exactly, TTLs within a second.
func sameData(t *testing.T, what string, a, b map[string][2]string) {
	t.Helper()
	bad := 0
	for k, va := range a {
		vb, ok := b[k]
		ta, _ := strconv.ParseInt(va[1], 10, 64)
		tb, _ := strconv.ParseInt(vb[1], 10, 64)
		if !ok || va[0] != vb[0] || (ta < 0) != (tb < 0) || ta-tb > 1000 || tb-ta > 1000 {
			if bad++; bad <= 5 {
				t.Errorf("%s: key %q: master %q ttl %s, replica %q ttl %s (present %v)", what, k, va[0], va[1], vb[0], vb[1], ok)
			}
		}
	}
	if len(a) != len(b) {
		t.Errorf("%s: master holds %d keys, replica %d", what, len(a), len(b))
	}
	if bad > 0 {
		t.Fatalf("%s: %d keys differ", what, bad)
	}
}

// TestReplicationCluster writes to a 3-master, 3-replica cluster under a
// go-redis load and compares every replica's keyspace with its master's.
func TestReplicationCluster(t *testing.T) {
	cli := testenv.RequireBinary(t, "redis-cli")
	testenv.SkipShort(t, "starts 6 node processes")
	ps := make([]*proc, 6)
	args := []string{"--cluster", "create"}
	for i := range ps {
		ps[i] = startNode(t, freePort(t), t.TempDir())
		args = append(args, ps[i].addr())
	}
	out, err := exec.Command(cli, append(args, "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitAgree(t, ps, 20*time.Second)

	addrs := make([]string, len(ps))
	for i, p := range ps {
		addrs[i] = p.addr()
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2})
	defer cc.Close()
	ctx := context.Background()
	stop := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	var errs sync.Map
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for time.Now().Before(stop) {
				k := "key:" + strconv.Itoa(rng.IntN(5000))
				var err error
				switch rng.IntN(8) {
				case 0, 1, 2:
					err = cc.Set(ctx, k, strconv.Itoa(rng.IntN(1e9)), 0).Err()
				case 3:
					err = cc.Set(ctx, k, "ttl", time.Duration(30+rng.IntN(30))*time.Second).Err()
				case 4:
					err = cc.Incr(ctx, "n"+k).Err()
				case 5:
					err = cc.Append(ctx, k, "+").Err()
				case 6:
					err = cc.Expire(ctx, k, 100*time.Second).Err()
				case 7:
					err = cc.Del(ctx, k).Err()
				}
				if err != nil {
					errs.Store(err.Error(), true)
				}
			}
		}()
	}
	wg.Wait()
	errs.Range(func(k, _ any) bool { t.Errorf("load: %v", k); return true })

	pairs := 0
	for _, p := range ps {
		if infoField(t, p.addr(), "replication", "role") != "slave" {
			continue
		}
		mhost := infoField(t, p.addr(), "replication", "master_host")
		mport := infoField(t, p.addr(), "replication", "master_port")
		maddr := mhost + ":" + mport
		waitReplicaCaughtUp(t, maddr, p.addr(), 20*time.Second)
		m, r := keyspaceOf(t, maddr), keyspaceOf(t, p.addr())
		if len(m) < 1000 {
			t.Fatalf("master %s holds only %d keys", maddr, len(m))
		}
		sameData(t, maddr+" -> "+p.addr(), m, r)
		pairs++
	}
	if pairs != 3 {
		t.Fatalf("found %d replicas, want 3", pairs)
	}

	// CLUSTER SLOTS now lists a replica for every range (Redis hides
	// replicas that have not synced).
	slots, err := client(t, ps[0]).Do(ctx, "CLUSTER", "SLOTS").Slice()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if r, _ := s.([]any); len(r) != 4 {
			t.Errorf("CLUSTER SLOTS entry %v: want a range, its master and one replica", s)
		}
	}

	// WAIT: 1 with the replica up; 0 at the timeout with it stopped.
	var master, replica *proc
	for _, p := range ps {
		if infoField(t, p.addr(), "replication", "role") == "slave" {
			replica = p
			maddr := infoField(t, p.addr(), "replication", "master_host") + ":" + infoField(t, p.addr(), "replication", "master_port")
			for _, q := range ps {
				if q.addr() == maddr {
					master = q
				}
			}
			break
		}
	}
	mc := redis.NewClient(&redis.Options{Addr: master.addr(), Protocol: 2, PoolSize: 1})
	defer mc.Close()
	key := keyOn(t, mc)
	if err := mc.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := mc.Wait(ctx, 1, time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 1000 with a live replica: %d %v", n, err)
	}
	stopProc(t, replica)
	defer func() { _ = replica.cmd.Process.Signal(syscall.SIGCONT) }()
	if err := mc.Set(ctx, key, "v2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if n, err := mc.Wait(ctx, 1, time.Second).Result(); err != nil || n != 0 {
		t.Fatalf("WAIT 1 1000 with the replica stopped: %d %v", n, err)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
		t.Fatalf("WAIT with the replica stopped returned after %v, want about 1 s", d)
	}
}

// keyOn returns a key that the node behind c serves.
func keyOn(t *testing.T, c *redis.Client) string {
	t.Helper()
	for i := range 100000 {
		k := "w" + strconv.Itoa(i)
		if err := c.Get(context.Background(), k).Err(); err == nil || err == redis.Nil {
			return k
		}
	}
	t.Fatal("no key served here")
	return ""
}

// TestRedisServerReplicaOfHearsay has a stock redis-server full-sync from a
// hearsay master, follow its live writes, and resync partially after its
// link is cut.
func TestRedisServerReplicaOfHearsay(t *testing.T) {
	server := testenv.RequireBinary(t, "redis-server")
	testenv.SkipShort(t, "starts a node and a redis-server, writes 100,000 keys")
	port, httpPort := freePort(t), freePort(t)
	p := startNode(t, port, t.TempDir(), "--http", "127.0.0.1:"+strconv.Itoa(httpPort))
	ctx := context.Background()
	mc := redis.NewClient(&redis.Options{Addr: p.addr(), Protocol: 2})
	defer mc.Close()
	if err := mc.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "cluster ok", func() (bool, string) {
		s, _ := mc.ClusterInfo(ctx).Result()
		return strings.Contains(s, "cluster_state:ok"), s
	})
	// 100,000 keys; the node serves every slot, so a plain client works.
	const keys = 100000
	for i := 0; i < keys; i += 1000 {
		pipe := mc.Pipeline()
		for j := i; j < i+1000; j++ {
			if j%10 == 0 {
				pipe.Set(ctx, "key:"+strconv.Itoa(j), "value-"+strconv.Itoa(j), time.Hour)
			} else {
				pipe.Set(ctx, "key:"+strconv.Itoa(j), "value-"+strconv.Itoa(j), 0)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rport := freePort(t)
	rdir := t.TempDir()
	rs := exec.Command(server, "--port", strconv.Itoa(rport), "--bind", "127.0.0.1", "--replicaof", "127.0.0.1", strconv.Itoa(port),
		"--dir", rdir, "--save", "", "--appendonly", "no", "--logfile", rdir+"/redis.log")
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rs.Process.Kill(); _ = rs.Wait() }()
	raddr := "127.0.0.1:" + strconv.Itoa(rport)
	waitReplicaCaughtUp(t, p.addr(), raddr, 30*time.Second)
	rc := redis.NewClient(&redis.Options{Addr: raddr, Protocol: 2})
	defer rc.Close()
	checkSample := func(what string, n int64) {
		t.Helper()
		if got, err := rc.DBSize(ctx).Result(); err != nil || got != n {
			t.Fatalf("%s: redis-server DBSIZE %d %v, want %d", what, got, err, n)
		}
		for range 200 {
			i := rand.IntN(keys)
			k := "key:" + strconv.Itoa(i)
			want, werr := mc.Get(ctx, k).Result()
			got, gerr := rc.Get(ctx, k).Result()
			if got != want || (werr == redis.Nil) != (gerr == redis.Nil) || (gerr != nil && gerr != redis.Nil) {
				t.Fatalf("%s: %s on redis-server %q %v, on hearsay %q %v", what, k, got, gerr, want, werr)
			}
			mt, _ := mc.PTTL(ctx, k).Result()
			rt, _ := rc.PTTL(ctx, k).Result()
			if (mt < 0) != (rt < 0) || (mt-rt).Abs() > time.Second {
				t.Fatalf("%s: %s TTL on redis-server %v, on hearsay %v", what, k, rt, mt)
			}
		}
	}
	checkSample("after the full sync", keys)

	// Live writes: overwrite, count, expire, delete.
	for i := range 1000 {
		k := "key:" + strconv.Itoa(i)
		switch i % 4 {
		case 0:
			mc.Set(ctx, k, "new", 0)
		case 1:
			mc.Incr(ctx, "counter")
		case 2:
			mc.Expire(ctx, k, time.Minute)
		case 3:
			mc.Del(ctx, k)
		}
	}
	waitReplicaCaughtUp(t, p.addr(), raddr, 10*time.Second)
	checkSample("after live writes", keys-250+1)
	if got, _ := rc.Get(ctx, "counter").Result(); got != "250" {
		t.Fatalf("counter on redis-server: %q, want 250", got)
	}

	// Cut the link from the replica's side; it must come back with a
	// partial resync.
	if err := rc.Do(ctx, "CLIENT", "KILL", "TYPE", "master").Err(); err != nil {
		t.Fatal(err)
	}
	mc.Set(ctx, "after-kill", "1", 0)
	waitReplicaCaughtUp(t, p.addr(), raddr, 10*time.Second)
	if got, _ := rc.Get(ctx, "after-kill").Result(); got != "1" {
		t.Fatalf("write after the link cut not replicated: %q", got)
	}
	metrics := func() string {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(httpPort) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := metrics()
	for _, want := range []string{`hearsay_repl_syncs_total{kind="full",side="master"} 1`, `hearsay_repl_syncs_total{kind="partial",side="master"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "hearsay_repl"))
		}
	}
	if s := infoField(t, p.addr(), "stats", "sync_partial_ok"); s != "1" {
		t.Errorf("INFO stats sync_partial_ok %q, want 1", s)
	}
	if s := infoField(t, p.addr(), "replication", "connected_slaves"); s != "1" {
		t.Errorf("connected_slaves %q", s)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
