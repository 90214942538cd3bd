package migrate

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// Config holds the migration's knobs. Zero values take the defaults named
// on each field; every timeout is scaled from NodeTimeout so that a cluster
// tuned for fast failure detection also gives up on a dead peer quickly.
type Config struct {
	// NodeTimeout is the cluster's node timeout. Default 5s.
	NodeTimeout time.Duration
	// AckTimeout is how long either side waits without hearing from the
	// other (an ACK on the source, any stream traffic on the target)
	// before it gives up. Default 2×NodeTimeout: one node timeout is
	// how long the cluster takes to suspect a peer, and the migration
	// should not give up before the cluster would.
	AckTimeout time.Duration
	// AckEvery is how often the target reports its applied offset.
	// Default NodeTimeout/10, at least 10ms.
	AckEvery time.Duration
	// PauseTimeout bounds how long the source keeps the slots' writes
	// paused waiting for the target to request the handoff. Default
	// NodeTimeout, at most 5s (Redis's manual-failover pause), at
	// least 100ms: it is the longest write stall a client can see.
	PauseTimeout time.Duration
	// HandoffTimeout is how long a source that granted the handoff
	// waits to see the target's claim before it asks the target to
	// confirm an abort. Default 2×NodeTimeout: the claim travels by
	// gossip, which may take a few rounds.
	HandoffTimeout time.Duration
	// ClaimWindow is how recent the handoff request a grant answers must
	// be for the target to claim. The grant echoes the target's own clock
	// from the request, so the target knows the source was alive at most
	// this long ago without comparing clocks. A replica of the source can
	// win an election only after the source was silent for a node
	// timeout, so a claim within half of one cannot race a failover of
	// the source. Default NodeTimeout/2.
	ClaimWindow time.Duration
	// CatchUpBytes is how close the target's applied offset must be to
	// the source's stream offset before the source pauses writes: the
	// pause then lasts only as long as the target needs to apply that
	// much. Default 1 MiB.
	CatchUpBytes uint64
	// LogLen is how many finished migrations Table keeps for
	// GETSLOTMIGRATIONS (Valkey's cluster-slot-migration-log-max-len).
	// Default 1000.
	LogLen int
}

// WithDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) WithDefaults() Config {
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = 5 * time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 2 * cfg.NodeTimeout
	}
	if cfg.AckEvery <= 0 {
		cfg.AckEvery = max(cfg.NodeTimeout/10, 10*time.Millisecond)
	}
	if cfg.PauseTimeout <= 0 {
		cfg.PauseTimeout = min(max(cfg.NodeTimeout, 100*time.Millisecond), 5*time.Second)
	}
	if cfg.HandoffTimeout <= 0 {
		cfg.HandoffTimeout = 2 * cfg.NodeTimeout
	}
	if cfg.ClaimWindow <= 0 {
		cfg.ClaimWindow = cfg.NodeTimeout / 2
	}
	if cfg.CatchUpBytes == 0 {
		cfg.CatchUpBytes = 1 << 20
	}
	if cfg.LogLen <= 0 {
		cfg.LogLen = 1000
	}
	return cfg
}

// resendEvery is how often an unanswered control message (a handoff
// request, an abort) is repeated: control messages may be lost with a
// connection, and repeating them is harmless because each is idempotent.
func (cfg *Config) resendEvery() time.Duration { return cfg.AckEvery }

// Slots is a set of slot ranges, each inclusive, in the order given.
type Slots []wire.SlotRange

// Contains reports whether slot is in one of the ranges.
func (s Slots) Contains(slot uint16) bool {
	for _, r := range s {
		if slot >= r.Start && slot <= r.End {
			return true
		}
	}
	return false
}

// Overlaps reports whether any slot is in both sets, and the first such.
func (s Slots) Overlaps(o Slots) (uint16, bool) {
	for _, a := range s {
		for _, b := range o {
			if a.Start <= b.End && b.Start <= a.End {
				return max(a.Start, b.Start), true
			}
		}
	}
	return 0, false
}

// Count returns how many slots the ranges hold.
func (s Slots) Count() int {
	n := 0
	for _, r := range s {
		n += int(r.End) - int(r.Start) + 1
	}
	return n
}

// String formats the ranges as GETSLOTMIGRATIONS does: "0-5 10-10".
func (s Slots) String() string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d-%d", r.Start, r.End)
	}
	return b.String()
}

// each calls f for every slot until f returns false.
func (s Slots) each(f func(uint16) bool) bool {
	for _, r := range s {
		for x := int(r.Start); x <= int(r.End); x++ {
			if !f(uint16(x)) {
				return false
			}
		}
	}
	return true
}

// Node is what a migration needs to know about one node.
type Node struct {
	ID       wire.NodeID
	IsMaster bool
	Master   wire.NodeID // zero unless a replica
	// Failed: the cluster agreed it failed (FAIL, not only PFAIL).
	Failed bool
}

// Cluster is the read-only view of the cluster the state machines use.
// gossip.Core can provide it; the runtime supplies progress numbers
// (offsets, keys, bytes) as event arguments instead.
type Cluster interface {
	// Self returns this node's ID.
	Self() wire.NodeID
	// Lookup returns a known node.
	Lookup(id wire.NodeID) (Node, bool)
	// SlotOwner returns the node slot is bound to and that binding's
	// configEpoch; a zero ID when unassigned.
	SlotOwner(slot uint16) (wire.NodeID, uint64)
	// LegacyMarks reports whether any slot of this node is open for the
	// compatible path: MIGRATING, IMPORTING (CLUSTER SETSLOT).
	LegacyMarks() (migrating, importing bool)
}

// Errors for CLUSTER MIGRATESLOTS and SYNCSLOTS ESTABLISH misuse. The texts
// are Valkey 9's where it has one; the others say what is wrong in the same
// style. Range errors carry their numbers, so they are built by the
// functions below.
var (
	ErrNotPrimary      = errors.New("ERR Slot migration can only be used on primary nodes")
	ErrSpanShards      = errors.New("ERR Requested slots span multiple shards")
	ErrNotServed       = errors.New("ERR Slots are not served by this node")
	ErrTargetSelf      = errors.New("ERR Target node can not be this node")
	ErrUnknownNode     = errors.New("ERR Unknown node name")
	ErrTargetReplica   = errors.New("ERR Target node is not a primary")
	ErrTargetFailed    = errors.New("ERR Target node is failed")
	ErrGroupsOverlap   = errors.New("ERR Slot ranges in migrations overlap")
	ErrManualMigrating = errors.New("ERR Slots are being manually migrated")
	ErrManualImporting = errors.New("ERR Slots are being manually imported")
	ErrNoRanges        = errors.New("ERR No slot ranges specified")
	ErrNoEndSlot       = errors.New("ERR No end slot for final slot range")
	ErrBadSlot         = errors.New("ERR Invalid or out of range slot")
	ErrSyntax          = errors.New("ERR syntax error")
	ErrBadNodeName     = errors.New("ERR Invalid node name")
	ErrNoMigrations    = errors.New("ERR No migrations ongoing")
	ErrUnknownSource   = errors.New("ERR Target node does not know the source node")
	ErrOwnership       = errors.New("ERR Target node does not agree about current slot ownership")
	ErrAlreadyImported = errors.New("ERR Slot is already being imported on the target by a different migration")
	ErrBadName         = errors.New("ERR Invalid migration name")
)

// errNoOwner is Valkey's error for an unassigned slot.
func errNoOwner(slot uint16) error {
	//lint:ignore ST1005 the text is Valkey's reply, full stop included
	return fmt.Errorf("ERR Slot %d has no node served.", slot)
}

// errAlreadyMigrating is Valkey's error for a slot in a running export.
func errAlreadyMigrating(slot uint16) error {
	return fmt.Errorf("ERR I am already migrating slot %d", slot)
}

// errStartAfterEnd is Valkey's error for a reversed range.
func errStartAfterEnd(s, e int) error {
	//lint:ignore ST1005 the text is Valkey's reply, full stop included
	return fmt.Errorf("ERR Start slot number %d is greater than end slot number %d.", s, e)
}

// errRangeOverlap is Valkey's error for two overlapping ranges in a group.
func errRangeOverlap(a, b wire.SlotRange) error {
	//lint:ignore ST1005 the text is Valkey's reply, full stop included
	return fmt.Errorf("ERR Slot range %d-%d overlaps with previous range %d-%d.", a.Start, a.End, b.Start, b.End)
}

// Reasons a migration ends, for Status.Message and Note intents. Valkey's
// texts where it has them.
const (
	ReasonAckTimeout     = "Timed out after too long with no interaction"
	ReasonTargetLost     = "Connection lost to target"
	ReasonNoProgress     = "Target stopped applying the stream"
	ReasonSourceLost     = "Connection lost to source"
	ReasonTargetFailed   = "Target node failed"
	ReasonSourceFailed   = "Source node failed"
	ReasonNotOwner       = "Slots are no longer owned by myself"
	ReasonSourceNotOwner = "Slots are no longer owned by source node"
	ReasonFailover       = "A failover occurred during slot import"
	ReasonDemoted        = "This node is no longer a primary"
	ReasonPauseTimeout   = "Unpaused before migration completed"
	ReasonCancelled      = "Cancelled by user request"
	ReasonRestarted      = "Node restarted during the migration"
	ReasonAborted        = "Aborted by the source"
	ReasonNotClaimed     = "Target confirmed it did not claim the slots"
)

// Notes reported with Note intents for events that change nothing else.
const (
	NoteStarted        = "migration started"
	NoteSnapshotDone   = "snapshot sent, streaming writes"
	NotePaused         = "target caught up, writes to the slots paused"
	NoteGranted        = "handoff granted"
	NoteClaimed        = "slots claimed"
	NoteClaimSeen      = "target's claim seen, deleting the slots"
	NoteAskAbort       = "no claim seen, asking the target to confirm an abort"
	NoteCancelDeferred = "cancel after the grant: waiting for the target to confirm it did not claim"
	NoteFinished       = "migration finished"
)
