package gossip

import (
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
