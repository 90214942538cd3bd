package gossip

import (
	"errors"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// checkOwned fails unless every live core binds rs to id at epoch.
func checkOwned(t *testing.T, tn *testNet, rs []wire.SlotRange, id wire.NodeID, epoch uint64) {
	t.Helper()
	for _, i := range tn.live() {
		for _, r := range rs {
			for s := int(r.Start); s <= int(r.End); s++ {
				owner, e := tn.cores[i].SlotOwner(uint16(s))
				if owner != id || e != epoch {
					t.Fatalf("node %d: slot %d owned by %s at %d, want %s at %d", i, s, owner, e, id, epoch)
				}
			}
		}
	}
}

// uniqueEpochs fails if two masters that serve slots share a configEpoch
// in any live core's view.
func uniqueEpochs(t *testing.T, tn *testNet) {
	t.Helper()
	for _, i := range tn.live() {
		seen := map[uint64]wire.NodeID{}
		for _, v := range tn.cores[i].Nodes(nil) {
			if v.Flags&wire.FlagMaster == 0 || tn.cores[i].SlotCount(v.ID) == 0 {
				continue
			}
			if o, ok := seen[v.ConfigEpoch]; ok {
				t.Fatalf("node %d: %s and %s both at configEpoch %d", i, o, v.ID, v.ConfigEpoch)
			}
			seen[v.ConfigEpoch] = v.ID
		}
	}
}

func TestClaimSlotsTakesFromLowerEpoch(t *testing.T) {
	tn := formed(t, 3, nil)
	a, b := tn.cores[0], tn.cores[1]
	part := []wire.SlotRange{{Start: 0, End: 99}, {Start: 200, End: 200}}
	cur, _ := b.Epochs()
	r, err := b.ClaimSlots(tn.now, part)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Persist {
		t.Fatal("ClaimSlots did not ask for persist before sending")
	}
	// Pushed to every node at once, not left to gossip.
	to := map[wire.NodeID]bool{}
	for _, e := range r.Messages {
		for _, cl := range e.Msg.Claims {
			if cl.Owner == b.ID() {
				to[e.To] = true
			}
		}
	}
	if !to[a.ID()] || !to[tn.cores[2].ID()] {
		t.Fatalf("claim pushed to %v, want both other nodes", to)
	}
	newCur, cfg := b.Epochs()
	if newCur != cur+1 || cfg != newCur {
		t.Fatalf("epochs after claim %d/%d, currentEpoch was %d", newCur, cfg, cur)
	}
	// Our own table has them before anything arrives anywhere.
	if owner, e := b.SlotOwner(0); owner != b.ID() || e != cfg {
		t.Fatalf("claimer's own table: slot 0 at %s/%d", owner, e)
	}
	tn.out(1, r)
	tn.run(100 * time.Millisecond)
	checkOwned(t, tn, part, b.ID(), cfg)
	if got := a.SlotCount(a.ID()); got != 16384/3-101 {
		t.Fatalf("A serves %d slots after losing 101", got)
	}
	if !hasFlag(a, a.ID(), wire.FlagMaster) {
		t.Fatal("A, still holding slots, stopped being a master")
	}
	uniqueEpochs(t, tn)
	tn.run(2 * time.Second)
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}

	// Claiming the rest of A's slots leaves A empty: it follows B, as
	// Redis's master does when a failover takes its last slot.
	rest := []wire.SlotRange{{Start: 100, End: 199}, {Start: 201, End: 16384/3 - 1}}
	r, err = b.ClaimSlots(tn.now, rest)
	if err != nil {
		t.Fatal(err)
	}
	tn.out(1, r)
	tn.run(2 * time.Second)
	_, cfg2 := b.Epochs()
	if cfg2 <= cfg {
		t.Fatalf("second claim kept configEpoch %d (first %d)", cfg2, cfg)
	}
	checkOwned(t, tn, append(rest, part...), b.ID(), cfg2)
	for _, i := range tn.live() {
		v, _ := tn.cores[i].Node(a.ID())
		if v.Flags&wire.FlagReplica == 0 || v.Master != b.ID() {
			t.Fatalf("node %d sees A as %+v, want a replica of B", i, v)
		}
	}
	uniqueEpochs(t, tn)
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}
}

// A claim must survive the old owner's gossip at its old epoch, which keeps
// arriving until it learns of the claim.
func TestClaimSlotsBeatsStaleGossip(t *testing.T) {
	tn := formed(t, 3, nil)
	a, b := tn.cores[0], tn.cores[1]
	tn.partition([]int{0}, []int{1, 2}, true)
	part := []wire.SlotRange{{Start: 10, End: 20}}
	r, err := b.ClaimSlots(tn.now, part)
	if err != nil {
		t.Fatal(err)
	}
	tn.out(1, r)
	tn.run(500 * time.Millisecond)
	_, cfg := b.Epochs()
	if owner, _ := a.SlotOwner(10); owner != a.ID() {
		t.Fatalf("A, cut off, lost slot 10 to %s", owner)
	}
	if owner, e := tn.cores[2].SlotOwner(10); owner != b.ID() || e != cfg {
		t.Fatalf("C binds slot 10 to %s/%d", owner, e)
	}
	tn.partition([]int{0}, []int{1, 2}, false)
	tn.run(3 * time.Second)
	checkOwned(t, tn, part, b.ID(), cfg)
	uniqueEpochs(t, tn)
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}
}

func TestClaimSlotsErrors(t *testing.T) {
	tn := withReplica(t)
	for _, rs := range [][]wire.SlotRange{nil, {{Start: 5, End: 4}}, {{Start: 0, End: 16384}}} {
		cur, cfg := tn.cores[0].Epochs()
		if _, err := tn.cores[0].ClaimSlots(tn.now, rs); !errors.Is(err, ErrSlotRange) {
			t.Fatalf("ClaimSlots(%v): %v", rs, err)
		}
		if c2, f2 := tn.cores[0].Epochs(); c2 != cur || f2 != cfg {
			t.Fatal("a refused claim changed the epochs")
		}
	}
	if _, err := tn.cores[2].ClaimSlots(tn.now, []wire.SlotRange{{Start: 0, End: 0}}); err != ErrReplicaSlots {
		t.Fatalf("ClaimSlots on a replica: %v", err)
	}
	if owner, _ := tn.cores[0].SlotOwner(0); owner != tn.cores[0].ID() {
		t.Fatal("a refused claim moved a slot")
	}
}
