package node_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/node"
	"github.com/hearsay/hearsay/ring"
)

// TestFailUndoOnReturn kills a master of a 3-master cluster without
// replicas, keeps it down well past its FAIL, and restarts it. Redis's undo
// rule counts 2×node-timeout from the FAIL's declaration, so the returning
// master refutes its FAIL as soon as it hears of it and every node reports
// cluster_state:ok once the restarted master's 2 s write delay ends; the
// old rule, which counted from when the master learned of its FAIL, kept
// the cluster down for 2×node-timeout after the restart.
func TestFailUndoOnReturn(t *testing.T) {
	testenv.SkipShort(t, "starts 3 node processes and waits out a FAIL")
	const nodeTimeout = 3 * time.Second
	flags := []string{"--node-timeout", nodeTimeout.String()}
	ps := make([]*proc, 3)
	for i := range ps {
		ps[i] = startNode(t, freePort(t), t.TempDir(), flags...)
	}
	per := ring.Slots / len(ps)
	for i, p := range ps {
		hi := (i+1)*per - 1
		if i == len(ps)-1 {
			hi = ring.Slots - 1
		}
		do(t, p, "CLUSTER", "ADDSLOTSRANGE", i*per, hi)
		do(t, p, "CLUSTER", "SET-CONFIG-EPOCH", i+1)
	}
	for _, p := range ps[1:] {
		do(t, ps[0], "CLUSTER", "MEET", "127.0.0.1", p.port)
	}
	waitAgree(t, ps, 20*time.Second)

	state := func(p *proc) string {
		info, err := client(t, p).ClusterInfo(context.Background()).Result()
		if err != nil {
			return ""
		}
		for _, l := range strings.Split(info, "\r\n") {
			if s, ok := strings.CutPrefix(l, "cluster_state:"); ok {
				return s
			}
		}
		return ""
	}
	victim := ps[2]
	// The victim must come back knowing the cluster, as a long-running
	// master would: wait until its saved state lists every node.
	saved := filepath.Join(victim.dir, node.StateFile)
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile(saved)
		all := true
		for _, p := range ps {
			all = all && strings.Contains(string(b), myID(t, p))
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the victim's %s never listed every node:\n%s", node.StateFile, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	killed := time.Now()
	victim.kill()
	for state(ps[0]) != "fail" {
		if time.Since(killed) > 5*nodeTimeout {
			t.Fatal("the cluster never went down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	failSeen := time.Now()
	t.Logf("cluster down %v after the kill", failSeen.Sub(killed).Round(time.Millisecond))
	// Down for 3.5 node timeouts, and in any case until the FAIL is more
	// than 2 node timeouts old (a loaded machine may declare it late).
	time.Sleep(time.Until(killed.Add(7 * nodeTimeout / 2)))
	time.Sleep(time.Until(failSeen.Add(2*nodeTimeout + nodeTimeout/4)))

	restarted := time.Now()
	ps[2] = startNode(t, victim.port, victim.dir, flags...)
	for {
		ok := 0
		for _, p := range ps {
			if state(p) == "ok" {
				ok++
			}
		}
		if ok == len(ps) {
			break
		}
		if time.Since(restarted) > 10*nodeTimeout {
			t.Fatalf("cluster not ok %v after the restart", time.Since(restarted))
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(restarted)
	t.Logf("every node cluster_state:ok %v after the restart (node timeout %v)", took.Round(time.Millisecond), nodeTimeout)
	if took >= 2*nodeTimeout {
		t.Logf("restarted at %s", restarted.UTC().Format(time.RFC3339Nano))
		for _, p := range ps {
			b, _ := os.ReadFile(p.log)
			t.Logf("%d:\n%s", p.port, b)
		}
		t.Fatalf("cluster ok only %v after the restart: the FAIL was not undone at once", took)
	}
	waitAgree(t, ps, 10*time.Second)
}
