package gossip

import (
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// TestOneWayMeetLeavesNoGhost: node 0 MEETs node 1, whose every answer
// node 0 refuses (its cluster secret differs; modelled as a cut link from
// 1 to 0). Node 0's handshake times out, and node 1, which added node 0
// from the MEET, drops it after the handshake timeout instead of keeping
// it as a PFAIL ghost forever. A two-way MEET still joins for good.
func TestOneWayMeetLeavesNoGhost(t *testing.T) {
	tn := newTestNet(t, 2, nil)
	tn.cut[[2]int{1, 0}] = true
	r, err := tn.cores[0].Meet(tn.now, tn.cores[1].cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	tn.out(0, r)
	tn.run(200 * time.Millisecond)
	if _, ok := tn.cores[1].Node(tn.cores[0].ID()); !ok {
		t.Fatal("node 1 did not add node 0 from its MEET")
	}
	tn.run(3 * time.Second) // handshake timeout is 1 s here; MEETs are resent within it
	if _, ok := tn.cores[1].Node(tn.cores[0].ID()); ok {
		t.Fatal("node 1 still holds node 0, which never answered, after the handshake timeout")
	}
	if n := len(tn.cores[0].Nodes(nil)); n != 1 {
		t.Fatalf("node 0 lists %d nodes, want only itself", n)
	}
	if n := len(tn.cores[1].unmet); n != 0 {
		t.Fatalf("%d nodes still awaiting confirmation", n)
	}

	// Repaired: the same MEET now joins both for good.
	tn.cut[[2]int{1, 0}] = false
	r, _ = tn.cores[0].Meet(tn.now, tn.cores[1].cfg.Addr)
	tn.out(0, r)
	tn.run(5 * time.Second)
	for i, c := range tn.cores {
		if len(c.Nodes(nil)) != 2 {
			t.Fatalf("node %d lists %d nodes after a two-way MEET", i, len(c.Nodes(nil)))
		}
	}
	if err := tn.converged(); err != nil {
		t.Fatal(err)
	}
}

// TestResetNodeStaysAlone: after CLUSTER RESET HARD a node is not pulled
// back into its old cluster by the PINGs its old peers keep sending to its
// address (Redis adds unknown senders only from MEET); the old ID stays in
// their tables, FAIL, until forgotten, as in Redis; a MEET brings the node
// back under its new ID.
func TestResetNodeStaysAlone(t *testing.T) {
	tn := formed(t, 3, nil)
	old := tn.cores[2].ID()
	r, err := tn.cores[2].Reset(tn.now, true, testID(77))
	if err != nil {
		t.Fatal(err)
	}
	tn.out(2, r)
	tn.byID[testID(77)] = 2
	tn.run(5 * time.Second)
	if n := tn.cores[2].KnownNodes(); n != 1 {
		t.Fatalf("the reset node knows %d nodes, want only itself", n)
	}
	for i := range 2 {
		if !hasFlag(tn.cores[i], old, wire.FlagFail) {
			t.Fatalf("node %d does not hold the old ID FAIL", i)
		}
		if _, ok := tn.cores[i].Node(testID(77)); ok {
			t.Fatalf("node %d learned the reset node's new ID without a MEET", i)
		}
	}
	r, _ = tn.cores[0].Meet(tn.now, tn.cores[2].cfg.Addr)
	tn.out(0, r)
	tn.run(3 * time.Second)
	for i := range 3 {
		if _, ok := tn.cores[i].Node(testID(77)); !ok {
			t.Fatalf("node %d does not know the reset node after the MEET", i)
		}
	}
}

// A fresh node whose own MEET timed out (its answers lost, as when the
// node it met is too busy) still joins: the node it met took it from the
// MEET, and their PINGs bring it in. Only a reset node ignores them.
func TestFreshNodeJoinsAfterLostHandshake(t *testing.T) {
	tn := formed(t, 3, nil)
	tn.cores = append(tn.cores, nil)
	c, err := New(Config{ID: testID(3), Addr: testAddr(3), NodeTimeout: time.Second, Seed: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tn.cores[3] = c
	tn.byAddr[testAddr(3)], tn.byID[testID(3)] = 3, 3
	for i := range 3 {
		tn.cut[[2]int{i, 3}] = true // nothing reaches the new node
	}
	r, _ := c.Meet(tn.now, testAddr(0))
	tn.out(3, r)
	tn.run(3 * time.Second) // past the handshake timeout
	if n := c.KnownNodes(); n != 1 {
		t.Fatalf("the new node knows %d nodes with its answers cut, want 1", n)
	}
	for i := range 3 {
		delete(tn.cut, [2]int{i, 3})
	}
	tn.run(10 * time.Second)
	if n := c.KnownNodes(); n != 4 {
		t.Fatalf("the new node knows %d nodes after its handshake timed out, want 4", n)
	}
}
