package migrate

import (
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// IntentKind says what the runtime must do for an Intent.
type IntentKind uint8

// Intents, in the order a migration usually emits them. The runtime carries
// out the intents of one call in the order given: a Persist always comes
// before the message whose sending it must precede.
const (
	// Persist writes State (or removes the record of Job when State is
	// nil) to durable storage with fsync before any later intent of the
	// same call is carried out. See HardState.
	Persist IntentKind = iota + 1
	// Connect opens the migration connection to Node's client port,
	// authenticates as a replica would, and sends SYNCSLOTS ESTABLISH
	// with Job, this node's ID, Slots and Epoch (the slots' configEpoch
	// at the start). Its +OK reaches the Export as Established.
	Connect
	// StartSnapshot cuts a snapshot of Slots without stopping the event
	// loop, as a replication full sync does, and from that cut on
	// captures every write to Slots for the stream. The snapshot goes on
	// the connection as RESTORE-like records; SnapshotDone reports its
	// end.
	StartSnapshot
	// StreamWrites sends SYNCSLOTS SNAPSHOT-EOF, then the captured writes
	// and every later write to Slots, as effects (as the replication
	// stream does). Streamed reports the stream offset as it grows.
	StreamWrites
	// PauseWrites stops accepting writes to Slots (only those): they
	// wait, they are not refused, so no client sees TRYAGAIN. Reads go
	// on. Once every accepted write is in the stream, the runtime calls
	// WritesPaused with the stream offset.
	PauseWrites
	// ResumeWrites ends a pause of Slots: waiting writes are served, or
	// answered MOVED if the slots now belong to another node.
	ResumeWrites
	// SendPaused sends SYNCSLOTS PAUSED Offset: the stream ends there.
	SendPaused
	// SendGrant sends SYNCSLOTS FAILOVER-GRANTED Stamp: the target may
	// claim. Stamp echoes the request it answers.
	SendGrant
	// SendAbort sends SYNCSLOTS ABORT Job (reconnecting if need be): the
	// target answers ABORTED if it has not claimed and never will, or
	// CLAIMED. The reply reaches the Export as AbortConfirmed or, for
	// CLAIMED, is only a hint: the source waits for gossip.
	SendAbort
	// DeleteSlots deletes this node's keys in Slots: the target's claim
	// was seen, the keys are its now.
	DeleteSlots
	// CloseLink closes the migration connection of Job, if open.
	CloseLink
	// SendAck sends SYNCSLOTS ACK Offset from the target: what it applied.
	SendAck
	// RequestHandoff sends SYNCSLOTS REQUEST-FAILOVER Offset Stamp: the
	// target applied the whole stream up to the paused offset. Stamp is
	// the target's now, in nanoseconds, which the grant echoes.
	RequestHandoff
	// ClaimSlots makes this node the owner of Slots with a new configEpoch
	// above every epoch it knows (a bump without consensus, as SETSLOT
	// NODE ends), made durable before it is announced, and announces it
	// at once to every node. The runtime reports nothing back.
	ClaimSlots
	// DropImported deletes this node's keys in Slots, which it received
	// but never owned; the deletion replicates to its replicas.
	DropImported
	// SendAborted answers an abort: this node has not claimed Job's slots
	// and no longer can.
	SendAborted
	// SendClaimed answers an abort: this node already claimed the slots.
	SendClaimed
	// SendPing writes a keepalive on the migration connection (as the
	// replication stream's PING) so that an idle stream does not look
	// like a dead source to the target.
	SendPing
	// Note reports an event worth a log line; Reason says which.
	Note
)

var intentNames = [...]string{"", "persist", "connect", "start-snapshot", "stream-writes",
	"pause-writes", "resume-writes", "send-paused", "send-grant", "send-abort", "delete-slots",
	"close-link", "send-ack", "request-handoff", "claim-slots", "drop-imported", "send-aborted",
	"send-claimed", "send-ping", "note"}

// String names the kind.
func (k IntentKind) String() string {
	if int(k) < len(intentNames) && k > 0 {
		return intentNames[k]
	}
	return "unknown"
}

// Intent is one thing the runtime must do, or an event worth a log line.
type Intent struct {
	Kind IntentKind
	// Job is the migration's name.
	Job string
	// Node is the peer: the target for an export, the source for an
	// import.
	Node  wire.NodeID
	Slots Slots
	// Offset is a stream offset (SendPaused, SendAck, RequestHandoff).
	Offset uint64
	// Epoch is the slots' configEpoch when the migration began (Connect,
	// SendAbort): a claim above it is the handoff.
	Epoch uint64
	// Stamp is the target's clock when it sent a handoff request
	// (RequestHandoff), echoed by the grant (SendGrant).
	Stamp time.Duration
	// State is the record to write (Persist); nil removes it.
	State *HardState
	// Reason explains a Note or a failure.
	Reason string
}

// Operation is the side of a migration.
type Operation uint8

// Operations, named as GETSLOTMIGRATIONS names them.
const (
	OpExport Operation = iota + 1
	OpImport
)

// String returns "EXPORT" or "IMPORT".
func (o Operation) String() string {
	switch o {
	case OpExport:
		return "EXPORT"
	case OpImport:
		return "IMPORT"
	}
	return "UNKNOWN"
}

// State is where a migration stands. The names are Valkey's where it has
// the same state.
type State uint8

// States. Export: Connecting → Snapshotting → WaitingToPause → Pausing →
// Paused → Granted → Success, or Failed/Cancelled before the grant. Import:
// ReceivingSnapshot → WaitingForPaused → HandoffRequested → Success, or
// Failed/Cancelled before the claim.
const (
	Connecting State = iota + 1
	Snapshotting
	WaitingToPause
	Pausing
	Paused
	Granted
	ReceivingSnapshot
	WaitingForPaused
	HandoffRequested
	Success
	Failed
	Cancelled
)

var stateNames = [...]string{"", "connecting", "snapshotting", "waiting-to-pause", "pausing",
	"failover-paused", "failover-granted", "receive-snapshot", "waiting-for-paused",
	"failover-requested", "success", "failed", "cancelled"}

// String names the state as GETSLOTMIGRATIONS shows it.
func (s State) String() string {
	if int(s) < len(stateNames) && s > 0 {
		return stateNames[s]
	}
	return "unknown"
}

// Done reports whether the state is terminal.
func (s State) Done() bool { return s >= Success }

// Status is one row of CLUSTER GETSLOTMIGRATIONS.
type Status struct {
	Name      string
	Operation Operation
	Slots     Slots
	Source    wire.NodeID
	Target    wire.NodeID
	State     State
	// Created, Updated and LastAck are on the caller's clock (the now
	// passed in); the runtime converts them to Unix seconds.
	Created, Updated, LastAck time.Duration
	// Keys and Bytes moved so far: sent by an export, applied by an
	// import.
	Keys, Bytes uint64
	// Remaining is how far the target's applied offset trails the
	// stream, as the source last heard (Valkey's remaining_repl_size).
	Remaining uint64
	// Message is why it failed or was cancelled, or what it waits for.
	Message string
}
