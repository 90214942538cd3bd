package gossip

import (
	"errors"
	"testing"
	"time"

	"github.com/hearsay/hearsay/failover"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// shards builds masters nodes with the slots split evenly and perMaster
// replicas for each: replica j of master i is node masters + i*perMaster + j.
func shards(t testing.TB, masters, perMaster int) *testNet {
	t.Helper()
	var masterOf []int
	for i := 0; i < masters; i++ {
		for j := 0; j < perMaster; j++ {
			masterOf = append(masterOf, i)
		}
	}
	return layout(t, masters, masterOf, nil)
}

// masterOf returns whom node i's core names as its master (zero if master).
func (tn *testNet) masterOf(i int) wire.NodeID {
	v, _ := tn.cores[i].Node(tn.cores[i].ID())
	return v.Master
}

// checkOwner fails unless every live core binds every slot of want's range
// to owner.
func (tn *testNet) checkOwner(t *testing.T, slot uint16, owner int) {
	t.Helper()
	for _, i := range tn.live() {
		if got, _ := tn.cores[i].SlotOwner(slot); got != tn.cores[owner].ID() {
			t.Fatalf("node %d: slot %d owned by %s, want node %d", i, slot, got, owner)
		}
	}
}

func isMaster(c *Core) bool { return hasFlag(c, c.ID(), wire.FlagMaster) }

func TestFailoverPromotesReplica(t *testing.T) {
	tn := shards(t, 3, 1)
	_, before := tn.cores[0].SlotOwner(0)
	tn.down[0] = true
	tn.run(4 * time.Second)
	if !isMaster(tn.cores[3]) {
		t.Fatalf("replica 3 was not promoted; events %+v", tn.failover)
	}
	tn.checkOwner(t, 0, 3)
	if _, e := tn.cores[1].SlotOwner(0); e <= before {
		t.Fatalf("new owner's configEpoch %d not above the old %d", e, before)
	}
	for _, i := range tn.live() {
		if !hasFlag(tn.cores[i], tn.cores[3].ID(), wire.FlagMaster) {
			t.Fatalf("node %d does not list 3 as master", i)
		}
	}
	// The old master comes back: it learns it lost its slots and follows
	// the winner; it never claims them again.
	tn.down[0] = false
	tn.run(5 * time.Second)
	if got := tn.masterOf(0); got != tn.cores[3].ID() {
		t.Fatalf("old master follows %s, want node 3", got)
	}
	if tn.cores[0].SlotCount(tn.cores[0].ID()) != 0 {
		t.Fatal("old master still owns slots")
	}
	tn.checkOwner(t, 0, 3)
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}
}

func TestFailoverSiblingsFollowWinner(t *testing.T) {
	tn := shards(t, 3, 2)
	tn.offset[3], tn.offset[4] = 100, 200 // node 4 has more data and ranks first
	tn.run(time.Second)
	tn.down[0] = true
	tn.run(5 * time.Second)
	if !isMaster(tn.cores[4]) || isMaster(tn.cores[3]) {
		t.Fatalf("want node 4 promoted and node 3 not; events %+v", tn.failover)
	}
	if got := tn.masterOf(3); got != tn.cores[4].ID() {
		t.Fatalf("sibling follows %s, want the winner", got)
	}
	tn.checkOwner(t, 0, 4)
}

func TestFailoverOneWinnerPerEpoch(t *testing.T) {
	tn := shards(t, 3, 2)
	tn.down[0] = true
	tn.run(5 * time.Second)
	winners := map[uint64]wire.NodeID{}
	for _, e := range tn.failover {
		if e.Kind == FailoverPromoted {
			if _, dup := winners[e.Epoch]; dup {
				t.Fatalf("two winners in epoch %d", e.Epoch)
			}
			winners[e.Epoch] = e.Node
		}
	}
	if len(winners) != 1 {
		t.Fatalf("want exactly one promotion, got %d", len(winners))
	}
}

func TestManyShardsFailTogether(t *testing.T) {
	tn := shards(t, 7, 1)
	for i := 0; i < 3; i++ {
		tn.down[i] = true
	}
	tn.run(6 * time.Second)
	for i := 0; i < 3; i++ {
		if !isMaster(tn.cores[7+i]) {
			t.Fatalf("shard %d has no new master; events %+v", i, tn.failover)
		}
		tn.checkOwner(t, uint16(i*(ring.Slots/7)), 7+i)
	}
}

func TestManualFailover(t *testing.T) {
	tn := shards(t, 3, 1)
	tn.offset[0], tn.offset[3] = 500, 400 // the replica lags
	tn.run(100 * time.Millisecond)
	r, err := tn.cores[3].Failover(tn.now, failover.ModeDefault)
	if err != nil {
		t.Fatal(err)
	}
	tn.out(3, r)
	tn.run(300 * time.Millisecond)
	if !tn.paused[0] {
		t.Fatal("master did not pause its writes")
	}
	if isMaster(tn.cores[3]) {
		t.Fatal("replica took over before it caught up with the paused master")
	}
	tn.offset[3] = 500
	tn.run(500 * time.Millisecond)
	if !isMaster(tn.cores[3]) {
		t.Fatalf("replica not promoted after catching up; events %+v", tn.failover)
	}
	tn.run(time.Second)
	tn.checkOwner(t, 0, 3)
	if got := tn.masterOf(0); got != tn.cores[3].ID() {
		t.Fatalf("old master follows %s, want node 3", got)
	}
	if tn.paused[0] {
		t.Fatal("old master's writes still paused")
	}
}

func TestManualFailoverTimesOut(t *testing.T) {
	tn := shards(t, 3, 1)
	tn.offset[0], tn.offset[3] = 500, 400 // never catches up
	tn.run(100 * time.Millisecond)
	r, err := tn.cores[3].Failover(tn.now, failover.ModeDefault)
	if err != nil {
		t.Fatal(err)
	}
	tn.out(3, r)
	tn.run(11 * time.Second)
	if isMaster(tn.cores[3]) || tn.paused[0] {
		t.Fatalf("want no failover and writes resumed; master=%v paused=%v", isMaster(tn.cores[3]), tn.paused[0])
	}
}

func TestManualFailoverModes(t *testing.T) {
	tn := shards(t, 3, 1)
	if _, err := tn.cores[0].Failover(tn.now, failover.ModeDefault); !errors.Is(err, failover.ErrNotReplica) {
		t.Fatalf("on a master: %v", err)
	}
	// Replica 3's data is too old for an automatic failover, so its
	// master stays FAIL and unreplaced until an operator acts.
	tn.age[3] = time.Hour
	tn.down[0] = true
	tn.run(3 * time.Second)
	if isMaster(tn.cores[3]) {
		t.Fatal("a replica with stale data failed over automatically")
	}
	if !hasFlag(tn.cores[3], tn.cores[0].ID(), wire.FlagFail) {
		t.Fatal("master not FAIL")
	}
	if _, err := tn.cores[3].Failover(tn.now, failover.ModeDefault); !errors.Is(err, failover.ErrMasterDown) {
		t.Fatalf("with the master down: %v", err)
	}
	r, err := tn.cores[3].Failover(tn.now, failover.ModeForce)
	if err != nil {
		t.Fatal(err)
	}
	tn.out(3, r)
	tn.run(time.Second)
	if !isMaster(tn.cores[3]) {
		t.Fatalf("FORCE with the master down did not promote; events %+v", tn.failover)
	}
	tn.checkOwner(t, 0, 3)
}

func TestForceAndTakeover(t *testing.T) {
	tn := shards(t, 3, 1)
	// FORCE: the master is alive; no catch-up, votes forced.
	r, err := tn.cores[3].Failover(tn.now, failover.ModeForce)
	if err != nil {
		t.Fatal(err)
	}
	tn.out(3, r)
	tn.run(time.Second)
	if !isMaster(tn.cores[3]) {
		t.Fatalf("FORCE did not promote; events %+v", tn.failover)
	}
	tn.checkOwner(t, 0, 3)

	// TAKEOVER with a majority of masters down: no votes needed.
	tn2 := shards(t, 3, 1)
	tn2.down[0], tn2.down[1] = true, true
	tn2.run(100 * time.Millisecond)
	r, err = tn2.cores[5].Failover(tn2.now, failover.ModeTakeover)
	if err != nil {
		t.Fatal(err)
	}
	tn2.out(5, r)
	tn2.run(time.Second)
	if !isMaster(tn2.cores[5]) {
		t.Fatal("TAKEOVER did not promote")
	}
	tn2.checkOwner(t, ring.Slots-1, 5)
}

func TestVoteIsDurableBeforeAck(t *testing.T) {
	tn := shards(t, 3, 1)
	tn.down[0] = true
	// Watch every Ready that carries an AUTHACK.
	seen := false
	for step := 0; step < 400 && !seen; step++ {
		tn.now += 10 * time.Millisecond
		for _, p := range tn.takeDue() {
			if tn.down[p.to] {
				continue
			}
			r := tn.cores[p.to].Step(tn.now, p.msg)
			for _, e := range r.Messages {
				if e.Msg.Type == wire.TypeAuthAck {
					seen = true
					if !r.Persist {
						t.Fatal("AUTHACK sent without Persist")
					}
					if st := tn.cores[p.to].State(); len(st.Votes) == 0 || st.Votes[len(st.Votes)-1].Epoch != e.Msg.Epoch {
						t.Fatalf("vote for %d not in the durable state %+v", e.Msg.Epoch, st.Votes)
					}
				}
			}
			tn.out(p.to, r)
		}
		for i, c := range tn.cores {
			if !tn.down[i] {
				tn.out(i, c.Tick(tn.now))
			}
		}
	}
	if !seen {
		t.Fatal("no vote was granted")
	}
}

func TestBallotSurvivesRestore(t *testing.T) {
	tn := shards(t, 3, 1)
	tn.down[0] = true
	tn.run(4 * time.Second)
	st := tn.cores[1].State()
	if len(st.Votes) == 0 {
		t.Fatal("voter recorded no vote")
	}
	c, err := New(tn.cores[1].Config(), st)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.State().Votes; len(got) != len(st.Votes) || got[0] != st.Votes[0] {
		t.Fatalf("votes after restore %+v, want %+v", got, st.Votes)
	}
}

// A replica that stops hearing its master pings its siblings in the same
// step, so their PONGs bring fresh replication offsets before the ranking.
func TestSiblingsPingedWhenMasterSilent(t *testing.T) {
	tn := shards(t, 3, 2) // master 0 has replicas 3 and 4
	var log []sentMsg
	tn.sentLog = &log
	tn.down[0] = true
	for step := 0; step < 300; step++ {
		tn.run(10 * time.Millisecond)
		v, _ := tn.cores[3].Node(tn.cores[0].ID())
		if v.Flags&(wire.FlagPFail|wire.FlagFail) == 0 {
			continue
		}
		for _, m := range log {
			if m.at == tn.now && m.from == 3 && m.to == 4 && m.typ == wire.TypePing {
				return
			}
		}
		t.Fatalf("node 3 marked its master PFAIL at %v without pinging its sibling", tn.now)
	}
	t.Fatal("node 3 never marked its silent master PFAIL")
}

// A master restarted from saved state, or one that wakes from a stall,
// grants no vote for two node timeouts: it may not yet know that a replica
// took its slots while it was away.
func TestWakingMasterHoldsVotes(t *testing.T) {
	for _, how := range []string{"restart", "stall"} {
		t.Run(how, func(t *testing.T) {
			tn := shards(t, 3, 1)
			switch how {
			case "restart":
				c, err := New(tn.cores[1].Config(), tn.cores[1].State())
				if err != nil {
					t.Fatal(err)
				}
				tn.cores[1] = c
			case "stall":
				// The harness ticks every live core, so a stall is a
				// core that skips ticks (and drops what it is sent).
				tn.down[1] = true
				tn.run(550 * time.Millisecond) // more than NodeTimeout/2
				tn.down[1] = false
			}
			tn.down[0] = true
			tn.run(1500 * time.Millisecond) // master 0 FAIL, node 3 asks
			held, granted := 0, 0
			for _, e := range tn.failover {
				if e.Kind == FailoverVote && e.Reason == failover.RefuseWaking {
					held++
				}
			}
			if held == 0 {
				t.Fatal("the waking master voted at once")
			}
			tn.run(5 * time.Second)
			for _, e := range tn.failover {
				if e.Kind == FailoverVote && e.Granted {
					granted++
				}
			}
			if !isMaster(tn.cores[3]) || granted < 2 {
				t.Fatalf("replica not promoted once the hold ended (%d votes granted)", granted)
			}
		})
	}
}
