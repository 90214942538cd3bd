//lint:file-ignore ST1005 admin errors carry Redis's exact texts, punctuation included.

package gossip

import (
	"errors"
	"time"

	"github.com/hearsay/hearsay/gossip/epidemic"
	"github.com/hearsay/hearsay/gossip/wire"
)

// Config holds the knobs of one core. Zero values take the documented
// defaults (see withDefaults).
type Config struct {
	// ID is this node's identity. It must not be zero.
	ID wire.NodeID
	// Addr is where this node listens for clients and the bus.
	Addr wire.Addr
	// NodeTimeout is how long a monitored peer may stay silent before it is
	// PFAIL. Failure reports expire after twice this. Default 5s.
	NodeTimeout time.Duration
	// GossipInterval is the period of the gossip PING to one random peer
	// while rumors are waiting to be sent. Default 100ms. With nothing to
	// spread, the random PING goes out once per SyncInterval instead: it
	// still compares digests and probes a random peer, for a tenth of the
	// idle traffic.
	GossipInterval time.Duration
	// PingInterval is how often monitored peers are pinged on the bus when
	// heartbeats do not come from outside (ExternalHeartbeat false).
	// Default NodeTimeout/2 (Redis's rule), at least GossipInterval.
	PingInterval time.Duration
	// HeartbeatInterval is how often HeartbeatPlan asks for a round of
	// heartbeat PINGs when ExternalHeartbeat is set. Default
	// NodeTimeout/4: a peer must miss four in a row before it is PFAIL,
	// so one lost datagram never accuses anyone, and idle heartbeat
	// traffic stays proportional to 1/NodeTimeout.
	HeartbeatInterval time.Duration
	// HeartbeatPhase aligns the rounds to a grid: after the first, rounds
	// fall due at the times t with (t + HeartbeatPhase) a multiple of
	// HeartbeatInterval. A runtime that derives it from the wall clock
	// makes every node of a fleet ping at the same instants, so that each
	// node receives its peers' PINGs together and wakes once per round
	// for all of them instead of once per peer.
	HeartbeatPhase time.Duration
	// SyncInterval is the period of the push-pull anti-entropy exchange with
	// one peer whose state digest differs from ours. Default 1s; half of it
	// while the table gained nodes since the last exchange. While
	// heartbeat rounds run on their grid (ExternalHeartbeat) at least as
	// often, this round and the idle gossip PING run on the heartbeat
	// round nearest their due time, so an idle node wakes only for the
	// rounds.
	SyncInterval time.Duration
	// Lambda scales the rumor retransmit budget: Lambda*ceil(log2(N+1)).
	// Default 2: eager forwarding and anti-entropy carry convergence, so
	// the piggyback budget only mops up; at 3 a 1000-node join kept gossip
	// sections full (12.8 KB/s per node) long after it converged.
	Lambda int
	// Fanout is how many random peers a newly learned FAIL or config change is
	// pushed to at once, before it continues as a piggybacked rumor. Default 3.
	Fanout int
	// Observers is K, the number of nodes that watch each node at scale.
	// Default 8.
	Observers int
	// MaxGossip bounds the node records in one gossip section. Default 8.
	MaxGossip int
	// MaxClaims bounds the slot claims piggybacked on one PING or PONG.
	// Default 4.
	MaxClaims int
	// SmallCluster is the largest number of slot-owning masters for which
	// Redis's rules apply: every master is a voter and FAIL goes to every
	// node. Above it the subject's observers vote. Default 64.
	SmallCluster int
	// ExternalHeartbeat says liveness samples arrive through Heartbeat (XDP
	// or the UDP fallback), so the core does not ping monitored peers on
	// the bus just for liveness. The runtime then drives the transport
	// with HeartbeatPlan.
	ExternalHeartbeat bool
	// AntiEntropy picks the direction of the periodic state exchange. The
	// zero value is push-pull, the node's default.
	AntiEntropy SyncDirection
	// ValidityFactor is Redis's cluster-replica-validity-factor: how many
	// node timeouts a replica's link to its master may have been down and
	// still fail over automatically. 0 takes Redis's 10; negative means
	// any age.
	ValidityFactor int
	// ManualFailoverTimeout bounds CLUSTER FAILOVER. Default 5s, as Redis.
	ManualFailoverTimeout time.Duration
	// MigrationBarrier is Redis's cluster-migration-barrier: a replica
	// moves to an orphaned master only if its own master keeps more than
	// this many working replicas. 0 takes Redis's default, 1; negative
	// turns replica migration off (cluster-allow-replica-migration no).
	MigrationBarrier int
	// StateCurrent vouches that the state given to New is the cluster's
	// current view (a simulator booting a cluster it formed in memory), so
	// the core skips the vote hold a restart from saved state gets. A node
	// restarting from its config file must leave it false: its file may
	// predate an election it slept through.
	StateCurrent bool
	// Seed seeds the core's own random source. Cores with the same seed and
	// the same inputs make the same decisions.
	Seed uint64
}

// SyncDirection is the direction of the anti-entropy exchange, in the seed
// article's terms: push sends our records, pull asks for the peer's, and
// push-pull does both in three messages.
type SyncDirection uint8

// Anti-entropy directions.
const (
	SyncPushPull SyncDirection = iota
	SyncPull
	SyncPush
)

// Direction maps d onto the epidemic package's directions.
func (d SyncDirection) Direction() epidemic.Direction {
	switch d {
	case SyncPull:
		return epidemic.Pull
	case SyncPush:
		return epidemic.Push
	}
	return epidemic.PushPull
}

// HeartbeatSample is what the heartbeat path last saw of one peer. Times are
// on the same monotonic clock as the core's now.
type HeartbeatSample struct {
	PongsRecv uint64
	LastPong  time.Duration
	RTT       time.Duration
	Progress  uint64
}

// Envelope is one message to send. Msg is owned by the core and valid until
// the next call into the core: encode it before calling again.
type Envelope struct {
	To   wire.NodeID // zero for a handshake MEET, where only Addr is known
	Addr wire.Addr
	Msg  *wire.Message
}

// EventKind says what changed.
type EventKind uint8

// Events reported in Ready.
const (
	EventNodeAdded       EventKind = iota + 1 // a node joined the table
	EventNodeRemoved                          // a node was forgotten or reset away
	EventNodePFail                            // this node stopped hearing a monitored peer
	EventNodeAlive                            // a PFAIL peer was heard again
	EventNodeFail                             // a node was marked FAIL
	EventNodeFailCleared                      // a FAIL was undone
	EventRoleChanged                          // this node became master or replica
	EventSlotsChanged                         // the slot table changed
	EventEpochChanged                         // currentEpoch or this node's configEpoch changed
	EventSelfFailed                           // this node learned that the cluster holds it FAIL
)

var eventNames = [...]string{"", "node-added", "node-removed", "node-pfail", "node-alive", "node-fail", "node-fail-cleared", "role-changed", "slots-changed", "epoch-changed", "self-failed"}

// String names the event kind.
func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one change, about Node where that applies.
type Event struct {
	Kind EventKind
	Node wire.NodeID
}

// Ready is the output of one call into the core. The runtime must make the
// state durable (when Persist is set) before it sends Messages.
type Ready struct {
	Messages []Envelope
	// Persist is set when epochs, votes, roles, slots or membership changed;
	// write State() before any message leaves.
	Persist bool
	// Dirty is set when anything worth saving changed (membership included);
	// it may be written lazily, coalesced with later changes.
	Dirty  bool
	Events []Event
	// Failover reports election steps, votes and manual-failover steps.
	Failover []FailoverEvent
	// PauseWrites, when non-zero, asks the runtime to pause client writes
	// until then (this master's manual failover), and to report the
	// replication offset it paused at with WritesPaused.
	PauseWrites time.Duration
	// ResumeWrites ends a pause.
	ResumeWrites bool
}

// Errors returned by admin calls. Texts follow Redis where Redis has one.
var (
	ErrUnknownNode      = errors.New("ERR Unknown node")
	ErrForgetMyself     = errors.New("ERR I tried hard but I can't forget myself...")
	ErrForgetMaster     = errors.New("ERR Can't forget my master!")
	ErrSlotBusy         = errors.New("ERR Slot is already busy")
	ErrSlotRange        = errors.New("ERR Invalid or out of range slot")
	ErrNotEmptyForEpoch = errors.New("ERR The user can assign a config epoch only when the node does not know any other node.")
	ErrEpochNotZero     = errors.New("ERR Node config epoch is already non-zero")
	ErrBadEpoch         = errors.New("ERR Invalid config epoch specified")
	ErrReplicateMyself  = errors.New("ERR Can't replicate myself")
	ErrReplicateReplica = errors.New("ERR I can only replicate a master, not a replica.")
	ErrReplicateSlots   = errors.New("ERR To set a master the node must be empty and without assigned slots.")
	ErrBadAddr          = errors.New("ERR Invalid node address specified")
	ErrNotOwner         = errors.New("ERR I'm not the owner of hash slot")
	ErrSlotUnassigned   = errors.New("ERR Slot is not assigned")
	ErrResetMaster      = errors.New("ERR CLUSTER RESET can't be called with master nodes containing keys")
	ErrSetSlotReplica   = errors.New("ERR Please use SETSLOT only with masters.")
	ErrReplicaSlots     = errors.New("ERR Replica can't own slots")
)
