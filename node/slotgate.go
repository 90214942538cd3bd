package node

import (
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/migrate"
	"github.com/hearsay/hearsay/ring"
)

// The per-slot write gate of an atomic slot migration (migrate's
// PauseWrites and ResumeWrites intents), next to the manual failover's
// whole-node pause in bus.go. Writes to the paused slots park on their
// client loops with their connection (which then reads nothing further,
// so a pipeline keeps its order) and run again on resume through the
// router, which serves them or answers the MOVED of a new owner. Nothing
// is answered TRYAGAIN, and reads and other slots go on.

// pauseSlots closes the gate on rs and returns the replication offset
// that every write to them accepted before it reached: the offset
// migrate's Export.WritesPaused wants, final for those slots until
// resumeSlots. Like bus.pauseWrites it may wait for writes running in
// those slots to finish, never for parked ones.
func (n *Node) pauseSlots(rs []wire.SlotRange) int64 {
	n.disp.PauseSlotWrites(ringRanges(rs))
	off := n.repl.Offset()
	n.log.Info("migrate: writes paused", "slots", migrate.Slots(rs).String(), "offset", off)
	return off
}

// resumeSlots reopens the gate on rs; the writes parked on them run again
// in the order they parked.
func (n *Node) resumeSlots(rs []wire.SlotRange) {
	n.disp.ResumeSlotWrites(ringRanges(rs))
	n.log.Info("migrate: writes resumed", "slots", migrate.Slots(rs).String())
}

func ringRanges(rs []wire.SlotRange) []ring.Range {
	out := make([]ring.Range, len(rs))
	for i, r := range rs {
		out[i] = ring.Range{Start: r.Start, End: r.End}
	}
	return out
}
