package gossip

import (
	"fmt"
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

// untilFail runs until node watcher holds node victim FAIL and returns when
// that happened (the declaration, to within a step and a link latency).
func (tn *testNet) untilFail(watcher, victim int) time.Duration {
	tn.t.Helper()
	for end := tn.now + 10*time.Second; tn.now < end; {
		tn.run(10 * time.Millisecond)
		if hasFlag(tn.cores[watcher], tn.cores[victim].ID(), wire.FlagFail) {
			return tn.now
		}
	}
	tn.t.Fatalf("node %d never saw node %d FAIL", watcher, victim)
	return 0
}

// restart replaces core i with one restored from its saved state, as a
// process restart does, and brings it up.
func (tn *testNet) restart(i int) {
	tn.t.Helper()
	c, err := New(tn.cores[i].Config(), tn.cores[i].State())
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.cores[i] = c
	tn.down[i] = false
}

func (tn *testNet) noneHoldFail(victim int) error {
	for _, i := range tn.live() {
		if hasFlag(tn.cores[i], tn.cores[victim].ID(), wire.FlagFail) {
			return fmt.Errorf("node %d holds node %d FAIL", i, victim)
		}
	}
	return nil
}

// TestFailUndo: a master with slots that comes back keeps FAIL until the
// FAIL is 2×node-timeout old, counted from its declaration (Redis's undo
// rule), and loses it soon after.
func TestFailUndo(t *testing.T) {
	tn := formed(t, 5, nil)
	victim := tn.cores[3].ID()
	tn.down[3] = true
	declared := tn.untilFail(0, 3)
	tn.run(500 * time.Millisecond)
	tn.down[3] = false
	// 2×NT after the declaration, less a margin for the step and latency.
	tn.run(declared + 2*time.Second - 50*time.Millisecond - tn.now)
	if !hasFlag(tn.cores[0], victim, wire.FlagFail) {
		t.Fatal("a master with slots lost FAIL before 2×timeout since the declaration")
	}
	if !tn.cores[3].HeldFailed() {
		t.Fatal("the master does not know it is held FAIL")
	}
	// The old rule counted 2×NT from when the master learned of its FAIL
	// (here 1.5 s later than the declaration's 2×NT).
	tn.run(300 * time.Millisecond)
	if err := tn.noneHoldFail(3); err != nil {
		t.Fatalf("%v 2×timeout after the declaration", err)
	}
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}
}

// TestFailUndoAfterLongOutage: a master restarted from its saved state
// after an outage longer than 2×node-timeout past its FAIL clears the FAIL
// at once: the FAIL messages it gets carry the verdict's age.
func TestFailUndoAfterLongOutage(t *testing.T) {
	tn := formed(t, 5, nil)
	tn.down[3] = true
	declared := tn.untilFail(0, 3)
	tn.run(declared + 2500*time.Millisecond - tn.now)
	tn.restart(3)
	tn.run(200 * time.Millisecond)
	if err := tn.noneHoldFail(3); err != nil {
		t.Fatalf("%v 200 ms after it came back", err)
	}
	if tn.cores[3].HeldFailed() || !isMaster(tn.cores[3]) || tn.cores[3].SlotCount(tn.cores[3].ID()) == 0 {
		t.Fatal("the master did not come back with its slots")
	}
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}
}

// TestFailClearedAtOnceWithoutSlots: a replica, and a master without slots,
// lose FAIL as soon as they are heard again.
func TestFailClearedAtOnceWithoutSlots(t *testing.T) {
	for _, victim := range []int{1, 2} { // 1: master without slots; 2: replica
		tn := withReplica(t)
		tn.down[victim] = true
		tn.untilFail(0, victim)
		tn.down[victim] = false
		tn.run(200 * time.Millisecond)
		if err := tn.noneHoldFail(victim); err != nil {
			t.Fatalf("%v 200 ms after it came back", err)
		}
	}
}

// TestFailUndoNeverReturnsTakenSlots: a master whose replica took its slots
// comes back long after its FAIL; it clears the FAIL at once but never owns
// the slots again anywhere, and follows the new master.
func TestFailUndoNeverReturnsTakenSlots(t *testing.T) {
	tn := shards(t, 3, 1)
	tn.down[0] = true
	tn.untilFail(1, 0)
	tn.run(4 * time.Second)
	if !isMaster(tn.cores[3]) {
		t.Fatal("replica 3 was not promoted")
	}
	tn.restart(0)
	old := tn.cores[0].ID()
	for end := tn.now + 3*time.Second; tn.now < end; {
		tn.run(10 * time.Millisecond)
		for _, i := range tn.live() {
			if i == 0 {
				continue // it believes its saved claim until told otherwise
			}
			if got, _ := tn.cores[i].SlotOwner(0); got == old {
				t.Fatalf("node %d binds slot 0 to the returning master again", i)
			}
		}
	}
	if got := tn.masterOf(0); got != tn.cores[3].ID() {
		t.Fatalf("old master follows %s, want node 3", got)
	}
	if tn.cores[0].SlotCount(old) != 0 {
		t.Fatal("old master still owns slots")
	}
	tn.checkOwner(t, 0, 3)
	if err := tn.noneHoldFail(0); err != nil {
		t.Fatal(err)
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
