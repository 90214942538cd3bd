package node_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/ring"
)

// keyInRange returns a key whose slot lies in [lo, hi].
func keyInRange(t *testing.T, lo, hi int) string {
	t.Helper()
	for i := 0; i < 1_000_000; i++ {
		k := "k" + strconv.Itoa(i)
		if s := int(ring.KeySlotString(k)); s >= lo && s <= hi {
			return k
		}
	}
	t.Fatalf("no key in slots %d-%d", lo, hi)
	return ""
}

// TestClusterDownSettings checks Redis's two settings for a cluster that
// lost coverage (a master without replicas is killed) but keeps a majority:
// by default every node refuses keys; cluster-require-full-coverage no keeps
// serving the slots that remain; cluster-allow-reads-when-down yes serves
// reads and refuses writes with Redis's error.
func TestClusterDownSettings(t *testing.T) {
	ps := []*proc{
		startNode(t, freePort(t), t.TempDir()),
		startNode(t, freePort(t), t.TempDir(), "--cluster-require-full-coverage", "no"),
		startNode(t, freePort(t), t.TempDir(), "--cluster-allow-reads-when-down", "yes"),
		startNode(t, freePort(t), t.TempDir()),
	}
	per := ring.Slots / 4
	keys := make([]string, 4)
	for i, p := range ps {
		lo, hi := i*per, (i+1)*per-1
		do(t, p, "CLUSTER", "ADDSLOTSRANGE", lo, hi)
		do(t, p, "CLUSTER", "SET-CONFIG-EPOCH", i+1)
		keys[i] = keyInRange(t, lo, hi)
	}
	for _, p := range ps[1:] {
		do(t, ps[0], "CLUSTER", "MEET", "127.0.0.1", p.port)
	}
	waitState := func(p *proc, want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			info, _ := client(t, p).ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:"+want+"\r\n") && strings.Contains(info, "cluster_known_nodes:4\r\n") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d never reached cluster_state:%s:\n%s", p.port, want, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, p := range ps {
		waitState(p, "ok")
	}
	for i, p := range ps[:3] {
		if r, err := rawCommand(p.addr(), "SET", keys[i], "v"); err != nil || r != "+OK" {
			t.Fatalf("node %d: SET before the failure: %q %v", i, r, err)
		}
	}
	victim := ps[3].addr()
	ps[3].kill()
	// Slots of the dead master are FAIL everywhere: coverage is lost, the
	// majority (3 of 4) is not.
	waitState(ps[0], "fail")
	waitState(ps[1], "ok")
	waitState(ps[2], "fail")

	check := func(who int, want string, args ...string) {
		t.Helper()
		r, err := rawCommand(ps[who].addr(), args...)
		if err != nil || r != want {
			t.Fatalf("node %d: %v = %q (err %v), want %q", who, args, r, err, want)
		}
	}
	// Default: nothing is served.
	check(0, "-CLUSTERDOWN The cluster is down", "GET", keys[0])
	check(0, "-CLUSTERDOWN The cluster is down", "SET", keys[0], "w")
	// Partial coverage: own slots served both ways, the dead master's
	// slots still redirect to it, as Redis does.
	check(1, "$1", "GET", keys[1])
	check(1, "+OK", "SET", keys[1], "w")
	check(1, "-MOVED "+strconv.Itoa(int(ring.KeySlotString(keys[3])))+" "+victim, "GET", keys[3])
	// Reads when down: reads of own slots run, writes do not, other
	// slots redirect.
	check(2, "$1", "GET", keys[2])
	check(2, "-CLUSTERDOWN The cluster is down and only accepts read commands", "SET", keys[2], "w")
	check(2, "-MOVED "+strconv.Itoa(int(ring.KeySlotString(keys[0])))+" "+ps[0].addr(), "GET", keys[0])
	for _, p := range ps[:3] {
		p.stop(t)
	}
}
