package gossip

import (
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

func TestSlotsPropagate(t *testing.T) {
	tn := formed(t, 4, nil)
	for i, c := range tn.cores {
		for _, slot := range []uint16{0, 4095, 4096, 16383} {
			owner, _ := c.SlotOwner(slot)
			want := tn.cores[int(slot)/4096].ID()
			if owner != want {
				t.Fatalf("node %d: slot %d owned by %s, want %s", i, slot, owner, want)
			}
		}
	}
}

func TestConfigEpochCollision(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	// Three masters with slots, all at configEpoch 0, meet.
	for i := range tn.cores {
		tn.addSlots(i, uint16(i*100), uint16(i*100+99))
	}
	tn.meetAll()
	tn.run(3 * time.Second)
	seen := map[uint64]bool{}
	for i, c := range tn.cores {
		_, e := c.Epochs()
		if seen[e] {
			t.Fatalf("node %d shares configEpoch %d with another master", i, e)
		}
		seen[e] = true
	}
}

func TestHigherEpochRebindsAndUpdates(t *testing.T) {
	tn := formed(t, 3, nil)
	old := tn.cores[0].ID()
	// Node 1 takes node 0's slots with a higher epoch, as a failover would,
	// while node 0 is cut off and does not hear about it.
	tn.down[0] = true
	r, err := tn.cores[1].SetSlot(tn.now, 0, SlotNode, tn.cores[1].ID())
	if err != nil {
		t.Fatal(err)
	}
	tn.out(1, r)
	_, _, r = tn.cores[1].BumpEpoch(tn.now)
	tn.out(1, r)
	tn.run(time.Second)
	if owner, _ := tn.cores[2].SlotOwner(0); owner != tn.cores[1].ID() {
		t.Fatalf("slot 0 owned by %s at node 2, want node 1", owner)
	}
	tn.down[0] = false
	tn.run(5 * time.Second)
	if owner, _ := tn.cores[0].SlotOwner(0); owner != tn.cores[1].ID() {
		t.Fatalf("stale node 0 still maps slot 0 to %s", owner)
	}
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}
	if tn.cores[0].SlotCount(old) == 0 {
		t.Fatal("node 0 lost all its slots, but only slot 0 moved")
	}
}

func TestStaleClaimerGetsUpdate(t *testing.T) {
	tn := formed(t, 3, nil)
	a, b := tn.cores[0], tn.cores[1]
	// b learns a claim for slot 0 at an epoch above a's.
	_, aEpoch := a.Epochs()
	b.begin(tn.now)
	b.receiveClaim(&wire.SlotClaim{Owner: tn.cores[2].ID(), ConfigEpoch: aEpoch + 10, Version: 1 << 40, Ranges: []wire.SlotRange{{Start: 0, End: 0}}}, true)
	// a, still claiming slot 0, pings b.
	ping := a.newMessage(wire.TypePing)
	r := b.Step(tn.now, cloneMsg(ping))
	var update *wire.Message
	for _, e := range r.Messages {
		if e.Msg.Type == wire.TypeUpdate && e.To == a.ID() {
			update = e.Msg
		}
	}
	if update == nil {
		t.Fatal("no UPDATE sent to the stale claimer")
	}
	if len(update.Claims) != 1 || update.Claims[0].Owner != tn.cores[2].ID() || update.Claims[0].ConfigEpoch != aEpoch+10 {
		t.Fatalf("UPDATE carries %+v", update.Claims)
	}
}

func TestMasterLosingAllSlotsFollows(t *testing.T) {
	tn := formed(t, 3, nil)
	a := tn.cores[0]
	_, e := a.Epochs()
	winner := tn.cores[2].ID()
	a.begin(tn.now)
	a.receiveClaim(&wire.SlotClaim{Owner: winner, ConfigEpoch: e + 100, Version: 1 << 40, Ranges: []wire.SlotRange{{Start: 0, End: 16383 / 3}}}, true)
	v, _ := a.Node(a.ID())
	if v.Flags&wire.FlagReplica == 0 || v.Master != winner {
		t.Fatalf("a master that lost all slots is %+v", v)
	}
	if a.SlotCount(a.ID()) != 0 {
		t.Fatal("slots left")
	}
}

func TestDurableChangesAskForPersist(t *testing.T) {
	tn := formed(t, 3, nil)
	r, err := tn.cores[1].SetSlot(tn.now, 0, SlotImporting, tn.cores[0].ID())
	if err != nil {
		t.Fatal(err)
	}
	r, err = tn.cores[1].SetSlot(tn.now, 0, SlotNode, tn.cores[1].ID())
	if err != nil || !r.Persist {
		t.Fatalf("SETSLOT NODE on the importing node: persist=%v err=%v", r.Persist, err)
	}
	r, err = tn.cores[2].Reset(tn.now, true, testID(77))
	if err == nil && !r.Persist {
		t.Fatal("hard reset did not ask for persist")
	}
	if tn.cores[2].ID() != testID(77) || tn.cores[2].KnownNodes() != 1 {
		t.Fatal("hard reset kept the old identity or peers")
	}
	if cur, cfg := tn.cores[2].Epochs(); cur != 0 || cfg != 0 {
		t.Fatalf("hard reset left epochs %d/%d", cur, cfg)
	}
}

func TestSetSlotNodeKeepsTableOnClaims(t *testing.T) {
	tn := formed(t, 4, nil)
	// A third node told that node 0 owns one of node 1's slots: the slot
	// stays with the claim that wins it.
	slot := uint16(5000) // node 1's
	before, _ := tn.cores[2].SlotOwner(slot)
	if _, err := tn.cores[2].SetSlot(tn.now, slot, SlotNode, tn.cores[0].ID()); err != nil {
		t.Fatal(err)
	}
	if after, _ := tn.cores[2].SlotOwner(slot); after != before {
		t.Fatalf("a bystander rebound slot %d by hand to %s", slot, after)
	}
	tn.run(2 * time.Second)
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}
}

func TestSetSlotNodeErrors(t *testing.T) {
	tn := withReplica(t)
	if _, err := tn.cores[2].SetSlot(tn.now, 1, SlotNode, tn.cores[2].ID()); err != ErrSetSlotReplica {
		t.Fatalf("SETSLOT on a replica: %v", err)
	}
	if _, err := tn.cores[1].SetSlot(tn.now, 1, SlotNode, tn.cores[2].ID()); err == nil || err.Error() != "ERR Target node is not a master" {
		t.Fatalf("SETSLOT NODE naming a replica: %v", err)
	}
}

// SETSLOT MIGRATING and IMPORTING refuse the wrong side of a move with
// Redis's errors, and change nothing.
func TestSetSlotOwnershipErrors(t *testing.T) {
	tn := formed(t, 4, nil)
	const theirs, mine = uint16(5000), uint16(7) // node 1's, node 0's
	c := tn.cores[0]
	for _, tc := range []struct {
		slot uint16
		st   SlotState
		want string
	}{
		{theirs, SlotMigrating, "ERR I'm not the owner of hash slot 5000"},
		{mine, SlotImporting, "ERR I'm already the owner of hash slot 7"},
	} {
		if _, err := c.SetSlot(tn.now, tc.slot, tc.st, tn.cores[2].ID()); err == nil || err.Error() != tc.want {
			t.Errorf("SETSLOT %d %v: %v, want %q", tc.slot, tc.st, err, tc.want)
		}
		if _, ok := c.table.Migrating(tc.slot); ok {
			t.Errorf("slot %d marked migrating after a refused SETSLOT", tc.slot)
		}
		if _, ok := c.table.Importing(tc.slot); ok {
			t.Errorf("slot %d marked importing after a refused SETSLOT", tc.slot)
		}
	}
}

func TestReshardSequence(t *testing.T) {
	tn := formed(t, 4, nil)
	src, dst := tn.cores[0], tn.cores[3]
	slot := uint16(7)
	steps := []struct {
		c  int
		st SlotState
		id *Core
	}{{3, SlotImporting, src}, {0, SlotMigrating, dst}, {3, SlotNode, dst}, {0, SlotNode, dst}, {1, SlotNode, dst}, {2, SlotNode, dst}}
	for _, s := range steps {
		r, err := tn.cores[s.c].SetSlot(tn.now, slot, s.st, s.id.ID())
		if err != nil {
			t.Fatalf("node %d SETSLOT %d: %v", s.c, s.st, err)
		}
		tn.out(s.c, r)
		tn.run(5 * time.Millisecond)
	}
	tn.run(2 * time.Second)
	for i, c := range tn.cores {
		if owner, _ := c.SlotOwner(slot); owner != dst.ID() {
			t.Fatalf("node %d: slot %d owned by %s, want the target", i, slot, owner)
		}
		if _, ok := c.table.Migrating(slot); ok {
			t.Fatalf("node %d still migrating", i)
		}
	}
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}
	if src.SlotCount(src.ID()) != 16384/4-1 {
		t.Fatalf("source holds %d slots", src.SlotCount(src.ID()))
	}
}
