package failover

import (
	"testing"
	"time"
)

// TestStalledRoundRetries: a candidate whose round gathers no majority (its
// epoch collided with another shard's) asks again in a fresh epoch after
// half a rank delay plus jitter, before a next-ranked sibling would ask at
// one rank delay, and at most maxQuickRetries times per attempt.
func TestStalledRoundRetries(t *testing.T) {
	cl := voterCluster()
	cl.self = nid(3) // rank 0 of failed master 2's replicas 3 and 4
	cfg := Config{NodeTimeout: time.Second}
	e := NewElection(cfg)
	cfg = e.Config()
	step := 10 * time.Millisecond
	var epochs []uint64
	var firstRetry time.Duration
	var rnd uint64 = 0x9e3779b97f4a7c15
	for now := time.Duration(0); now < cfg.authTimeout(); now += step {
		rnd = rnd*6364136223846793005 + 1442695040888963407
		for _, in := range e.Tick(now, cl, 0, 0, rnd) {
			switch in.Kind {
			case RequestVotes:
				if len(epochs) == 0 || epochs[len(epochs)-1] != in.Epoch {
					epochs = append(epochs, in.Epoch)
					cl.epoch = in.Epoch // the core raises currentEpoch
				}
			case Note:
				if in.Reason == NoteElectionRetried && firstRetry == 0 {
					firstRetry = now
				}
			case Promote:
				t.Fatal("promoted without votes")
			}
		}
	}
	if want := maxQuickRetries + 1; len(epochs) != want {
		t.Fatalf("rounds in epochs %v, want %d rounds", epochs, want)
	}
	for i := 1; i < len(epochs); i++ {
		if epochs[i] <= epochs[i-1] {
			t.Fatalf("retry epochs %v do not increase", epochs)
		}
	}
	if firstRetry < cfg.quickRetry() || firstRetry >= cfg.rankDelay() {
		t.Fatalf("first retry at %v, want in [%v, %v)", firstRetry, cfg.quickRetry(), cfg.rankDelay())
	}
}

// TestRetryKeepsVotesOfEpoch: votes for the abandoned epoch do not count in
// the new round, and a majority in the new round wins.
func TestRetryKeepsVotesOfEpoch(t *testing.T) {
	cl := voterCluster()
	cl.self = nid(3)
	e := NewElection(Config{NodeTimeout: time.Second})
	e.Tick(0, cl, 0, 0, 0)
	old, sent := e.Epoch()
	if !sent {
		t.Fatal("rank 0 did not ask at once")
	}
	cl.epoch = old
	var now time.Duration
	for ; now < time.Second; now += 10 * time.Millisecond {
		e.Tick(now, cl, 0, 0, 0)
		if ep, _ := e.Epoch(); ep != old {
			break
		}
	}
	cur, _ := e.Epoch()
	if cur == old {
		t.Fatal("no retry within a second")
	}
	if e.Ack(cl, nid(1), old) {
		t.Fatal("a vote for the abandoned epoch counted")
	}
	// Voters are masters 1 and 2 (2 is FAIL but still serves slots): a
	// majority is 2, so one vote is not enough; add a third voter.
	cl.nodes[nid(5)] = Node{ID: nid(5), IsMaster: true, Slots: 100, ConfigEpoch: 5}
	if !e.Ack(cl, nid(1), cur) || !e.Ack(cl, nid(5), cur) {
		t.Fatal("votes for the new epoch did not count")
	}
	won := false
	for _, in := range e.AfterVotes(cl) {
		if in.Kind == Promote && in.Epoch == cur {
			won = true
		}
	}
	if !won {
		t.Fatal("a majority in the new round did not promote")
	}
}

// TestMajorityDoesNotShrink: a round needs a majority of the voters counted
// when its requests went out, even if the view later counts fewer (caught
// between a promotion's claim and the new master's role). Found by the
// simulator's fault mix, seed 263: two nodes elected in one epoch.
func TestMajorityDoesNotShrink(t *testing.T) {
	cl := voterCluster()
	cl.self = nid(3)
	for _, id := range []byte{5, 6, 7} {
		cl.nodes[nid(id)] = Node{ID: nid(id), IsMaster: true, Slots: 100, ConfigEpoch: uint64(id)}
	}
	e := NewElection(Config{NodeTimeout: time.Second})
	e.Tick(0, cl, 0, 0, 0)
	ep, sent := e.Epoch()
	if !sent {
		t.Fatal("rank 0 did not ask at once")
	}
	for _, id := range []byte{6, 7} {
		n := cl.nodes[nid(id)]
		n.Slots = 0
		cl.nodes[nid(id)] = n
	}
	if !e.Ack(cl, nid(1), ep) || !e.Ack(cl, nid(5), ep) {
		t.Fatal("votes did not count")
	}
	for _, in := range append(e.AfterVotes(cl), e.Tick(10*time.Millisecond, cl, 0, 0, 0)...) {
		if in.Kind == Promote {
			t.Fatal("promoted with 2 votes of the 5 voters counted when the round began")
		}
	}
}
