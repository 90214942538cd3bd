package node

import (
	"testing"

	"github.com/hearsay/hearsay/node/command"
	"github.com/hearsay/hearsay/ring"
)

// TestRouteLocalFastPath checks that the local-slot bitmap serves exactly
// the slots the full rules serve without a redirect: owned by self and not
// MIGRATING.
func TestRouteLocalFastPath(t *testing.T) {
	self, other := ring.NodeID{1}, ring.NodeID{2}
	var tb ring.Table
	for slot := range uint16(ring.Slots) {
		owner := self
		if slot%3 == 0 {
			owner = other
		}
		if slot%7 == 0 {
			continue // unassigned
		}
		if err := tb.Assign(slot, owner, 1); err != nil {
			t.Fatal(err)
		}
	}
	for _, slot := range []uint16{1, 2, 100, 16383} {
		if err := tb.SetMigrating(slot, other); err != nil {
			t.Fatal(err)
		}
	}
	snap := tb.Snapshot()
	local := localSlots(snap, self)
	for slot := range uint16(ring.Slots) {
		owner, _ := snap.Owner(slot)
		_, mig := snap.Migrating(slot)
		want := owner == self && !mig
		if got := local[slot>>6]&(1<<(slot&63)) != 0; got != want {
			t.Fatalf("slot %d: local %v, want %v (owner %v, migrating %v)", slot, got, want, owner, mig)
		}
	}
	// Route agrees: a local slot is served, the others are not when the
	// cluster is down.
	n := &Node{}
	n.view.Store(&routeView{snap: snap, self: self, ok: false, local: local})
	conn := &command.ConnState{}
	cmd := &command.Command{Name: "get"}
	if _, ok := n.Route(conn, cmd, 4, nil); ok {
		t.Fatal("served a local slot with the cluster down")
	}
	n.view.Store(&routeView{snap: snap, self: self, ok: true, local: local})
	if _, ok := n.Route(conn, cmd, 4, nil); !ok {
		t.Fatal("did not serve a local slot")
	}
	if msg, ok := n.Route(conn, cmd, 3, nil); ok || msg != errUnbound {
		t.Fatalf("slot 3 (no address for its owner): %q %v", msg, ok)
	}
}

// ownAll returns a snapshot in which self owns every slot.
func ownAll(self ring.NodeID) *ring.Snapshot {
	var tb ring.Table
	for slot := range uint16(ring.Slots) {
		_ = tb.Assign(slot, self, 1)
	}
	return tb.Snapshot()
}

func BenchmarkLocalSlots(b *testing.B) {
	self := ring.NodeID{1}
	snap := ownAll(self)
	b.ReportAllocs()
	for b.Loop() {
		localSlots(snap, self)
	}
}

func TestLocalSlotsEmptyTable(t *testing.T) {
	var tb ring.Table
	if b := localSlots(tb.Snapshot(), ring.NodeID{1}); *b != [ring.Slots / 64]uint64{} {
		t.Fatal("an empty table serves slots")
	}
	if b := localSlots(nil, ring.NodeID{1}); *b != [ring.Slots / 64]uint64{} {
		t.Fatal("a nil snapshot serves slots")
	}
}

// BenchmarkRoute is Route for a slot of ours: the bitmap fast path, and
// the full rules (an empty bitmap) that every command ran before it.
func BenchmarkRoute(b *testing.B) {
	self := ring.NodeID{1}
	snap := ownAll(self)
	conn := &command.ConnState{}
	cmd := &command.Command{Name: "get"}
	for _, bc := range []struct {
		name  string
		local *[ring.Slots / 64]uint64
	}{{"bitmap", localSlots(snap, self)}, {"full", new([ring.Slots / 64]uint64)}} {
		b.Run(bc.name, func(b *testing.B) {
			n := &Node{}
			n.view.Store(&routeView{snap: snap, self: self, ok: true, local: bc.local})
			slot := uint16(0)
			for b.Loop() {
				if _, ok := n.Route(conn, cmd, slot, nil); !ok {
					b.Fatal("not served")
				}
				slot = (slot + 4099) & (ring.Slots - 1)
			}
		})
	}
}
