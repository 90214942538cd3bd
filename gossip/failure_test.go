package gossip

import (
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

func TestCrashedMasterBecomesFail(t *testing.T) {
	tn := formed(t, 5, nil)
	victim := tn.cores[2].ID()
	tn.down[2] = true
	tn.run(500 * time.Millisecond)
	for _, i := range tn.live() {
		if hasFlag(tn.cores[i], victim, wire.FlagFail) {
			t.Fatalf("node %d marked FAIL before node-timeout", i)
		}
	}
	tn.run(2 * time.Second)
	for _, i := range tn.live() {
		if !hasFlag(tn.cores[i], victim, wire.FlagFail) {
			t.Fatalf("node %d does not see the crashed node as FAIL", i)
		}
	}
}

func TestMinorityCannotFail(t *testing.T) {
	tn := formed(t, 5, nil)
	victim := 4
	// Only node 0 loses touch with the victim.
	tn.partition([]int{0}, []int{victim}, true)
	tn.run(4 * time.Second)
	if !hasFlag(tn.cores[0], tn.cores[victim].ID(), wire.FlagPFail) {
		t.Fatal("node 0 should see the cut-off node as PFAIL")
	}
	for _, i := range tn.live() {
		if hasFlag(tn.cores[i], tn.cores[victim].ID(), wire.FlagFail) {
			t.Fatalf("node %d marked FAIL on a single report", i)
		}
	}
}

func TestFailureReportsExpire(t *testing.T) {
	tn := formed(t, 5, nil)
	victim := tn.cores[4].ID()
	tn.partition([]int{0}, []int{4}, true)
	tn.run(2 * time.Second)
	if n := tn.cores[1].FailureReports(victim); n != 1 {
		t.Fatalf("node 1 holds %d reports about the victim, want 1 (from node 0)", n)
	}
	tn.partition([]int{0}, []int{4}, false)
	tn.run(3 * time.Second)
	if n := tn.cores[1].FailureReports(victim); n != 0 {
		t.Fatalf("node 1 still holds %d reports after the link healed and 2×timeout passed", n)
	}
}

func TestFailUndo(t *testing.T) {
	tn := formed(t, 5, nil)
	victim := tn.cores[3].ID()
	tn.down[3] = true
	tn.run(3 * time.Second)
	if !hasFlag(tn.cores[0], victim, wire.FlagFail) {
		t.Fatal("victim not FAIL")
	}
	tn.down[3] = false
	tn.run(500 * time.Millisecond)
	if !hasFlag(tn.cores[0], victim, wire.FlagFail) {
		t.Fatal("a master with slots lost FAIL before 2×timeout")
	}
	tn.run(3 * time.Second)
	for _, i := range tn.live() {
		if hasFlag(tn.cores[i], victim, wire.FlagFail) {
			t.Fatalf("node %d still holds FAIL long after the master came back", i)
		}
	}
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}
}

func TestObserversFailAtScale(t *testing.T) {
	tn := formed(t, 32, func(c *Config) { c.SmallCluster = 8 })
	if tn.cores[0].smallCluster() {
		t.Fatal("expected observer mode")
	}
	mon := tn.cores[0].Monitored(nil)
	if len(mon) > 8+2 {
		t.Fatalf("node 0 watches %d peers; at scale it should watch about K=8", len(mon))
	}
	victim := 17
	tn.down[victim] = true
	tn.run(3 * time.Second)
	for _, i := range tn.live() {
		if !hasFlag(tn.cores[i], tn.cores[victim].ID(), wire.FlagFail) {
			t.Fatalf("node %d does not see node %d FAIL", i, victim)
		}
	}
}

func TestHeartbeatNeedsProgress(t *testing.T) {
	c, err := New(Config{ID: testID(1), Addr: testAddr(1), NodeTimeout: time.Second, ExternalHeartbeat: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	peerRec := wire.NodeRecord{ID: testID(2), Addr: testAddr(2), Flags: wire.FlagMaster, Version: 1}
	c.begin(0)
	c.mergeRecord(&peerRec, true)
	now := time.Duration(0)
	var progress uint64
	for ; now < 3*time.Second; now += 100 * time.Millisecond {
		progress++
		c.Heartbeat(now, peerRec.ID, HeartbeatSample{PongsRecv: progress, LastPong: now, Progress: progress})
		c.Tick(now)
	}
	if hasFlag(c, peerRec.ID, wire.FlagPFail) {
		t.Fatal("peer with advancing progress marked PFAIL")
	}
	// The process hangs: PONGs keep coming, progress stops.
	for end := now + 2*time.Second; now < end; now += 100 * time.Millisecond {
		c.Heartbeat(now, peerRec.ID, HeartbeatSample{PongsRecv: uint64(now), LastPong: now, Progress: progress})
		c.Tick(now)
	}
	if !hasFlag(c, peerRec.ID, wire.FlagPFail) {
		t.Fatal("a hung peer whose kernel still answers was not marked PFAIL")
	}
	progress++
	c.Heartbeat(now, peerRec.ID, HeartbeatSample{PongsRecv: uint64(now), LastPong: now, Progress: progress})
	if hasFlag(c, peerRec.ID, wire.FlagPFail) {
		t.Fatal("PFAIL not cleared when progress resumed")
	}
}

func TestPFailAfterTimeout(t *testing.T) {
	tn := formed(t, 3, nil)
	victim := tn.cores[2].ID()
	tn.down[2] = true
	tn.run(400 * time.Millisecond)
	if hasFlag(tn.cores[0], victim, wire.FlagPFail|wire.FlagFail) {
		t.Fatal("PFAIL before node-timeout of silence")
	}
	tn.run(1500 * time.Millisecond)
	if !hasFlag(tn.cores[0], victim, wire.FlagPFail|wire.FlagFail) {
		t.Fatal("no PFAIL after node-timeout of silence")
	}
}
