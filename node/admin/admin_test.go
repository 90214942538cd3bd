package admin

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/ring"
)

func TestMakePlan(t *testing.T) {
	p, err := MakePlan([]string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003", "127.0.0.1:7004", "127.0.0.1:7005"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantM := []PlanMaster{
		{"127.0.0.1:7000", ring.Range{Start: 0, End: 5460}},
		{"127.0.0.1:7001", ring.Range{Start: 5461, End: 10922}},
		{"127.0.0.1:7002", ring.Range{Start: 10923, End: 16383}},
	}
	wantR := map[string]string{"127.0.0.1:7003": "127.0.0.1:7000", "127.0.0.1:7004": "127.0.0.1:7001", "127.0.0.1:7005": "127.0.0.1:7002"}
	if !reflect.DeepEqual(p.Masters, wantM) || !reflect.DeepEqual(p.Replicas, wantR) {
		t.Errorf("MakePlan = %+v %v\nwant %+v %v", p.Masters, p.Replicas, wantM, wantR)
	}

	// Three hosts with two nodes each: one master per host, and no replica
	// on its master's host.
	p, err = MakePlan([]string{"a:1", "a:2", "b:1", "b:2", "c:1", "c:2"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, m := range p.Masters {
		hosts = append(hosts, m.Addr[:1])
	}
	if strings.Join(hosts, "") != "abc" {
		t.Errorf("masters on hosts %v, want one on each of a, b, c", hosts)
	}
	for r, m := range p.Replicas {
		if r[:1] == m[:1] {
			t.Errorf("replica %s on the same host as its master %s (plan %v)", r, m, p.Replicas)
		}
	}

	// Seven nodes, one replica each: the extra node becomes a second replica.
	p, err = MakePlan([]string{"h:1", "h:2", "h:3", "h:4", "h:5", "h:6", "h:7"}, 1)
	if err != nil || len(p.Masters) != 3 || len(p.Replicas) != 4 || len(p.ReplicaAddrs("h:1")) != 2 {
		t.Errorf("seven nodes: %+v, %v", p, err)
	}
}

func TestMakePlanErrors(t *testing.T) {
	for _, tc := range []struct {
		addrs    []string
		replicas int
		want     string
	}{
		{[]string{"h:1", "h:2", "h:3", "h:4", "h:5"}, 1, "give 2 masters; a cluster needs at least 3 (so at least 6 nodes)"},
		{[]string{"h:1", "h:2", "h:1"}, 0, "h:1 is listed twice"},
		{[]string{"h:1", "h:2", "h3"}, 0, `bad address "h3"`},
		{[]string{"h:1", "h:2", "h:0"}, 0, "port must be 1-65535"},
		{[]string{"h:1", "h:2", "h:3"}, -1, "--replicas must be 0 or more"},
	} {
		_, err := MakePlan(tc.addrs, tc.replicas)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("MakePlan(%v, %d) error %v, want %q", tc.addrs, tc.replicas, err, tc.want)
		}
	}
}

func TestDialError(t *testing.T) {
	port := freePort(t)
	var tool Tool
	_, err := tool.Nodes(context.Background(), fmt.Sprintf("127.0.0.1:%d", port))
	if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("127.0.0.1:%d: cannot connect", port)) {
		t.Errorf("Nodes on a closed port: %v, want an error naming the node", err)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// backend starts one cluster node on the given ports and returns its process.
type backend func(t *testing.T, dir string, port, busPort int) *exec.Cmd

func redisBackend(t *testing.T) backend {
	testenv.RequireBinary(t, "redis-server")
	return func(t *testing.T, dir string, port, busPort int) *exec.Cmd {
		return exec.Command("redis-server", "--port", fmt.Sprint(port), "--cluster-port", fmt.Sprint(busPort),
			"--cluster-enabled", "yes", "--cluster-node-timeout", "1000", "--bind", "127.0.0.1",
			"--dir", dir, "--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "log"))
	}
}

var (
	hearsayOnce sync.Once
	hearsayBin  string
	hearsayErr  string
)

func hearsayBackend(t *testing.T) backend {
	hearsayOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hearsay-admin-test")
		if err != nil {
			hearsayErr = err.Error()
			return
		}
		bin := filepath.Join(dir, "hearsay")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/hearsay/hearsay/cmd/hearsay").CombinedOutput(); err != nil {
			hearsayErr = "cannot build cmd/hearsay: " + string(out)
			return
		}
		if out, _ := exec.Command(bin, "node", "--help").CombinedOutput(); !strings.Contains(string(out), "--port") && !strings.Contains(string(out), "-port") {
			hearsayErr = "this hearsay binary has no `node` command yet"
			return
		}
		hearsayBin = bin
	})
	if hearsayBin == "" {
		testenv.Skipf(t, "skipping the hearsay process test: %s", hearsayErr)
	}
	return func(t *testing.T, dir string, port, busPort int) *exec.Cmd {
		return exec.Command(hearsayBin, "node", "--port", fmt.Sprint(port), "--bus-port", fmt.Sprint(busPort),
			"--bind", "127.0.0.1", "--dir", dir, "--node-timeout", "1s", "--log-level", "warn")
	}
}

// startNodes starts n nodes and returns their addresses once each answers.
// A node that exits before it answers is started again on fresh ports: a
// port found free can be taken by another test's connection before the
// node binds it, since parallel test packages share the ephemeral range.
func startNodes(t *testing.T, be backend, n int) []string {
	t.Helper()
	var addrs []string
	for i := 0; i < n; i++ {
		var last string
		started := false
		for try := 0; try < 5 && !started; try++ {
			addr, ok, why := startNode(t, be)
			if ok {
				addrs = append(addrs, addr)
				started = true
			}
			last = why
		}
		if !started {
			t.Fatalf("node %d did not start after 5 tries: %s", i, last)
		}
	}
	return addrs
}

// startNode starts one node and waits until it answers or exits.
func startNode(t *testing.T, be backend) (addr string, ok bool, why string) {
	t.Helper()
	dir := t.TempDir()
	port, bus := freePort(t), freePort(t)
	cmd := be(t, dir, port, bus)
	logPath := filepath.Join(dir, "stdout")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	output := func() string {
		out, _ := os.ReadFile(logPath)
		more, _ := os.ReadFile(filepath.Join(dir, "log")) // redis-server's --logfile
		return string(out) + string(more)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		log.Close()
		if t.Failed() {
			t.Logf("node :%d output:\n%s", port, output())
		}
	})
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	var tool Tool
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return addr, false, fmt.Sprintf("node %s exited: %s", addr, output())
		default:
		}
		c, err := tool.dial(context.Background(), addr)
		if err == nil {
			c.close()
			return addr, true, ""
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return addr, false, fmt.Sprintf("node %s did not answer: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRedisCluster(t *testing.T)   { testLifecycle(t, redisBackend(t)) }
func TestHearsayCluster(t *testing.T) { testLifecycle(t, hearsayBackend(t)) }

// testLifecycle creates a 3+3 cluster, checks it, adds a replica, removes it
// and checks again.
func testLifecycle(t *testing.T, be backend) {
	if testing.Short() {
		t.Skip("process test; skipped with -short")
	}
	addrs := startNodes(t, be, 8)
	ctx := context.Background()
	tool := Tool{Wait: 30 * time.Second, Progress: func(s string) { t.Log(s) }}

	// Create refuses nodes that are too few.
	if _, err := tool.Create(ctx, addrs[:5], 1); err == nil {
		t.Fatal("Create with 5 nodes and 1 replica succeeded")
	}
	plan, err := tool.Create(ctx, addrs[:6], 1)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if len(plan.Masters) != 3 || len(plan.Replicas) != 3 {
		t.Fatalf("plan %+v", plan)
	}
	// A node of the cluster is not empty any more.
	if _, err := tool.Create(ctx, []string{addrs[6], addrs[7], addrs[0]}, 0); err == nil || !strings.Contains(err.Error(), addrs[0]+": node is not empty") {
		t.Errorf("Create over a used node: %v", err)
	}

	rep, err := tool.Check(ctx, addrs[2])
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Covered != ring.Slots || len(rep.Cluster.Nodes) != 6 {
		t.Fatalf("Check: ok=%v covered=%d nodes=%d errors=%q warnings=%q", rep.OK(), rep.Covered, len(rep.Cluster.Nodes), rep.Errors, rep.Warnings)
	}
	shards := rep.Cluster.Shards()
	if len(shards) != 3 {
		t.Fatalf("%d shards, want 3", len(shards))
	}
	for i, sh := range shards {
		if sh.Master.Addr() != plan.Masters[i].Addr || len(sh.Replicas) != 1 || sh.Replicas[0].Addr() != plan.ReplicaAddrs(plan.Masters[i].Addr)[0] {
			t.Errorf("shard %d: master %s replicas %d, plan %+v", i, sh.Master.Addr(), len(sh.Replicas), plan)
		}
		if sh.Master.Keys != 0 {
			t.Errorf("shard %d: %d keys, want 0", i, sh.Master.Keys)
		}
	}

	// add-node as a replica of the first master, by address.
	id, err := tool.AddNode(ctx, addrs[6], addrs[0], plan.Masters[0].Addr)
	if err != nil {
		t.Fatalf("AddNode: %v", err)
	}
	// add-node as an empty master.
	if _, err := tool.AddNode(ctx, addrs[7], addrs[1], ""); err != nil {
		t.Fatalf("AddNode as master: %v", err)
	}
	// Poll the view of addrs[0], which DelNode reads below: gossip may not
	// have brought the new master to every node yet (real Redis is slow).
	if err := tool.poll(ctx, "8 nodes in check", func() error {
		rep, err = tool.Check(ctx, addrs[0])
		if err != nil {
			return err
		}
		if !rep.OK() || len(rep.Cluster.Nodes) != 8 {
			return fmt.Errorf("%d nodes, errors %q warnings %q", len(rep.Cluster.Nodes), rep.Errors, rep.Warnings)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// del-node refuses a master with slots, then removes the replica.
	if err := tool.DelNode(ctx, addrs[0], plan.Masters[1].Addr); err == nil || !strings.Contains(err.Error(), "still serves 5462 slots") {
		t.Errorf("DelNode of a master with slots: %v", err)
	}
	if err := tool.DelNode(ctx, addrs[0], id.String()); err != nil {
		t.Fatalf("DelNode: %v", err)
	}
	rep, err = tool.Check(ctx, addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Cluster.Nodes) != 7 {
		t.Errorf("after DelNode: %d nodes, errors %q", len(rep.Cluster.Nodes), rep.Errors)
	}
	if lines, err := tool.Nodes(ctx, addrs[6]); err != nil || len(lines) != 1 {
		t.Errorf("the removed node after RESET SOFT knows %d nodes (%v), want only itself", len(lines), err)
	}
}
