package node_test

import (
	"context"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/ring"
)

// startNodes starts n fresh nodes, each in its own directory.
func startNodes(t *testing.T, n int) []*proc {
	ps := make([]*proc, n)
	for i := range ps {
		ps[i] = startNode(t, freePort(t), t.TempDir())
	}
	return ps
}

// createCluster builds 3 masters and 3 replicas by hand, the way
// redis-cli --cluster create does (docs/compatibility.md, "What the real tools
// send"): ADDSLOTSRANGE and SET-CONFIG-EPOCH on each master, MEET, then
// REPLICATE once every node knows every other.
func createCluster(t *testing.T, ps []*proc) {
	t.Helper()
	ctx := context.Background()
	per := ring.Slots / 3
	for i := range 3 {
		start, end := i*per, (i+1)*per-1
		if i == 2 {
			end = ring.Slots - 1
		}
		do(t, ps[i], "CLUSTER", "ADDSLOTSRANGE", start, end)
		do(t, ps[i], "CLUSTER", "SET-CONFIG-EPOCH", i+1)
	}
	for _, p := range ps[1:] {
		do(t, ps[0], "CLUSTER", "MEET", "127.0.0.1", p.port)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, p := range ps {
		for {
			info, _ := client(t, p).ClusterInfo(ctx).Result()
			if strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(ps))+"\r\n") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d never learned every node:\n%s", p.port, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i := 3; i < len(ps); i++ {
		master := do(t, ps[i-3], "CLUSTER", "MYID").(string)
		do(t, ps[i], "CLUSTER", "REPLICATE", master)
	}
}

// TestCluster runs the acceptance checks of issue 3 against one 6-node
// cluster built with CLUSTER commands.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 6 node processes; skipped in -short")
	}
	ps := startNodes(t, 6)
	createCluster(t, ps)
	sig := waitAgree(t, ps, 20*time.Second)
	if strings.Count(sig, "slave") != 3 {
		t.Fatalf("expected 3 replicas in the agreed view:\n%s", sig)
	}
	ctx := context.Background()

	t.Run("ClusterClient10000Keys", func(t *testing.T) {
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{ps[0].addr(), ps[1].addr()}})
		defer cc.Close()
		const n = 10000
		for base := 0; base < n; base += 1000 {
			_, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := base; i < base+1000; i++ {
					p.Set(ctx, "key:"+strconv.Itoa(i), "value-"+strconv.Itoa(i), 0)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("pipelined SET: %v", err)
			}
		}
		for i := 0; i < n; i++ {
			k := "key:" + strconv.Itoa(i)
			v, err := cc.Get(ctx, k).Result()
			if err != nil || v != "value-"+strconv.Itoa(i) {
				t.Fatalf("GET %s = %q, %v", k, v, err)
			}
		}
		total := int64(0)
		for _, p := range ps[:3] {
			total += client(t, p).DBSize(ctx).Val()
		}
		if total != n {
			t.Fatalf("masters hold %d keys, want %d", total, n)
		}
	})

	t.Run("MovedExact", func(t *testing.T) {
		// slot("foo") = 12182, served by the third master.
		for _, p := range ps[:2] {
			got, err := rawCommand(p.addr(), "GET", "foo")
			want := "-MOVED 12182 " + ps[2].addr()
			if err != nil || got != want {
				t.Fatalf("GET foo on %d: %q, %v; want %q", p.port, got, err, want)
			}
		}
		if got, _ := rawCommand(ps[2].addr(), "SET", "foo", "bar"); got != "+OK" {
			t.Fatalf("SET foo on its owner: %q", got)
		}
		// A replica redirects to its master unless READONLY is set for a read.
		if got, _ := rawCommand(ps[5].addr(), "GET", "foo"); got != "-MOVED 12182 "+ps[2].addr() {
			t.Fatalf("GET foo on replica: %q", got)
		}
		if got, _ := rawCommand(ps[0].addr(), "MGET", "foo", "bar"); got != "-CROSSSLOT Keys in request don't hash to the same slot" {
			t.Fatalf("MGET across slots: %q", got)
		}
	})

	t.Run("ClusterErrors", func(t *testing.T) {
		cases := []struct {
			args []string
			want string
		}{
			{[]string{"CLUSTER", "NOPE"}, "-ERR unknown subcommand 'NOPE'. Try CLUSTER HELP."},
			{[]string{"CLUSTER", "MYID", "x"}, "-ERR wrong number of arguments for 'cluster|myid' command"},
			{[]string{"CLUSTER", "COUNTKEYSINSLOT", "99999"}, "-ERR Invalid slot"},
			{[]string{"CLUSTER", "KEYSLOT", "foo"}, ":12182"},
			{[]string{"CLUSTER", "FORGET", strings.Repeat("a", 40)}, "-ERR Unknown node " + strings.Repeat("a", 40)},
			{[]string{"CLUSTER", "SETSLOT", "12182", "NODE", strings.Repeat("b", 40)}, "-ERR I don't know about node " + strings.Repeat("b", 40)},
		}
		// Node IDs are case-sensitive, as in Redis: a known ID in
		// capitals names no node.
		up := strings.ToUpper(do(t, ps[1], "CLUSTER", "MYID").(string))
		for _, sub := range [][]string{{"FORGET"}, {"REPLICATE"}, {"COUNT-FAILURE-REPORTS"}, {"REPLICAS"}, {"SLAVES"}} {
			cases = append(cases, struct {
				args []string
				want string
			}{append([]string{"CLUSTER"}, append(sub, up)...), "-ERR Unknown node " + up})
		}
		cases = append(cases, struct {
			args []string
			want string
		}{[]string{"CLUSTER", "SETSLOT", "12182", "NODE", up}, "-ERR I don't know about node " + up})
		for _, c := range cases {
			p := ps[0]
			if got, err := rawCommand(p.addr(), c.args...); got != c.want {
				t.Errorf("%v: %q, %v; want %q", c.args, got, err, c.want)
			}
		}
		// BUMPEPOCH takes a new epoch unless this node's configEpoch is
		// already the greatest epoch it knows, so a second one keeps it.
		// ps[0] holds configEpoch 1, below the others.
		first, _ := rawCommand(ps[0].addr(), "CLUSTER", "BUMPEPOCH")
		second, _ := rawCommand(ps[0].addr(), "CLUSTER", "BUMPEPOCH")
		if !strings.HasPrefix(first, "+BUMPED ") || second != "+STILL "+strings.TrimPrefix(first, "+BUMPED ") {
			t.Errorf("BUMPEPOCH twice: %q then %q", first, second)
		}
		// Giving away a slot that still has keys is refused.
		id1 := do(t, ps[1], "CLUSTER", "MYID").(string)
		want := "-ERR Can't assign hashslot 12182 to a different node while I still hold keys for this hash slot."
		if got, _ := rawCommand(ps[2].addr(), "CLUSTER", "SETSLOT", "12182", "NODE", id1); got != want {
			t.Errorf("SETSLOT NODE with keys: %q", got)
		}
		if got, _ := rawCommand(ps[2].addr(), "CLUSTER", "RESET"); got != "-ERR CLUSTER RESET can't be called with master nodes containing keys" {
			t.Errorf("RESET on a master with keys: %q", got)
		}
	})

	t.Run("MigrationRedirects", func(t *testing.T) {
		// docs/compatibility.md, "Routing during a migration". Slot 12182 ("foo",
		// which exists) moves from ps[2] to ps[0]; "{foo}x" is in the same
		// slot and missing.
		src, dst := ps[2], ps[0]
		srcID := do(t, src, "CLUSTER", "MYID").(string)
		dstID := do(t, dst, "CLUSTER", "MYID").(string)
		do(t, dst, "CLUSTER", "SETSLOT", 12182, "IMPORTING", srcID)
		do(t, src, "CLUSTER", "SETSLOT", 12182, "MIGRATING", dstID)
		defer func() {
			do(t, src, "CLUSTER", "SETSLOT", 12182, "STABLE")
			do(t, dst, "CLUSTER", "SETSLOT", 12182, "STABLE")
		}()
		checks := []struct {
			p    *proc
			cmds [][]string
			want []string
		}{
			{src, [][]string{{"GET", "foo"}}, []string{"$3 bar"}},
			{src, [][]string{{"GET", "{foo}x"}}, []string{"-ASK 12182 " + dst.addr()}},
			{src, [][]string{{"MGET", "foo", "{foo}x"}}, []string{"-TRYAGAIN Multiple keys request during rehashing of slot"}},
			{dst, [][]string{{"GET", "{foo}x"}}, []string{"-MOVED 12182 " + src.addr()}},
			{dst, [][]string{{"ASKING"}, {"GET", "{foo}x"}, {"GET", "{foo}x"}}, []string{"+OK", "$-1", "-MOVED 12182 " + src.addr()}},
		}
		for _, c := range checks {
			got, err := rawPipeline(c.p.addr(), c.cmds...)
			if err != nil || strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("%v on %d: %q, %v; want %q", c.cmds, c.p.port, got, err, c.want)
			}
		}
		if l := myselfLine(t, src); !strings.Contains(l, "[12182->-"+dstID+"]") {
			t.Errorf("source myself line lacks the migrating slot: %s", l)
		}
		if l := myselfLine(t, dst); !strings.Contains(l, "[12182-<-"+srcID+"]") {
			t.Errorf("target myself line lacks the importing slot: %s", l)
		}
	})

	t.Run("GarbageOnBus", func(t *testing.T) {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(ps[0].port+10000))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("this is not a hearsay frame, just garbage bytes\r\n"))
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Read(make([]byte, 16)); err != io.EOF {
			t.Fatalf("bus link not closed after garbage: %v", err)
		}
		if got, _ := rawCommand(ps[0].addr(), "PING"); got != "+PONG" {
			t.Fatalf("node stopped serving after bus garbage: %q", got)
		}
		waitAgree(t, ps, 10*time.Second)
	})

	t.Run("MalformedRESP", func(t *testing.T) {
		c, err := net.Dial("tcp", ps[1].addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("*1\r\n$abc\r\n"))
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(c)
		if !strings.HasPrefix(string(b), "-ERR Protocol error") || err != nil {
			t.Fatalf("malformed RESP: %q, %v (want -ERR Protocol error then close)", b, err)
		}
		if got, _ := rawCommand(ps[1].addr(), "PING"); got != "+PONG" {
			t.Fatalf("node stopped serving: %q", got)
		}
	})

	t.Run("RestartKeepsIdentity", func(t *testing.T) {
		p := ps[1]
		id := do(t, p, "CLUSTER", "MYID").(string)
		before := myselfLine(t, p)
		p.stop(t)
		ps[1] = startNode(t, p.port, p.dir)
		if got := do(t, ps[1], "CLUSTER", "MYID").(string); got != id {
			t.Fatalf("ID after restart %s, want %s", got, id)
		}
		after := myselfLine(t, ps[1])
		if slotsOf(before) != slotsOf(after) || epochOf(before) != epochOf(after) {
			t.Fatalf("myself line changed across restart:\n%s\n%s", before, after)
		}
		if got := waitAgree(t, ps, 20*time.Second); got != sig {
			t.Fatalf("cluster view changed across restart:\n%s\nwant\n%s", got, sig)
		}
	})
}

func myselfLine(t *testing.T, p *proc) string {
	nodes := do(t, p, "CLUSTER", "NODES").(string)
	for _, l := range strings.Split(nodes, "\n") {
		if strings.Contains(l, "myself") {
			return l
		}
	}
	t.Fatalf("no myself line in\n%s", nodes)
	return ""
}

func slotsOf(line string) string { return strings.Join(strings.Fields(line)[8:], " ") }
func epochOf(line string) string { return strings.Fields(line)[6] }

// TestRedisCliCreate drives hearsay with redis-cli's own cluster manager.
func TestRedisCliCreate(t *testing.T) {
	cli := testenv.RequireBinary(t, "redis-cli")
	if testing.Short() {
		t.Skip("starts 6 node processes; skipped in -short")
	}
	ps := startNodes(t, 6)
	args := []string{"--cluster", "create"}
	for _, p := range ps {
		args = append(args, p.addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "[OK] All 16384 slots covered.") {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitAgree(t, ps, 20*time.Second)
	out, err = exec.CommandContext(ctx, cli, "--cluster", "check", ps[0].addr()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "[OK] All 16384 slots covered.") ||
		!strings.Contains(string(out), "[OK] All nodes agree about slots configuration.") {
		t.Fatalf("redis-cli --cluster check: %v\n%s", err, out)
	}
	t.Logf("redis-cli --cluster check:\n%s", out)
}
