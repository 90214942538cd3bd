package node_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/testenv"
)

// quietRedis drops go-redis's pool messages: a killed master makes it log
// every refused dial.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// shardCluster starts 6 nodes and makes 3 masters with one replica each
// with redis-cli, as an operator would.
func shardCluster(t *testing.T, extra ...string) []*proc {
	t.Helper()
	cli := testenv.RequireBinary(t, "redis-cli")
	redis.SetLogger(quietRedis{})
	ps := make([]*proc, 6)
	args := []string{"--cluster", "create"}
	for i := range ps {
		ps[i] = startNode(t, freePort(t), t.TempDir(), extra...)
		args = append(args, ps[i].addr())
	}
	out, err := exec.Command(cli, append(args, "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitAgree(t, ps, 20*time.Second)
	return ps
}

// pickShard returns a master and its replica.
func pickShard(t *testing.T, ps []*proc) (master, replica *proc) {
	t.Helper()
	for _, p := range ps {
		if infoField(t, p.addr(), "replication", "role") != "slave" {
			continue
		}
		port := infoField(t, p.addr(), "replication", "master_port")
		for _, m := range ps {
			if strconv.Itoa(m.port) == port {
				return m, p
			}
		}
	}
	t.Fatal("no replica found")
	return nil, nil
}

// nodeFlags returns the flags node id has in p's CLUSTER NODES, or "" when p does not answer.
func nodeFlags(p *proc, id string) string {
	nodes, err := rawClusterNodes(p)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(nodes, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == id {
			return f[2]
		}
	}
	return ""
}

func rawClusterNodes(p *proc) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: p.addr(), Protocol: 2, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	return c.ClusterNodes(context.Background()).Result()
}

// waitMasterEverywhere waits until every node in ps lists id as a master
// and returns how long that took.
func waitMasterEverywhere(t *testing.T, ps []*proc, id string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		all := true
		for _, p := range ps {
			if f := strings.Split(nodeFlags(p, id), ","); !slices.Contains(f, "master") || slices.Contains(f, "fail") {
				all = false
				break
			}
		}
		if all {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			var b strings.Builder
			for _, p := range ps {
				n, _ := rawClusterNodes(p)
				b.WriteString(strconv.Itoa(p.port) + ":\n" + n + "\n")
			}
			t.Fatalf("%s not master on every node within %v:\n%s", id, timeout, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeLoad writes keys through a cluster client until stop is closed.
// With wait set, a write counts as acknowledged only when WAIT 1 confirms
// a replica has it; otherwise the SET's OK is the acknowledgement.
type writeLoad struct {
	acked  *ackedWrites
	errs   atomic.Int64
	writes atomic.Int64 // acknowledged writes
	sets   atomic.Int64 // writes the master took, acknowledged or not
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startWrites(t *testing.T, cc *redis.ClusterClient, workers int, wait bool) *writeLoad {
	w := &writeLoad{acked: newAckedWrites(), stop: make(chan struct{})}
	ctx := context.Background()
	for i := range workers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-w.stop:
					return
				default:
				}
				k := "fo:" + strconv.Itoa(i) + ":" + strconv.Itoa(n%2000)
				v := strconv.Itoa(n)
				if !wait {
					if err := cc.Set(ctx, k, v, 0).Err(); err != nil {
						w.acked.attempt(k, v)
						w.errs.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					w.acked.record(k, v)
					w.writes.Add(1)
					w.sets.Add(1)
					continue
				}
				m, err := cc.MasterForKey(ctx, k)
				if err != nil {
					w.errs.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				var set *redis.StatusCmd
				var acks *redis.Cmd
				_, err = m.Pipelined(ctx, func(p redis.Pipeliner) error {
					set = p.Set(ctx, k, v, 0)
					acks = p.Do(ctx, "WAIT", 1, 500)
					return nil
				})
				if set != nil && set.Err() == nil {
					w.sets.Add(1)
				}
				if n, _ := acks.Int64(); err != nil || set.Err() != nil || n < 1 {
					// A MOVED after the failover, or an unreplicated write:
					// not acknowledged. Refresh the slot map and go on.
					w.acked.attempt(k, v)
					w.errs.Add(1)
					cc.ReloadState(ctx)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				w.acked.record(k, v)
				w.writes.Add(1)
			}
		}()
	}
	return w
}

func (w *writeLoad) finish() {
	close(w.stop)
	w.wg.Wait()
}

// keyOnNode returns a key whose slot p serves, as cc sees it.
func keyOnNode(t *testing.T, cc *redis.ClusterClient, p *proc) string {
	t.Helper()
	ctx := context.Background()
	cc.ReloadState(ctx)
	for i := range 10000 {
		k := "probe:" + strconv.Itoa(i)
		if m, err := cc.MasterForKey(ctx, k); err == nil && m.Options().Addr == p.addr() {
			return k
		}
	}
	t.Fatalf("no key maps to %s", p.addr())
	return ""
}

func clusterClient(ps []*proc) *redis.ClusterClient {
	addrs := make([]string, len(ps))
	for i, p := range ps {
		addrs[i] = p.addr()
	}
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2, MaxRedirects: 8, MaxRetries: 1,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
}

func without(ps []*proc, x ...*proc) []*proc {
	var out []*proc
	for _, p := range ps {
		keep := true
		for _, y := range x {
			keep = keep && p != y
		}
		if keep {
			out = append(out, p)
		}
	}
	return out
}

// TestFailoverKillMaster kills a master under a WAIT-acknowledged write
// load: its replica must become master on every survivor, the client must
// carry on, every acknowledged write must read back, and the old master,
// restarted, must rejoin as a replica of the winner and resync.
func TestFailoverKillMaster(t *testing.T) {
	testenv.SkipShort(t, "starts 6 node processes")
	ps := shardCluster(t)
	master, replica := pickShard(t, ps)
	rid := myID(t, replica)
	cc := clusterClient(ps)
	defer cc.Close()
	load := startWrites(t, cc, 4, true)
	time.Sleep(time.Second)
	master.kill()
	took := waitMasterEverywhere(t, without(ps, master), rid, 15*time.Second)
	t.Logf("kill -9 to the replica listed as master on every survivor: %v", took)
	if infoField(t, replica.addr(), "replication", "role") != "master" {
		t.Fatal("the promoted replica does not report role:master")
	}
	// The client carries on, on the failed-over shard too (where WAIT 1
	// now finds no replica and waits its whole 500 ms, so those writes
	// are slow and not counted as acknowledged).
	// Resuming is what counts, not how fast: a loaded machine may be slow.
	sets := load.sets.Load()
	resumeBy := time.Now().Add(15 * time.Second)
	for load.sets.Load()-sets < 20 && time.Now().Before(resumeBy) {
		time.Sleep(50 * time.Millisecond)
	}
	after := load.writes.Load()
	load.finish()
	if got := load.sets.Load() - sets; got < 20 {
		t.Fatalf("writes did not resume after the failover: %d taken in 15 s", got)
	}
	n, err := cc.Set(context.Background(), keyOnNode(t, cc, replica), "x", 0).Result()
	if err != nil || n != "OK" {
		t.Fatalf("write to the failed-over shard: %v %v", n, err)
	}
	ctx := context.Background()
	cc.ReloadState(ctx)
	time.Sleep(200 * time.Millisecond)
	load.acked.verify(t, cc)
	t.Logf("%d keys checked, %d writes acknowledged, %d refused or unacknowledged", load.acked.count(), after, load.errs.Load())

	// The old master comes back with its old state: it must follow the
	// winner and take its data, never serve the slots it lost.
	old := startNode(t, master.port, master.dir)
	deadline := time.Now().Add(15 * time.Second)
	for {
		role := infoField(t, old.addr(), "replication", "role")
		port := infoField(t, old.addr(), "replication", "master_port")
		if role == "slave" && port == strconv.Itoa(replica.port) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted master is %s of port %s, want a replica of %d", role, port, replica.port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitReplicaCaughtUp(t, replica.addr(), old.addr(), 15*time.Second)
	all := append(without(ps, master), old)
	waitAgree(t, all, 20*time.Second)
	sameData(t, "restarted old master", keyspaceOf(t, replica.addr()), keyspaceOf(t, old.addr()))
}

// TestManualFailoverUnderWrites runs CLUSTER FAILOVER while clients write
// without WAIT: the master pauses, the replica catches up and takes over,
// and no write the master acknowledged is lost.
func TestManualFailoverUnderWrites(t *testing.T) {
	testenv.SkipShort(t, "starts 6 node processes")
	ps := shardCluster(t)
	master, replica := pickShard(t, ps)
	rid, mid := myID(t, replica), myID(t, master)
	ctx := context.Background()

	// Misuse gets Redis's errors.
	if err := client(t, master).Do(ctx, "CLUSTER", "FAILOVER").Err(); err == nil || err.Error() != "ERR You should send CLUSTER FAILOVER to a replica" {
		t.Fatalf("on a master: %v", err)
	}
	if err := client(t, replica).Do(ctx, "CLUSTER", "FAILOVER", "SOON").Err(); err == nil || err.Error() != "ERR syntax error" {
		t.Fatalf("bad option: %v", err)
	}

	cc := clusterClient(ps)
	defer cc.Close()
	load := startWrites(t, cc, 4, false)
	time.Sleep(time.Second)
	start := time.Now()
	if err := client(t, replica).Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
		t.Fatal(err)
	}
	waitMasterEverywhere(t, ps, rid, 10*time.Second)
	t.Logf("CLUSTER FAILOVER to the replica listed as master everywhere: %v", time.Since(start))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(nodeFlags(replica, mid), "slave") {
		if time.Now().After(deadline) {
			t.Fatal("old master did not become a replica")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	load.finish()
	cc.ReloadState(ctx)
	time.Sleep(200 * time.Millisecond)
	load.acked.verify(t, cc)
	t.Logf("%d keys checked after %d acknowledged writes (%d errors)", load.acked.count(), load.writes.Load(), load.errs.Load())
	waitAgree(t, ps, 20*time.Second)

	// FORCE on the new replica (the old master) switches back without
	// waiting for a catch-up.
	if err := client(t, master).Do(ctx, "CLUSTER", "FAILOVER", "FORCE").Err(); err != nil {
		t.Fatal(err)
	}
	waitMasterEverywhere(t, ps, mid, 10*time.Second)
}

// TestTakeoverWithMajorityDown kills two of three masters: no election can
// win, but TAKEOVER on their replicas brings the cluster back.
func TestTakeoverWithMajorityDown(t *testing.T) {
	testenv.SkipShort(t, "starts 6 node processes")
	ps := shardCluster(t)
	var masters, replicas []*proc
	for _, p := range ps {
		if infoField(t, p.addr(), "replication", "role") == "master" {
			masters = append(masters, p)
		}
	}
	if len(masters) != 3 {
		t.Fatalf("%d masters", len(masters))
	}
	dead := masters[:2]
	for _, m := range dead {
		for _, p := range ps {
			if infoField(t, p.addr(), "replication", "role") == "slave" &&
				infoField(t, p.addr(), "replication", "master_port") == strconv.Itoa(m.port) {
				replicas = append(replicas, p)
			}
		}
	}
	// Both at once: killed one after the other, the first would be failed
	// over while a majority still lives.
	for _, m := range dead {
		m.kill()
	}
	live := without(ps, dead...)
	ctx := context.Background()
	time.Sleep(3 * time.Second) // no failover can win without a majority
	for _, r := range replicas {
		if infoField(t, r.addr(), "replication", "role") != "slave" {
			b, _ := os.ReadFile(r.log)
			t.Fatalf("a replica was promoted without a majority of masters:\n%s", b)
		}
	}
	for _, r := range replicas {
		if err := client(t, r).Do(ctx, "CLUSTER", "FAILOVER", "TAKEOVER").Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range replicas {
		waitMasterEverywhere(t, live, myID(t, r), 10*time.Second)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := client(t, live[0]).ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok after TAKEOVER: %v\n%s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cc := clusterClient(live)
	defer cc.Close()
	for i := range 100 {
		if err := cc.Set(ctx, "after:"+strconv.Itoa(i), "x", 0).Err(); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("write after TAKEOVER: %v", err)
		}
	}
}

// TestFailoverStoppedMasterXDP stops a master with SIGSTOP while XDP
// answers its heartbeats in the kernel: its PONGs keep coming but its
// progress counter stops, so it is failed over all the same; after SIGCONT
// it finds its slots taken and becomes a replica of the winner.
func TestFailoverStoppedMasterXDP(t *testing.T) {
	requireHeartbeatRoot(t)
	if os.Getenv("HEARSAY_LO_CHILD") != "1" {
		runInOwnNetns(t, "TestFailoverStoppedMasterXDP")
		return
	}
	ps := make([]*proc, 6)
	for i := range ps {
		ps[i] = startNodeArgs(t, "", "127.0.0.1", freePort(t), t.TempDir(), "--heartbeat", "xdp", "--node-timeout", "1s")
	}
	createCluster(t, ps)
	waitAgree(t, ps, 20*time.Second)
	master, replica := ps[0], ps[3]
	mid, rid := myID(t, master), myID(t, replica)
	waitReplicaCaughtUp(t, master.addr(), replica.addr(), 10*time.Second)
	if m := hbInfo(t, ps[1]); m["heartbeat_mode"] != "xdp" {
		t.Fatalf("heartbeats are %v, want xdp", m)
	}
	if err := master.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took := waitMasterEverywhere(t, ps[1:], rid, 15*time.Second)
	t.Logf("SIGSTOP to the replica listed as master everywhere: %v", took)
	// The kernel kept answering for the stopped node: its peers still see
	// PONGs from all five.
	if m := hbInfo(t, ps[1]); m["heartbeat_peers_answering"] != "5" {
		t.Fatalf("after the failover a peer hears %s of 5 (want the stopped node's kernel too): %v", m["heartbeat_peers_answering"], m)
	}
	if err := master.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the stopped master follows the winner", func() (bool, string) {
		f := nodeFlags(ps[1], mid)
		role := infoField(t, master.addr(), "replication", "role")
		return strings.Contains(f, "slave") && role == "slave", f + " " + role
	})
	waitAgree(t, ps, 20*time.Second)
}

// TestReplicaMigration gives one master a second replica, kills the only
// replica of another, and checks that one spare replica moves to the
// orphaned master and syncs its data, as Redis's replica migration does.
func TestReplicaMigration(t *testing.T) {
	ps := shardCluster(t)
	rich, spare := pickShard(t, ps)
	var poor, lost *proc
	for _, p := range ps {
		if p == spare || infoField(t, p.addr(), "replication", "role") != "slave" {
			continue
		}
		port := infoField(t, p.addr(), "replication", "master_port")
		for _, m := range ps {
			if strconv.Itoa(m.port) == port && m != rich {
				poor, lost = m, p
			}
		}
	}
	if poor == nil {
		t.Fatal("no second shard")
	}
	extra := startNode(t, freePort(t), t.TempDir())
	do(t, extra, "CLUSTER", "MEET", "127.0.0.1", rich.port)
	all := append(slices.Clone(ps), extra)
	waitAgree(t, all, 20*time.Second)
	do(t, extra, "CLUSTER", "REPLICATE", do(t, rich, "CLUSTER", "MYID").(string))
	waitReplicaCaughtUp(t, rich.addr(), extra.addr(), 20*time.Second)
	key := keyOn(t, client(t, poor))
	do(t, poor, "SET", key, "kept")
	lost.kill()
	// One of rich's two replicas moves to poor (the one with the smaller
	// ID; either is right here) about 5 s after poor lost its replica.
	deadline := time.Now().Add(30 * time.Second)
	var moved *proc
	for moved == nil {
		for _, p := range []*proc{spare, extra} {
			if infoField(t, p.addr(), "replication", "master_port") == strconv.Itoa(poor.port) {
				moved = p
			}
		}
		if time.Now().After(deadline) {
			n, _ := rawClusterNodes(poor)
			t.Fatalf("no replica moved to the orphaned master:\n%s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitReplicaCaughtUp(t, poor.addr(), moved.addr(), 20*time.Second)
	rc := redis.NewClient(&redis.Options{Addr: moved.addr(), Protocol: 2})
	defer rc.Close()
	ctx := context.Background()
	if err := rc.Do(ctx, "READONLY").Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rc.Get(ctx, key).Result(); err != nil || v != "kept" {
		t.Fatalf("moved replica: GET %s = %q, %v", key, v, err)
	}
	// The other replica stays with rich: rich keeps one.
	other := spare
	if moved == spare {
		other = extra
	}
	if got := infoField(t, other.addr(), "replication", "master_port"); got != strconv.Itoa(rich.port) {
		t.Fatalf("the other replica follows port %s, want %d", got, rich.port)
	}
	if !strings.Contains(logOf(t, moved), "replica migration: moving to an orphaned master") {
		t.Error("no log line for the migration")
	}
}

// logOf returns what p has logged so far.
func logOf(t *testing.T, p *proc) string {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHearsayClusterFailover promotes a replica with `hearsay cluster
// failover`, naming it by ID through another node, then back with --force
// naming the old master by host:port.
func TestHearsayClusterFailover(t *testing.T) {
	ps := shardCluster(t)
	master, replica := pickShard(t, ps)
	rid := do(t, replica, "CLUSTER", "MYID").(string)
	out, err := exec.Command(binary, "cluster", "failover", master.addr(), rid).CombinedOutput()
	if err != nil {
		t.Fatalf("hearsay cluster failover: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "is now a master") {
		t.Fatalf("unexpected output:\n%s", out)
	}
	waitMasterEverywhere(t, ps, rid, 10*time.Second)
	if got := infoField(t, master.addr(), "replication", "role"); got != "slave" {
		t.Fatalf("old master's role %q, want slave", got)
	}
	out, err = exec.Command(binary, "cluster", "failover", master.addr(), "--force").CombinedOutput()
	if err != nil {
		t.Fatalf("hearsay cluster failover --force: %v\n%s", err, out)
	}
	waitMasterEverywhere(t, ps, do(t, master, "CLUSTER", "MYID").(string), 10*time.Second)
	// A master cannot be "promoted".
	out, err = exec.Command(binary, "cluster", "failover", master.addr()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is a master") {
		t.Fatalf("failover of a master: err %v, output:\n%s", err, out)
	}
}
