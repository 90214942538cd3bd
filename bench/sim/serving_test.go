package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// collidingTakeovers forms a 3-master cluster and, with masters 0 and 1 on
// opposite sides of a partition, has both take master 2's first slot after
// a bump without consensus: from the same currentEpoch both land on one
// configEpoch, so both serve that slot at it.
func collidingTakeovers(t *testing.T) (*Sim, uint16) {
	t.Helper()
	s := New(Options{Seed: 9, KeepState: true, Core: gossip.Config{NodeTimeout: time.Second}})
	s.AddNodes(3)
	s.CheckServing()
	claims, err := s.BootCluster(0, 3, 3, wire.NumSlots)
	if err != nil {
		t.Fatal(err)
	}
	s.RunFor(2 * time.Second)
	slot := claims[2].Ranges[0].Start
	s.Partition([]int{0}, []int{1})
	for _, i := range []int{0, 1} {
		if err := s.TakeSlot(i, slot); err != nil {
			t.Fatal(err)
		}
	}
	_, e0 := s.Core(0).Epochs()
	_, e1 := s.Core(1).Epochs()
	if e0 != e1 {
		t.Fatalf("the takeovers did not collide: configEpochs %d and %d", e0, e1)
	}
	if len(s.serve.open) != 1 {
		t.Fatalf("%d collisions recorded, want 1: %+v", len(s.serve.open), s.serve.open)
	}
	return s, slot
}

// A collision of epochs taken without consensus is allowed while the two
// masters cannot hear each other, and the collision rule must end it soon
// after they can.
func TestServingCollisionResolvedAfterHeal(t *testing.T) {
	s, slot := collidingTakeovers(t)
	s.RunFor(3 * time.Second)
	if v := s.Violations(); len(v) > 0 {
		t.Fatalf("violations while partitioned: %v", v)
	}
	s.Heal()
	for range 40 {
		s.RunFor(250 * time.Millisecond)
		s.sweepServing()
	}
	if v := s.Violations(); len(v) > 0 {
		t.Fatalf("violations after healing: %v", v)
	}
	if len(s.serve.open) != 0 {
		t.Fatalf("collision on slot %d still open 10 s after healing", slot)
	}
	if s.LongestCollision() <= 0 {
		t.Fatal("the collision was not timed once the masters could talk")
	}
	t.Logf("resolved %v after the heal", s.LongestCollision())
}

// The checker fires when a collision outlives its bound between masters
// that can talk: here every frame is lost, so the collision rule never
// runs.
func TestServingCollisionBoundFires(t *testing.T) {
	s, _ := collidingTakeovers(t)
	s.Heal()
	s.SetLoss(0.9999)
	for range 40 {
		s.RunFor(250 * time.Millisecond)
		s.sweepServing()
	}
	v := s.Violations()
	if len(v) != 1 || !strings.Contains(v[0], "while they could talk") {
		t.Fatalf("violations = %q, want one about an unresolved collision", v)
	}
}

// Two nodes holding one agreed epoch is reported at once.
func TestServingAgreedEpochTwice(t *testing.T) {
	s := New(Options{Seed: 1})
	s.AddNodes(2)
	s.CheckServing()
	s.agreeEpoch(0, 7)
	s.agreeEpoch(0, 7)
	if v := s.Violations(); len(v) != 0 {
		t.Fatalf("one node agreeing its own epoch again was reported: %v", v)
	}
	s.agreeEpoch(1, 7)
	if v := s.Violations(); len(v) != 1 || !strings.Contains(v[0], "agreed twice") {
		t.Fatalf("violations = %q", v)
	}
}

// Two masters on opposite sides of a partition both ClaimSlots the same
// range of a third master's slots, as two atomic migrations gone wrong
// could: each takes currentEpoch+1 without a vote, so they collide. That
// is allowed while they cannot hear each other; after the heal the
// collision rule must split them, and every table must agree on one owner
// per slot, a live master.
func TestClaimSlotsAcrossPartition(t *testing.T) {
	s := New(Options{Seed: 11, KeepState: true, Core: gossip.Config{NodeTimeout: time.Second}})
	s.AddNodes(5)
	s.CheckServing()
	claims, err := s.BootCluster(0, 5, 3, wire.NumSlots)
	if err != nil {
		t.Fatal(err)
	}
	s.RunFor(2 * time.Second)
	lo := claims[2].Ranges[0].Start
	rs := []wire.SlotRange{{Start: lo, End: lo + 40}}
	s.Partition([]int{0, 3}, []int{1, 2, 4})
	for _, i := range []int{0, 1} {
		if err := s.ClaimSlots(i, rs); err != nil {
			t.Fatal(err)
		}
	}
	_, e0 := s.Core(0).Epochs()
	_, e1 := s.Core(1).Epochs()
	if e0 != e1 {
		t.Fatalf("the claims did not collide: configEpochs %d and %d", e0, e1)
	}
	s.RunFor(3 * time.Second)
	if v := s.Violations(); len(v) > 0 {
		t.Fatalf("violations while partitioned: %v", v)
	}
	// A claim mid-partition by the node on the majority side, again.
	if err := s.ClaimSlots(1, []wire.SlotRange{{Start: lo + 100, End: lo + 110}}); err != nil {
		t.Fatal(err)
	}
	s.Heal()
	at, ok := s.RunUntilTrue(func() bool {
		s.sweepServing()
		return agree(s) == ""
	}, 250*time.Millisecond, s.now+20*time.Second)
	if !ok {
		t.Fatalf("no agreement after the heal: %s", agree(s))
	}
	for range 20 {
		s.RunFor(250 * time.Millisecond)
		s.sweepServing()
	}
	if v := s.Violations(); len(v) > 0 {
		t.Fatalf("violations after healing: %v", v)
	}
	if len(s.serve.open) != 0 {
		t.Fatalf("collisions still open after healing: %+v", s.serve.open)
	}
	for _, v := range []string{tableMismatch(s, 0), sameEpochOwners(s, []int{0, 1, 2, 3, 4}), ownersAreMasters(s)} {
		if v != "" {
			t.Fatal(v)
		}
	}
	// Whichever claim won the collision, slot lo+100 went to node 1 alone.
	if owner, _ := s.Core(3).SlotOwner(lo + 100); owner != s.ID(1) {
		t.Fatalf("slot %d owned by %s, want node 1", lo+100, owner)
	}
	t.Logf("agreed %v after start, collisions %d, longest %v", at, s.Collisions(), s.LongestCollision())
}
