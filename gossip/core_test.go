package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

func TestMeetJoinsEveryone(t *testing.T) {
	tn := newTestNet(t, 5, nil)
	tn.meetAll()
	tn.run(3 * time.Second)
	for i, c := range tn.cores {
		if c.KnownNodes() != 5 {
			t.Fatalf("node %d knows %d nodes, want 5", i, c.KnownNodes())
		}
		for _, v := range c.Nodes(nil) {
			if v.Flags&wire.FlagHandshake != 0 {
				t.Fatalf("node %d still has a handshake entry", i)
			}
		}
	}
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}
}

// A FAIL on a replica is undone as soon as it is reachable again; a master
// with slots keeps FAIL for 2×timeout (docs/compatibility.md, "Failure detection").
// docs/compatibility.md, CLUSTER FORGET: FORGET keeps the ID on a blacklist for 60 s, so gossip
// does not bring the node back; it refuses to forget itself or its master.
func TestForgetBlacklist(t *testing.T) {
	tn := formed(t, 4, nil)
	gone := tn.cores[3].ID()
	tn.down[3] = true
	for i := 0; i < 2; i++ {
		r, err := tn.cores[i].Forget(tn.now, gone)
		if err != nil {
			t.Fatal(err)
		}
		tn.out(i, r)
	}
	// Node 2 still gossips about it; 0 and 1 must not take it back.
	tn.run(10 * time.Second)
	for i := 0; i < 2; i++ {
		if _, ok := tn.cores[i].Node(gone); ok {
			t.Fatalf("node %d learned a forgotten node back within 60 s", i)
		}
	}
	if _, err := tn.cores[0].Forget(tn.now, tn.cores[0].ID()); err != ErrForgetMyself {
		t.Fatalf("forget myself: %v", err)
	}
	if _, err := tn.cores[0].Forget(tn.now, testID(99)); err == nil {
		t.Fatal("forgetting an unknown node succeeded")
	}
}

// Anti-entropy repairs what rumors missed: a node cut off while a change
// spread converges after the cut heals.
func TestAntiEntropyRepairsPartition(t *testing.T) {
	for _, dir := range []SyncDirection{SyncPushPull, SyncPull, SyncPush} {
		tn := formed(t, 6, func(c *Config) { c.AntiEntropy = dir })
		tn.partition([]int{0, 1, 2}, []int{3, 4, 5}, true)
		r, _ := tn.cores[0].DelSlots(tn.now, []wire.SlotRange{{Start: 0, End: 10}})
		tn.out(0, r)
		tn.run(5 * time.Second)
		tn.partition([]int{0, 1, 2}, []int{3, 4, 5}, false)
		tn.run(10 * time.Second)
		if err := tn.converged(); err != nil {
			t.Fatalf("%v: %v", dir.Direction(), err)
		}
	}
}

// The core is deterministic: the same seeds and inputs give the same run.
func TestDeterministic(t *testing.T) {
	run := func() (uint64, int) {
		tn := formed(t, 8, nil)
		tn.down[5] = true
		tn.run(3 * time.Second)
		return tn.cores[0].Digest(), tn.sent
	}
	d1, s1 := run()
	d2, s2 := run()
	if d1 != d2 || s1 != s2 {
		t.Fatalf("two identical runs differ: digest %x/%x, messages %d/%d", d1, d2, s1, s2)
	}
}

func TestMeetShowsHandshakeUntilAnswered(t *testing.T) {
	tn := newTestNet(t, 2, nil)
	r, err := tn.cores[1].Meet(0, tn.cores[0].cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	tn.out(1, r)
	views := tn.cores[1].Nodes(nil)
	if len(views) != 2 || views[0].Flags&wire.FlagHandshake == 0 && views[1].Flags&wire.FlagHandshake == 0 {
		t.Fatalf("expected a handshake entry, got %+v", views)
	}
	tn.run(100 * time.Millisecond)
	if _, ok := tn.cores[1].Node(tn.cores[0].ID()); !ok {
		t.Fatal("handshake did not complete")
	}
	if _, err := tn.cores[1].Meet(0, wire.Addr{}); err != ErrBadAddr {
		t.Fatalf("bad address: %v", err)
	}
}

func TestAdminErrors(t *testing.T) {
	tn := formed(t, 3, nil)
	c := tn.cores[0]
	if _, err := c.AddSlots(tn.now, []wire.SlotRange{{Start: 0, End: 0}}); err == nil || err.Error() != "ERR Slot 0 is already busy" {
		t.Fatalf("busy slot: %v", err)
	}
	if _, err := c.AddSlots(tn.now, []wire.SlotRange{{Start: 5, End: 16384}}); err == nil {
		t.Fatal("out of range slot accepted")
	}
	if _, err := c.Replicate(tn.now, c.ID()); err != ErrReplicateMyself {
		t.Fatalf("replicate myself: %v", err)
	}
	if _, err := c.Replicate(tn.now, tn.cores[1].ID()); err != ErrReplicateSlots {
		t.Fatalf("replicate with slots: %v", err)
	}
	if _, err := c.SetConfigEpoch(tn.now, 5); err != ErrNotEmptyForEpoch {
		t.Fatalf("set-config-epoch with peers: %v", err)
	}
	// docs/compatibility.md, "Epochs": BUMPEPOCH answers BUMPED unless this node's
	// configEpoch is already the greatest epoch it knows; then STILL.
	for i, x := range tn.cores {
		cur, mine := x.Epochs()
		bumped, e, _ := x.BumpEpoch(tn.now)
		switch {
		case mine != 0 && mine == cur && bumped:
			t.Fatalf("node %d at the greatest epoch %d bumped", i, cur)
		case (mine == 0 || mine != cur) && (!bumped || e != cur+1):
			t.Fatalf("node %d at %d below current %d: bumped=%v to %d", i, mine, cur, bumped, e)
		}
		if again, e2, _ := x.BumpEpoch(tn.now); again || e2 != e {
			t.Fatalf("node %d: second BUMPEPOCH bumped=%v epoch=%d, want STILL %d", i, again, e2, e)
		}
	}
}

// A replica follows its master, and the cluster learns the new role.
func TestReplicateSpreads(t *testing.T) {
	tn := withReplica(t)
	v, _ := tn.cores[1].Node(tn.cores[2].ID())
	if v.Flags&wire.FlagReplica == 0 || v.Master != tn.cores[0].ID() {
		t.Fatalf("node 1 sees node 2 as %+v", v)
	}
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}
}

// Restart from State keeps the ID, epochs, role and slots.
func TestRestoreState(t *testing.T) {
	tn := formed(t, 3, nil)
	c := tn.cores[1]
	st := c.State()
	c2, err := New(Config{Addr: testAddr(1), NodeTimeout: time.Second}, st)
	if err != nil {
		t.Fatal(err)
	}
	if c2.ID() != c.ID() || c2.Digest() != c.Digest() {
		t.Fatal("restored core differs")
	}
	ce, fe := c.Epochs()
	ce2, fe2 := c2.Epochs()
	if ce != ce2 || fe != fe2 || c2.SlotCount(c.ID()) != c.SlotCount(c.ID()) {
		t.Fatal("restored epochs or slots differ")
	}
}

// docs/compatibility.md, "Epochs": a stale claimer is sent an UPDATE carrying the
// claim that beats it.
// docs/compatibility.md, "Epochs": a master that loses all its slots to a higher
// claim becomes a replica of the node that took them.
func BenchmarkCoreStepPing(b *testing.B) {
	tn := formed(b, 12, nil)
	c := tn.cores[0]
	from := tn.cores[1]
	ping := cloneMsg(from.newMessage(wire.TypePing))
	for i := 2; i < 12; i++ {
		v, _ := from.Node(tn.cores[i].ID())
		ping.Gossip = append(ping.Gossip, wire.NodeRecord{ID: v.ID, Addr: v.Addr, Flags: v.Flags, Master: v.Master, ConfigEpoch: v.ConfigEpoch, Version: v.Version})
	}
	now := tn.now
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Step(now, ping)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// Redis (7.0.15, checked side by side): the node it MEETs takes it at once,
// because a MEET from an unknown sender starts a handshake whatever the
// blacklist says; the other nodes keep dropping gossip about it until their
// blacklist entries expire, then learn it. The same holds for the other
// direction: the answer to our own MEET is taken even from a forgotten ID.
func TestMeetOverridesBlacklist(t *testing.T) {
	for _, reverse := range []bool{false, true} {
		t.Run(fmt.Sprintf("reverse=%v", reverse), func(t *testing.T) {
			tn := newTestNet(t, 5, nil)
			tn.meetAll()
			tn.run(3 * time.Second)
			for i := 0; i < 4; i++ {
				tn.addSlots(i, uint16(i*4096), uint16(i*4096+4095))
			}
			tn.run(3 * time.Second)
			if err := tn.converged(); err != nil {
				t.Fatal(err)
			}
			gone := tn.cores[4].ID()
			for i := 0; i < 4; i++ {
				r, err := tn.cores[i].Forget(tn.now, gone)
				if err != nil {
					t.Fatal(err)
				}
				tn.out(i, r)
			}
			r, err := tn.cores[4].Reset(tn.now, false, wire.NodeID{})
			if err != nil {
				t.Fatal(err)
			}
			tn.out(4, r)
			tn.run(time.Second)
			forgotAt := tn.now
			// Back in, 1 s after FORGET: node 4 meets node 0, or the other way.
			if reverse {
				r, err = tn.cores[0].Meet(tn.now, tn.cores[4].cfg.Addr)
				tn.out(0, r)
			} else {
				r, err = tn.cores[4].Meet(tn.now, tn.cores[0].cfg.Addr)
				tn.out(4, r)
			}
			if err != nil {
				t.Fatal(err)
			}
			tn.run(5 * time.Second)
			if _, ok := tn.cores[0].Node(gone); !ok {
				t.Fatal("the met node did not take the forgotten node back")
			}
			if _, ok := tn.cores[4].Node(tn.cores[0].ID()); !ok {
				t.Fatal("the re-added node does not know the node it met")
			}
			for i := 1; i < 4; i++ {
				if _, ok := tn.cores[i].Node(gone); ok {
					t.Fatalf("node %d learned the forgotten node from gossip within 60 s", i)
				}
			}
			tn.run(blacklistTTL - (tn.now - forgotAt) + 10*time.Second)
			for i := 0; i < 4; i++ {
				if _, ok := tn.cores[i].Node(gone); !ok {
					t.Fatalf("node %d still does not know the re-added node after the blacklist expired", i)
				}
			}
			if err := tn.converged(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// docs/compatibility.md, "Epochs": currentEpoch only grows, and it follows the
// greatest currentEpoch heard in any header.
func TestCurrentEpochMerges(t *testing.T) {
	tn := formed(t, 3, nil)
	a, b := tn.cores[0], tn.cores[1]
	cur, _ := a.Epochs()
	ping := cloneMsg(b.newMessage(wire.TypePing))
	ping.Header.CurrentEpoch = cur + 40
	a.Step(tn.now, ping)
	if got, _ := a.Epochs(); got != cur+40 {
		t.Fatalf("currentEpoch %d after a header with %d", got, cur+40)
	}
	ping.Header.CurrentEpoch = 1
	a.Step(tn.now, ping)
	if got, _ := a.Epochs(); got != cur+40 {
		t.Fatalf("currentEpoch went back to %d", got)
	}
}

// A MEET nobody answers is dropped after the handshake timeout (node
// timeout, at least 1 s), as in Redis.
func TestHandshakeTimesOut(t *testing.T) {
	c, err := New(Config{ID: testID(1), Addr: testAddr(1), NodeTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Meet(0, testAddr(9)); err != nil {
		t.Fatal(err)
	}
	now := time.Duration(0)
	for ; now < 1900*time.Millisecond; now += 100 * time.Millisecond {
		c.Tick(now)
	}
	if len(c.Nodes(nil)) != 2 {
		t.Fatal("handshake dropped before the timeout")
	}
	for ; now < 2500*time.Millisecond; now += 100 * time.Millisecond {
		c.Tick(now)
	}
	if len(c.Nodes(nil)) != 1 {
		t.Fatal("handshake kept past the timeout")
	}
}

// While nodes join, sync rounds come every joinSyncInterval; a table that
// did not grow since the last round keeps SyncInterval, whatever else in
// it changed.
func TestSyncRoundsFasterWhileNodesJoin(t *testing.T) {
	tn := formed(t, 4, nil)
	c := tn.cores[0]
	fast := c.joinSyncInterval()
	if fast <= 0 || fast >= c.cfg.SyncInterval {
		t.Fatalf("joinSyncInterval %v, want between 0 and SyncInterval %v", fast, c.cfg.SyncInterval)
	}
	c.lastSync, c.syncedKnown = 0, len(c.records)
	r, err := c.DelSlots(tn.now, []wire.SlotRange{{Start: 0, End: 0}}) // a change, but no join
	if err != nil {
		t.Fatal(err)
	}
	tn.out(0, r)
	if c.syncDue(fast, 0) {
		t.Fatal("a table that did not grow syncs after joinSyncInterval")
	}
	if !c.syncDue(c.cfg.SyncInterval, 0) {
		t.Fatal("a table that did not grow does not sync after SyncInterval")
	}
	c.syncedKnown = len(c.records) - 1 // a node joined since the last round
	if c.syncDue(fast-1, 0) {
		t.Fatal("a grown table syncs before joinSyncInterval")
	}
	if !c.syncDue(fast, 0) {
		t.Fatal("a grown table does not sync after joinSyncInterval")
	}
	if d := c.NextDeadline(); d > c.lastSync+fast {
		t.Fatalf("NextDeadline %v is later than the join round at %v", d, c.lastSync+fast)
	}
}

// A round while nodes join, with no peer known to differ, syncs with a
// random one; an ordinary round without such a peer sends nothing.
func TestJoinSyncRoundPicksAPeer(t *testing.T) {
	tn := formed(t, 4, nil)
	c := tn.cores[0]
	countSyncs := func(joining bool) int {
		c.begin(tn.now)
		c.mismatchN = 0
		c.syncRound(joining)
		r := c.finish()
		n := 0
		for _, e := range r.Messages {
			if e.Msg.Type == wire.TypeSync {
				n++
			}
		}
		return n
	}
	if n := countSyncs(false); n != 0 {
		t.Fatalf("an ordinary round with no differing peer sent %d syncs", n)
	}
	if n := countSyncs(true); n != 1 {
		t.Fatalf("a round while nodes join sent %d syncs, want 1", n)
	}
}
