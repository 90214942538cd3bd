package node_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/ring"
)

// Faults and bad input around CLUSTER MIGRATESLOTS.

// migrationState returns the state of p's last GETSLOTMIGRATIONS row (the
// newest running one), or "" when there is none or p does not answer.
func migrationState(p *proc) string {
	c := client(nil, p)
	v, err := c.Do(context.Background(), "CLUSTER", "GETSLOTMIGRATIONS").Result()
	if err != nil {
		return ""
	}
	rows, _ := v.([]any)
	if len(rows) == 0 {
		return ""
	}
	r, _ := rows[len(rows)-1].([]any)
	for i := 0; i+1 < len(r); i += 2 {
		if r[i] == "state" {
			s, _ := r[i+1].(string)
			return s
		}
	}
	return ""
}

// waitStarted waits until p's migration has left "connecting" (the target
// accepted it and data flows) and returns the state it saw. It fails if
// the migration finished first: the test would then not be mid-migration.
func waitStarted(t *testing.T, p *proc) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		switch st := migrationState(p); st {
		case "snapshotting", "waiting-to-pause", "pausing", "failover-paused":
			return st
		case "success", "failed", "cancelled":
			t.Fatalf("the migration ended (%s) before the fault could be injected: %v", st, slotMigrations(t, p))
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("the migration did not start")
	return ""
}

// TestAtomicMigrateTargetKilled kills the target with SIGKILL while it
// receives the slots: the source must keep them and every acknowledged
// write, and show the migration failed.
func TestAtomicMigrateTargetKilled(t *testing.T) {
	testenv.SkipShort(t, "starts 3 node processes and loads 100,000 keys")
	// Only the moved slots are written, so that the dead target's own
	// slots do not make the load fail.
	keys := keyNames(100000, 0, 999)
	ps, cli := atomicClusterSized(t, 3, keys, 256, "--cluster-require-full-coverage", "no")
	to := myID(t, ps[1])
	cc := clusterClient(ps)
	defer cc.Close()
	load := startMixed(cc, 3, keys)
	time.Sleep(200 * time.Millisecond)
	if r := do(t, ps[0], "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", "999", "NODE", to); r != "OK" {
		t.Fatalf("MIGRATESLOTS: %v", r)
	}
	st := waitStarted(t, ps[0])
	ps[1].kill()
	rows := waitMigration(t, ps[0], time.Minute)
	time.Sleep(300 * time.Millisecond) // writes go on at the source
	load.finish()
	t.Logf("target killed in state %s; source: %s (%v)", st, rows[0]["state"], rows[0]["message"])
	if rows[0]["state"] != "failed" {
		t.Fatalf("source's migration after the target died: %v", rows)
	}
	for _, e := range load.errors() {
		t.Errorf("client error: %s", e)
	}
	for _, s := range []string{"0", "500", "999"} {
		if n := do(t, ps[0], "CLUSTER", "COUNTKEYSINSLOT", s).(int64); n == 0 {
			t.Errorf("the source lost the keys of slot %s", s)
		}
	}
	nodes := do(t, ps[0], "CLUSTER", "NODES").(string)
	for _, l := range strings.Split(nodes, "\n") {
		if strings.Contains(l, "myself") && !strings.Contains(l, " 0-") {
			t.Fatalf("the source no longer owns slot 0:\n%s", nodes)
		}
	}
	if n := load.writes.Load(); n == 0 {
		t.Fatal("no write was acknowledged")
	}
	fresh := clusterClient([]*proc{ps[0], ps[2]})
	defer fresh.Close()
	load.acked.verify(t, fresh)
	ctx := context.Background()
	for i := 0; i < len(keys); i += 13 {
		if _, ok := load.acked.lastValue(keys[i]); ok {
			continue
		}
		if v, err := fresh.Get(ctx, keys[i]).Result(); err != nil || !strings.HasPrefix(v, "v"+strconv.Itoa(i)+".") {
			t.Fatalf("%s: %q %v", keys[i], v, err)
		}
	}
	_ = cli
}

// TestAtomicMigrateSourceKilled kills the source with SIGKILL while it
// sends the slots, with a replica standing by: after the replica takes
// over, every slot has one owner and no write a replica acknowledged
// (WAIT 1) is lost.
func TestAtomicMigrateSourceKilled(t *testing.T) {
	testenv.SkipShort(t, "starts 6 node processes")
	ps := shardCluster(t)
	src, rep := pickShard(t, ps)
	var dst *proc
	for _, p := range ps {
		if p != src && p != rep && infoField(t, p.addr(), "replication", "role") == "master" {
			dst = p
			break
		}
	}
	lo, hi := firstRange(t, src)
	hi = min(hi, lo+999)
	loadKeys(t, ps, keyNamesIn(60000, 0, lo, hi), 256)
	cc := clusterClient(ps)
	defer cc.Close()
	w := startWrites(t, cc, 4, true)
	time.Sleep(300 * time.Millisecond)
	if r := do(t, src, "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi), "NODE", myID(t, dst)); r != "OK" {
		t.Fatalf("MIGRATESLOTS: %v", r)
	}
	st := waitStarted(t, src)
	port, dir := src.port, src.dir
	src.kill()
	t.Logf("source killed in state %s", st)
	waitMasterEverywhere(t, without(ps, src), myID(t, rep), 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	w.finish()
	// The old source comes back (as a replica) so that every node agrees
	// on one picture again.
	back := startNode(t, port, dir)
	ps = append(without(ps, src), back)
	waitAgree(t, ps, 60*time.Second)
	owners := map[string]bool{}
	for _, p := range ps {
		for _, l := range strings.Split(do(t, p, "CLUSTER", "NODES").(string), "\n") {
			if strings.Contains(l, "myself") && strings.Contains(l, "master") {
				for s := lo; s <= hi; s += 97 {
					if n := do(t, p, "CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(s)).(int64); n > 0 {
						owners[strconv.Itoa(s)+"@"+strconv.Itoa(p.port)] = true
					}
				}
			}
		}
	}
	perSlot := map[string]int{}
	for k := range owners {
		perSlot[strings.Split(k, "@")[0]]++
	}
	for s, c := range perSlot {
		if c > 1 {
			t.Errorf("slot %s has keys on %d masters: %v", s, c, owners)
		}
	}
	t.Logf("%d writes acknowledged by a replica, %d errors (expected around the failover)", w.writes.Load(), w.errs.Load())
	fresh := clusterClient(ps)
	defer fresh.Close()
	w.acked.verify(t, fresh)
	testenvCheck(t, ps[0])
}

// testenvCheck runs redis-cli --cluster check on p.
func testenvCheck(t *testing.T, p *proc) {
	t.Helper()
	clusterCheck(t, testenv.RequireBinary(t, "redis-cli"), p)
}

// firstRange returns p's first slot range from its CLUSTER NODES line.
func firstRange(t *testing.T, p *proc) (int, int) {
	t.Helper()
	for _, l := range strings.Split(do(t, p, "CLUSTER", "NODES").(string), "\n") {
		f := strings.Fields(l)
		if len(f) > 8 && strings.Contains(f[2], "myself") {
			a, b, _ := strings.Cut(f[8], "-")
			lo, _ := strconv.Atoi(a)
			hi := lo
			if b != "" {
				hi, _ = strconv.Atoi(b)
			}
			return lo, hi
		}
	}
	t.Fatalf("%d serves no slot", p.port)
	return 0, 0
}

// TestAtomicMigrateBadInput sends CLUSTER MIGRATESLOTS and SYNCSLOTS
// that must be refused, with Valkey's errors or clear ones, and checks
// that nothing moved and nothing was lost.
func TestAtomicMigrateBadInput(t *testing.T) {
	testenv.SkipShort(t, "starts 6 node processes")
	ps := shardCluster(t, "--cluster-require-full-coverage", "no")
	src, rep := pickShard(t, ps)
	var other, otherRep *proc
	for _, p := range ps {
		if p != src && p != rep && infoField(t, p.addr(), "replication", "role") == "master" {
			other = p
			break
		}
	}
	for _, p := range ps {
		if p != rep && infoField(t, p.addr(), "replication", "role") == "slave" &&
			infoField(t, p.addr(), "replication", "master_port") == strconv.Itoa(other.port) {
			otherRep = p
		}
	}
	lo, hi := firstRange(t, src)
	olo, _ := firstRange(t, other)
	span := hi // a range across the end of src's first range
	if hi == 16383 {
		span = lo - 1
	}
	keys := keyNamesIn(2000, 0, lo, hi)
	loadKeys(t, ps, keys, 0)
	before := client(t, src).DBSize(context.Background()).Val()
	s, e := strconv.Itoa(lo), strconv.Itoa(lo+9)
	ms := func(p *proc, args ...string) string {
		t.Helper()
		a := []any{"CLUSTER", "MIGRATESLOTS"}
		for _, x := range args {
			a = append(a, x)
		}
		err := client(t, p).Do(context.Background(), a...).Err()
		if err == nil {
			return "OK"
		}
		return err.Error()
	}
	cases := []struct {
		p    *proc
		args []string
		want string
	}{
		{rep, []string{"SLOTSRANGE", s, e, "NODE", myID(t, other)}, "ERR Slot migration can only be used on primary nodes"},
		{src, []string{"SLOTSRANGE", s, e, "NODE", myID(t, otherRep)}, "ERR Target node is not a primary"},
		{src, []string{"SLOTSRANGE", s, e, "NODE", myID(t, src)}, "ERR Target node can not be this node"},
		{src, []string{"SLOTSRANGE", s, e, "NODE", strings.Repeat("ab", 20)}, "ERR Unknown node name"},
		{src, []string{"SLOTSRANGE", s, e, "NODE", "nope"}, "ERR Invalid node name"},
		{src, []string{"SLOTSRANGE", strconv.Itoa(olo), strconv.Itoa(olo + 5), "NODE", myID(t, other)}, "ERR Slots are not served by this node"},
		{src, []string{"SLOTSRANGE", strconv.Itoa(span), strconv.Itoa(span + 1), "NODE", myID(t, other)}, "ERR Requested slots span multiple shards"},
		{src, []string{"SLOTSRANGE", e, s, "NODE", myID(t, other)}, "ERR Start slot number " + e + " is greater than end slot number " + s + "."},
		{src, []string{"SLOTSRANGE", s, "16384", "NODE", myID(t, other)}, "ERR Invalid or out of range slot"},
		{src, []string{"SLOTSRANGE", s}, "ERR No end slot for final slot range"},
		{src, []string{"SLOTSRANGE", s, e}, "ERR syntax error"},
		{src, []string{"SLOTSRANGE"}, "ERR wrong number of arguments for 'cluster|migrateslots' command"},
		{src, []string{"SLOTSRANGE", s, e, "NODE", myID(t, other), "SLOTSRANGE", e, e, "NODE", myID(t, other)}, "ERR Slot ranges in migrations overlap"},
	}
	for _, c := range cases {
		if got := ms(c.p, c.args...); got != c.want {
			t.Errorf("MIGRATESLOTS %v on %d: %q, want %q", c.args, c.p.port, got, c.want)
		}
	}
	for _, bad := range [][]any{
		{"CLUSTER", "SYNCSLOTS", "ACK", "5"},
		{"CLUSTER", "SYNCSLOTS", "PAUSED", "x"},
		{"CLUSTER", "SYNCSLOTS", "ESTABLISH", "SOURCE", myID(t, src), "NAME", "n1", "EPOCH", "1"},
		{"CLUSTER", "SYNCSLOTS", "NOPE"},
	} {
		if err := client(t, other).Do(context.Background(), bad...).Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR ") {
			t.Errorf("%v: %v, want an ERR", bad, err)
		}
	}
	if err := client(t, src).Do(context.Background(), "CLUSTER", "CANCELSLOTMIGRATIONS").Err(); err == nil || err.Error() != "ERR No migrations ongoing" {
		t.Errorf("CANCELSLOTMIGRATIONS with none: %v", err)
	}
	if rows := slotMigrations(t, src); len(rows) != 0 {
		t.Fatalf("refused commands left migrations: %v", rows)
	}
	// A target that died: before the cluster marks it FAIL the migration
	// starts and fails on the connection; after, it is refused.
	otherID := myID(t, other)
	other.kill()
	if got := ms(src, "SLOTSRANGE", s, e, "NODE", otherID); got != "OK" && got != "ERR Target node is failed" {
		t.Fatalf("MIGRATESLOTS to a dead target: %q", got)
	} else if got == "OK" {
		rows := waitMigration(t, src, time.Minute)
		if rows[0]["state"] != "failed" {
			t.Fatalf("migration to a dead target: %v", rows)
		}
		t.Logf("migration to a dead target: %v", rows[0]["message"])
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(nodeFlags(src, otherID), "fail") || strings.Contains(nodeFlags(src, otherID), "fail?") {
		if time.Now().After(deadline) {
			t.Fatal("the dead target was never marked FAIL")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Its replica may have taken over by now; the dead node itself is a
	// failed replica or a failed master.
	if got := ms(src, "SLOTSRANGE", s, e, "NODE", otherID); got != "ERR Target node is failed" && got != "ERR Target node is not a primary" {
		t.Errorf("MIGRATESLOTS to a FAIL node: %q", got)
	}
	if after := client(t, src).DBSize(context.Background()).Val(); after != before {
		t.Errorf("the source held %d keys before the refused migrations and %d after", before, after)
	}
	if n := do(t, src, "CLUSTER", "COUNTKEYSINSLOT", s).(int64); n == 0 && keysInSlots(keys, lo, lo) > 0 {
		t.Errorf("slot %s lost its keys", s)
	}
}

// TestAtomicMigrateRestart restarts each side mid-migration from its
// record file (slot-migrations.bin): a restarted source fails the export
// and keeps its keys; a restarted target drops what it received; neither
// claims.
func TestAtomicMigrateRestart(t *testing.T) {
	testenv.SkipShort(t, "starts 3 node processes and restarts two")
	keys := keyNames(100000, 0, 999)
	// A long node timeout: the stopped side must not time the migration
	// out while the other saves and restarts.
	ps, cli := atomicClusterSized(t, 3, keys, 256, "--node-timeout", "10s")
	to := myID(t, ps[1])
	ctx := context.Background()
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range ps {
				t.Logf("%d:\n%s", p.port, migrateLines(t, p))
			}
		}
	})
	// Each node is saved just before its SIGKILL (these nodes have no
	// AOF): the source comes back with its keys, the target with the
	// part it received, which its restart must drop. The other side is
	// stopped meanwhile, so that the migration cannot finish first.
	restart := func(i, other int) {
		t.Helper()
		stopProc(t, ps[other])
		save := redis.NewClient(&redis.Options{Addr: ps[i].addr(), Protocol: 2, ReadTimeout: time.Minute})
		err := save.Save(ctx).Err()
		save.Close()
		if err != nil {
			t.Fatalf("SAVE on %d: %v", ps[i].port, err)
		}
		port, dir := ps[i].port, ps[i].dir
		ps[i].kill()
		ps[i] = startNode(t, port, dir, "--node-timeout", "10s")
		if err := ps[other].cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	waitRow := func(p *proc, op string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			for _, r := range slotMigrations(t, p) {
				if r["operation"] == op && (r["state"] == "failed" || r["state"] == "success") {
					return r
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no finished %s on %d: %v", op, p.port, slotMigrations(t, p))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The source restarts: its export is failed, the target times out.
	if r := do(t, ps[0], "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", "999", "NODE", to); r != "OK" {
		t.Fatalf("MIGRATESLOTS: %v", r)
	}
	waitStarted(t, ps[0])
	restart(0, 1)
	if r := waitRow(ps[0], "EXPORT"); r["state"] != "failed" || r["message"] != "Node restarted during the migration" {
		t.Fatalf("restarted source: %v", r)
	}
	if r := waitRow(ps[1], "IMPORT"); r["state"] != "failed" {
		t.Fatalf("target after the source restarted: %v", r)
	}
	waitAgree(t, ps, 20*time.Second)
	if n := do(t, ps[1], "CLUSTER", "COUNTKEYSINSLOT", "0").(int64); n != 0 {
		t.Errorf("the target kept %d keys of slot 0", n)
	}

	// The target restarts: its import is dropped with the keys.
	if r := do(t, ps[0], "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", "999", "NODE", to); r != "OK" {
		t.Fatalf("MIGRATESLOTS again: %v", r)
	}
	waitStarted(t, ps[0])
	restart(1, 0)
	if r := waitRow(ps[1], "IMPORT"); r["state"] != "failed" || r["message"] != "Node restarted during the migration" {
		t.Fatalf("restarted target: %v", r)
	}
	if n := do(t, ps[1], "CLUSTER", "COUNTKEYSINSLOT", "0").(int64); n != 0 {
		t.Errorf("the restarted target kept %d keys of slot 0", n)
	}
	waitMigration(t, ps[0], time.Minute)
	waitAgree(t, ps, 20*time.Second)
	fresh := clusterClient(ps)
	defer fresh.Close()
	for i := 0; i < len(keys); i += 11 {
		if v, err := fresh.Get(ctx, keys[i]).Result(); err != nil || !strings.HasPrefix(v, "v"+strconv.Itoa(i)+".") {
			t.Fatalf("%s after both restarts: %q %v", keys[i], v, err)
		}
	}
	if n := do(t, ps[0], "DBSIZE").(int64); n != int64(len(keys)) {
		t.Errorf("the source holds %d keys, want %d", n, len(keys))
	}
	clusterCheck(t, cli, ps[0])
}

// migrateLines returns the migration lines of p's log.
func migrateLines(t *testing.T, p *proc) string {
	var out []string
	for _, l := range strings.Split(logOf(t, p), "\n") {
		if strings.Contains(l, "migrate") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestAtomicMigrateTargetFailsOverAfterHandoff moves slots to a master
// with a replica and kills that master as soon as the move succeeded and
// its replica caught up: the replica, promoted, must hold every key the
// target received (they were propagated to it like any write), and every
// acknowledged write.
func TestAtomicMigrateTargetFailsOverAfterHandoff(t *testing.T) {
	testenv.SkipShort(t, "starts 6 node processes")
	ps := shardCluster(t)
	dst, dstRep := pickShard(t, ps)
	var src *proc
	for _, p := range ps {
		if p != dst && p != dstRep && infoField(t, p.addr(), "replication", "role") == "master" {
			src = p
			break
		}
	}
	lo, hi := firstRange(t, src)
	hi = min(hi, lo+999)
	keys := keyNamesIn(50000, 0, lo, hi)
	loadKeys(t, ps, keys, 64)
	cc := clusterClient(ps)
	defer cc.Close()
	load := startMixed(cc, 2, keys)
	time.Sleep(200 * time.Millisecond)
	if r := do(t, src, "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi), "NODE", myID(t, dst)); r != "OK" {
		t.Fatalf("MIGRATESLOTS: %v", r)
	}
	if rows := waitMigration(t, src, time.Minute); rows[len(rows)-1]["state"] != "success" {
		t.Fatalf("migration: %v", rows)
	}
	load.finish()
	// The replica has everything the target applied once its offset
	// reaches the target's (asynchronous replication, as for any write).
	deadline := time.Now().Add(30 * time.Second)
	for {
		mo := infoField(t, dst.addr(), "replication", "master_repl_offset")
		ro := infoField(t, dstRep.addr(), "replication", "slave_repl_offset")
		if mo == ro && mo != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target's replica did not catch up: %s vs %s", ro, mo)
		}
		time.Sleep(10 * time.Millisecond)
	}
	port, dir := dst.port, dst.dir
	dst.kill()
	waitMasterEverywhere(t, without(ps, dst), myID(t, dstRep), 30*time.Second)
	back := startNode(t, port, dir)
	ps = append(without(ps, dst), back)
	waitAgree(t, ps, 60*time.Second)
	fresh := clusterClient(ps)
	defer fresh.Close()
	load.acked.verify(t, fresh)
	ctx := context.Background()
	missing := 0
	for i, k := range keys {
		if _, ok := load.acked.lastValue(k); ok {
			continue
		}
		if v, err := fresh.Get(ctx, k).Result(); err != nil || !strings.HasPrefix(v, "v"+strconv.Itoa(i)+".") {
			if missing++; missing <= 3 {
				t.Errorf("%s after the target's failover: %q %v", k, v, err)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d moved keys missing after the target's replica took over", missing, len(keys))
	}
	testenvCheck(t, ps[0])
}

// exportStates ranks an export's states in the order they come.
var exportStates = map[string]int{"connecting": 1, "snapshotting": 2, "waiting-to-pause": 3, "pausing": 4,
	"failover-paused": 5, "failover-granted": 6, "success": 7}

// waitState polls p's newest migration until it reaches want or a later
// state, and returns the state it saw.
func waitState(t *testing.T, p *proc, want string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st := migrationState(p)
		if exportStates[st] >= exportStates[want] {
			return st
		}
		if st == "failed" || st == "cancelled" {
			t.Fatalf("the migration ended %s: %v", st, slotMigrations(t, p))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the migration never reached %s", want)
		}
	}
}

// TestAtomicMigrateSourceKilledAnyTime kills the source with SIGKILL at
// several points of a migration (snapshot, stream, pause, handoff, after:
// as soon as GETSLOTMIGRATIONS shows the state, so a fast move may be
// further on), each in a fresh cluster with replicas, and checks the same
// as TestAtomicMigrateSourceKilled: every key readable from its one
// owner, every WAIT-acknowledged write there, and a clean redis-cli check.
func TestAtomicMigrateSourceKilledAnyTime(t *testing.T) {
	testenv.SkipShort(t, "starts 6 node processes per point")
	for _, at := range []string{"snapshotting", "waiting-to-pause", "failover-paused", "failover-granted", "success"} {
		t.Run(at, func(t *testing.T) {
			ps := shardCluster(t)
			all := append([]*proc(nil), ps...)
			t.Cleanup(func() {
				if !t.Failed() {
					return
				}
				for _, p := range all {
					var lines []string
					for _, l := range strings.Split(logOf(t, p), "\n") {
						if strings.Contains(l, "migrate") || strings.Contains(l, "failover") || strings.Contains(l, "replication") {
							lines = append(lines, l)
						}
					}
					nodes, _ := rawClusterNodes(p)
					t.Logf("%d:\n%s\n%s", p.port, strings.Join(lines, "\n"), nodes)
				}
			})
			src, rep := pickShard(t, ps)
			var dst *proc
			for _, p := range ps {
				if p != src && p != rep && infoField(t, p.addr(), "replication", "role") == "master" {
					dst = p
					break
				}
			}
			lo, hi := firstRange(t, src)
			hi = min(hi, lo+999)
			keys := keyNamesIn(30000, 0, lo, hi)
			loadKeys(t, ps, keys, 128)
			cc := clusterClient(ps)
			defer cc.Close()
			w := startWrites(t, cc, 3, true)
			time.Sleep(200 * time.Millisecond)
			if r := do(t, src, "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi), "NODE", myID(t, dst)); r != "OK" {
				t.Fatalf("MIGRATESLOTS: %v", r)
			}
			st := waitState(t, src, at)
			port, dir := src.port, src.dir
			src.kill()
			t.Logf("source killed on seeing %q (wanted %s)", st, at)
			waitMasterEverywhere(t, without(ps, src), myID(t, rep), 30*time.Second)
			time.Sleep(300 * time.Millisecond)
			w.finish()
			back := startNode(t, port, dir)
			ps = append(without(ps, src), back)
			waitAgree(t, ps, 60*time.Second)
			fresh := clusterClient(ps)
			defer fresh.Close()
			w.acked.verify(t, fresh)
			ctx := context.Background()
			for i := 0; i < len(keys); i += 7 {
				if v, err := fresh.Get(ctx, keys[i]).Result(); err != nil || !strings.HasPrefix(v, "v"+strconv.Itoa(i)+".") {
					m, _ := fresh.MasterForKey(ctx, keys[i])
					t.Fatalf("%s (slot %d, served by %v): %q %v", keys[i], ring.KeySlot([]byte(keys[i])), m, v, err)
				}
			}
			for _, p := range []*proc{dst, rep} {
				for _, r := range slotMigrations(t, p) {
					t.Logf("%d: %v %v %v", p.port, r["operation"], r["state"], r["message"])
				}
			}
			testenvCheck(t, ps[0])
		})
	}
}

// TestAtomicMigrateTargetKilledAnyTime kills the target with SIGKILL at
// each state of the export, in a fresh cluster where the target has a
// replica, and restarts it once the replica took over. Either the source
// keeps the slots (the target had not claimed, or confirms it did not)
// or the target's replica has them with what the target received; every
// WAIT-acknowledged write must survive and the cluster must end with one
// owner per slot.
func TestAtomicMigrateTargetKilledAnyTime(t *testing.T) {
	testenv.SkipShort(t, "starts 6 node processes per point")
	for _, at := range []string{"snapshotting", "waiting-to-pause", "failover-paused", "failover-granted", "success"} {
		t.Run(at, func(t *testing.T) {
			ps := shardCluster(t)
			dst, dstRep := pickShard(t, ps)
			var src *proc
			for _, p := range ps {
				if p != dst && p != dstRep && infoField(t, p.addr(), "replication", "role") == "master" {
					src = p
					break
				}
			}
			lo, hi := firstRange(t, src)
			hi = min(hi, lo+999)
			keys := keyNamesIn(30000, 0, lo, hi)
			loadKeys(t, ps, keys, 128)
			cc := clusterClient(ps)
			defer cc.Close()
			w := startWrites(t, cc, 3, true)
			time.Sleep(200 * time.Millisecond)
			if r := do(t, src, "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi), "NODE", myID(t, dst)); r != "OK" {
				t.Fatalf("MIGRATESLOTS: %v", r)
			}
			st := waitState(t, src, at)
			port, dir := dst.port, dst.dir
			dst.kill()
			t.Logf("target killed on seeing %q (wanted %s)", st, at)
			// Its replica takes its shard over (the target keeps nothing
			// across a SIGKILL without persistence), then it comes back
			// as a replica and answers the source's ABORT if the source
			// had granted.
			waitMasterEverywhere(t, without(ps, dst), myID(t, dstRep), 30*time.Second)
			back := startNode(t, port, dir)
			ps = append(without(ps, dst), back)
			rows := waitMigration(t, src, time.Minute)
			t.Logf("source: %v %v", rows[len(rows)-1]["state"], rows[len(rows)-1]["message"])
			time.Sleep(300 * time.Millisecond)
			w.finish()
			waitAgree(t, ps, 60*time.Second)
			fresh := clusterClient(ps)
			defer fresh.Close()
			w.acked.verify(t, fresh)
			ctx := context.Background()
			missing := 0
			for i := 0; i < len(keys); i += 7 {
				if v, err := fresh.Get(ctx, keys[i]).Result(); err != nil || !strings.HasPrefix(v, "v"+strconv.Itoa(i)+".") {
					missing++
				}
			}
			if missing > 0 {
				t.Errorf("%d of %d sampled moved keys missing", missing, (len(keys)+6)/7)
			}
			testenvCheck(t, ps[0])
		})
	}
}

// TestAtomicMigrateGroupsAndCancel moves two groups to two targets with
// one MIGRATESLOTS, then cancels a move whose target is stopped: the
// cancel must leave the slots and keys with the source, and the target,
// once it runs again, must drop the import the late ESTABLISH started.
func TestAtomicMigrateGroupsAndCancel(t *testing.T) {
	testenv.SkipShort(t, "starts 3 node processes")
	keys := keyNames(60000, 0, 1999)
	ps, cli := atomicClusterSized(t, 3, keys, 256)
	a, b := myID(t, ps[1]), myID(t, ps[2])
	if r := do(t, ps[0], "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "0", "99", "200", "299", "NODE", a,
		"SLOTSRANGE", "100", "199", "NODE", b); r != "OK" {
		t.Fatalf("MIGRATESLOTS: %v", r)
	}
	rows := waitMigration(t, ps[0], time.Minute)
	if len(rows) != 2 {
		t.Fatalf("two groups, rows: %v", rows)
	}
	for _, r := range rows {
		if r["state"] != "success" {
			t.Fatalf("group: %v", r)
		}
	}
	waitAgree(t, ps, 20*time.Second)
	owner := func(slot string) string {
		t.Helper()
		v := do(t, ps[0], "CLUSTER", "COUNTKEYSINSLOT", slot).(int64)
		for _, p := range ps[1:] {
			if n := do(t, p, "CLUSTER", "COUNTKEYSINSLOT", slot).(int64); n > 0 {
				if v > 0 {
					t.Fatalf("slot %s has keys on two masters", slot)
				}
				return myID(t, p)
			}
		}
		return myID(t, ps[0])
	}
	for slot, want := range map[string]string{"0": a, "99": a, "250": a, "100": b, "199": b, "300": myID(t, ps[0])} {
		if got := owner(slot); got != want {
			t.Errorf("slot %s's keys on %s, want %s", slot, got, want)
		}
	}

	// Cancel a move whose target is stopped: the source's ESTABLISH waits
	// in the target's socket, and reaches it only after the cancel closed
	// the connection, so the import it starts must go at once.
	stopProc(t, ps[1])
	if r := do(t, ps[0], "CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", "1000", "1999", "NODE", a); r != "OK" {
		t.Fatalf("MIGRATESLOTS: %v", r)
	}
	time.Sleep(100 * time.Millisecond)
	if r := do(t, ps[0], "CLUSTER", "CANCELSLOTMIGRATIONS"); r != "OK" {
		t.Fatalf("CANCELSLOTMIGRATIONS: %v", r)
	}
	if st := migrationState(ps[0]); st != "cancelled" {
		t.Errorf("after the cancel: %s", st)
	}
	if err := ps[1].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var imp map[string]any
		for _, r := range slotMigrations(t, ps[1]) {
			if r["slot_ranges"] == "1000-1999" {
				imp = r
			}
		}
		if imp != nil && imp["state"] == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target did not drop the cancelled import: %v", imp)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := do(t, ps[1], "CLUSTER", "COUNTKEYSINSLOT", "1500").(int64); n != 0 {
		t.Errorf("the target kept %d keys of a cancelled import", n)
	}
	waitAgree(t, ps, 20*time.Second)
	fresh := clusterClient(ps)
	defer fresh.Close()
	ctx := context.Background()
	for i := 0; i < len(keys); i += 5 {
		if v, err := fresh.Get(ctx, keys[i]).Result(); err != nil || !strings.HasPrefix(v, "v"+strconv.Itoa(i)+".") {
			t.Fatalf("%s: %q %v", keys[i], v, err)
		}
	}
	clusterCheck(t, cli, ps[0])
}

// TestAtomicMigrateBadRecordFile starts a node whose migration record
// file is corrupt: it must refuse to start and say which file is wrong,
// rather than act on records it half read.
func TestAtomicMigrateBadRecordFile(t *testing.T) {
	testenv.SkipShort(t, "starts a node process")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "slot-migrations.bin"), []byte("HSMIG\x01garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	p := spawnNode(t, port, dir, []string{binary, "node", "--port", strconv.Itoa(port), "--dir", dir, "--heartbeat", "off"})
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		procsMu.Lock()
		delete(procs, p)
		procsMu.Unlock()
		if err == nil {
			t.Fatal("the node exited with status 0")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the node started with a corrupt migration record file")
	}
	log := logOf(t, p)
	t.Logf("the node said: %s", strings.TrimSpace(log))
	if !strings.Contains(log, "slot-migrations.bin") || !strings.Contains(log, "checksum") {
		t.Fatalf("the error does not name the file and the fault:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(dir, "nodes.json")); err == nil {
		t.Error("the node created an identity before refusing its records")
	}
}
