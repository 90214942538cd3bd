package failover

import (
	"errors"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// Config holds the election's knobs. Zero values take the defaults named on
// each field.
type Config struct {
	// NodeTimeout is the cluster's node timeout. Every election delay and
	// timeout is scaled from it. Default 5s.
	NodeTimeout time.Duration
	// ValidityFactor is Redis's cluster-replica-validity-factor: a replica
	// whose link to its master has been down for longer than
	// NodeTimeout×ValidityFactor + ReplPingPeriod (on top of one node
	// timeout) holds data too old to take over automatically. 0 means
	// any age is acceptable. Default 10.
	ValidityFactor int
	// ReplPingPeriod is how often a master pings its replicas on the
	// replication stream (repl-ping-replica-period). Default 10s.
	ReplPingPeriod time.Duration
	// ManualTimeout bounds a manual failover, as Redis's 5 seconds: the
	// master's writes stay paused at most twice this. Default 5s.
	ManualTimeout time.Duration
}

// WithDefaults returns cfg with zero fields set to their defaults.
// ValidityFactor is left alone when negative (which means "any age").
func (cfg Config) WithDefaults() Config {
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = 5 * time.Second
	}
	if cfg.ValidityFactor == 0 {
		cfg.ValidityFactor = 10
	}
	if cfg.ReplPingPeriod <= 0 {
		cfg.ReplPingPeriod = 10 * time.Second
	}
	if cfg.ManualTimeout <= 0 {
		cfg.ManualTimeout = 5 * time.Second
	}
	return cfg
}

// authTimeout is how long one election may collect votes: twice the node
// timeout, as Redis, but with a floor scaled for short timeouts rather
// than Redis's fixed 2 seconds.
func (cfg *Config) authTimeout() time.Duration { return max(2*cfg.NodeTimeout, 100*time.Millisecond) }

// retryAfter is when a failed election may start again (Redis: twice the
// auth timeout).
func (cfg *Config) retryAfter() time.Duration { return 2 * cfg.authTimeout() }

// resendEvery is how often a candidate repeats its request to the masters
// that have not voted yet: a master that had not yet marked the old master
// FAIL refuses without spending its vote, and may grant a moment later.
func (cfg *Config) resendEvery() time.Duration { return max(cfg.NodeTimeout/10, 10*time.Millisecond) }

// rankDelay is the extra wait per rank: a replica with less data gives the
// better ones time to win first. Redis waits one second per rank whatever
// the node timeout; a quarter of the timeout keeps the order at every scale.
func (cfg *Config) rankDelay() time.Duration { return max(cfg.NodeTimeout/4, 5*time.Millisecond) }

// quickRetry is how long the requests of one round may go unanswered by a
// majority before the candidate asks again in a fresh epoch (plus up to half
// as much jitter, so that two colliding candidates do not move together).
// Half a rank delay: when it fires (at most 3/4 of a rank delay after the
// first request), the next-ranked sibling has not asked yet, so it does not
// split the voters with the best replica's second round.
func (cfg *Config) quickRetry() time.Duration { return cfg.rankDelay() / 2 }

// maxQuickRetries bounds the fresh-epoch rounds of one attempt; after them
// the round runs to the auth timeout as in Redis.
const maxQuickRetries = 2

// maxDataAge is the oldest replica data that may still take over.
func (cfg *Config) maxDataAge() time.Duration {
	if cfg.ValidityFactor < 0 {
		return -1
	}
	return cfg.NodeTimeout*time.Duration(cfg.ValidityFactor) + cfg.ReplPingPeriod
}

// Node is what an election needs to know about one node.
type Node struct {
	ID         wire.NodeID
	Master     wire.NodeID // zero unless a replica
	IsMaster   bool
	Failed     bool // FAIL: the cluster agreed it failed
	PFail      bool // this node has not heard from it for node-timeout
	NoFailover bool
	Slots      int // slots it serves in this node's table
	// ConfigEpoch is the node's configEpoch; ReplOffset its replication
	// offset as last heard.
	ConfigEpoch, ReplOffset uint64
}

// Cluster is the read-only view of the cluster the state machines use.
// gossip.Core provides one.
type Cluster interface {
	// Self returns this node's ID.
	Self() wire.NodeID
	// CurrentEpoch returns this node's currentEpoch.
	CurrentEpoch() uint64
	// Lookup returns a known node.
	Lookup(id wire.NodeID) (Node, bool)
	// Replicas appends the replicas of master, this node included if it is one.
	Replicas(master wire.NodeID, dst []Node) []Node
	// FailedMasters appends the IDs of the FAIL masters that still serve
	// slots, in ascending ID order.
	FailedMasters(dst []wire.NodeID) []wire.NodeID
	// Voters returns how many masters serve slots: a majority of them
	// elects.
	Voters() int
	// SlotsOf appends the slots master serves as ranges.
	SlotsOf(master wire.NodeID, dst []wire.SlotRange) []wire.SlotRange
	// SlotEpoch returns the configEpoch slot is bound at, 0 if unassigned.
	SlotEpoch(slot uint16) uint64
}

// Mode is how a failover was asked for.
type Mode uint8

// Failover modes: automatic (the master is FAIL), and CLUSTER FAILOVER's
// default, FORCE and TAKEOVER.
const (
	ModeAuto Mode = iota
	ModeDefault
	ModeForce
	ModeTakeover
)

var modeNames = [...]string{"auto", "default", "force", "takeover"}

// String names the mode.
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "unknown"
}

// Errors for CLUSTER FAILOVER misuse, with Redis's texts.
var (
	ErrNotReplica    = errors.New("ERR You should send CLUSTER FAILOVER to a replica")
	ErrMasterUnknown = errors.New("ERR I'm a replica but my master is unknown to me")
	ErrMasterDown    = errors.New("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE")
)

// IntentKind says what the core must do for an Intent.
type IntentKind uint8

// Intents.
const (
	// RequestVotes sends AUTHREQUEST for Epoch to every master serving
	// slots that has not voted yet, forced (AuthForceAck) when Force is
	// set. The core raises currentEpoch to Epoch and persists it first.
	RequestVotes IntentKind = iota + 1
	// Promote makes this node the master of its master's slots with
	// configEpoch Epoch, and tells every node at once.
	Promote
	// Takeover is Promote at a new epoch taken without votes.
	Takeover
	// SendMFStart asks Node (this replica's master) to pause its writes
	// for a manual failover.
	SendMFStart
	// PauseWrites pauses this master's writes until Until, for the
	// manual failover of replica Node.
	PauseWrites
	// ResumeWrites ends a pause.
	ResumeWrites
	// SendPaused sends Node a PING whose header carries FlagPaused and
	// the offset this master paused at.
	SendPaused
	// Note reports an event with no action: Reason says which.
	Note
)

// Intent is one thing the core must do, or an event worth a log line.
type Intent struct {
	Kind   IntentKind
	Node   wire.NodeID
	Epoch  uint64
	Until  time.Duration
	Force  bool
	Reason string
}

// Reasons reported with Note intents and refused votes.
const (
	NoteElectionStarted = "election started"
	NoteElectionExpired = "election timed out"
	NoteElectionRetried = "election stalled, asking again in a new epoch"
	NoteElectionWon     = "election won"
	NoteManualStarted   = "manual failover started"
	NoteManualAborted   = "manual failover timed out"
	NoteManualReady     = "manual failover: replica caught up"
	NoteDataTooOld      = "data too old to fail over"
)
