package gossip

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/hearsay/hearsay/failover"
	"github.com/hearsay/hearsay/gossip/epidemic"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// roleFlags are the flags a node sets on its own record; health flags are
// views of others and never part of a record a node authors.
const roleFlags = wire.FlagMaster | wire.FlagReplica | wire.FlagNoFailover

// blacklistTTL is how long a forgotten node is kept out of gossip, as Redis.
const blacklistTTL = 60 * time.Second

// record is one node as this core knows it. It holds no pointers so that a
// table of 10,000 records costs the garbage collector nothing to scan.
type record struct {
	id          wire.NodeID
	master      wire.NodeID
	ip          [16]byte
	port, bus   uint16
	flags       wire.Flags // role flags, plus FlagFail when the cluster agreed it failed
	tally       replicaTally
	configEpoch uint64
	version     uint64
	failVersion uint64 // FAIL holds for versions up to this one
	// failAt is when the FAIL at failVersion was declared, as far as this
	// node knows: never earlier than the declaration (see wire FailAge).
	failAt     time.Duration
	replOffset uint64
}

func (r *record) addr() wire.Addr {
	return wire.Addr{IP: netip.AddrFrom16(r.ip).Unmap(), Port: r.port, BusPort: r.bus}
}

func (r *record) setAddr(a wire.Addr) {
	r.ip = a.IP.As16()
	r.port, r.bus = a.Port, a.BusPort
}

func (r *record) failed() bool { return r.flags&wire.FlagFail != 0 }

// recordFrom builds a record from a wire entry (gossip or saved state),
// keeping only the role flags and FAIL, which then holds for w's version.
func recordFrom(w *wire.NodeRecord) record {
	r := record{id: w.ID, master: w.Master, flags: w.Flags & (roleFlags | wire.FlagFail), configEpoch: w.ConfigEpoch, version: w.Version}
	if r.failed() {
		r.failVersion = w.Version
	}
	r.setAddr(w.Addr)
	return r
}

// wireRecord renders r as a gossip entry.
func (r *record) wireRecord() wire.NodeRecord {
	return wire.NodeRecord{ID: r.id, Addr: r.addr(), Flags: r.flags, Master: r.master, ConfigEpoch: r.configEpoch, Version: r.version}
}

// claim is a master's latest slot claim. Ranges is never mutated in place.
type claim struct {
	owner   wire.NodeID
	epoch   uint64
	version uint64
	ranges  []wire.SlotRange
	stale   bool // some of its slots belong to a higher epoch: the owner needs an UPDATE
}

func (cl *claim) wire() wire.SlotClaim {
	return wire.SlotClaim{Owner: cl.owner, ConfigEpoch: cl.epoch, Version: cl.version, Ranges: cl.ranges}
}

// handshake is a MEET in flight: only the address is known. It carries a
// random ID until the peer answers, as Redis shows it.
type handshake struct {
	addr     wire.Addr
	tempID   wire.NodeID
	started  time.Duration
	lastSent time.Duration
}

// rumorKey names a piece of state in the retransmit queues.
type rumorKey = wire.NodeID

// Core is the deterministic membership state machine. It is not safe for
// concurrent use: one goroutine owns it.
type Core struct {
	cfg Config
	rng *rand.Rand

	currentEpoch  uint64
	lastVoteEpoch uint64
	elect         *failover.Election
	ballot        failover.Ballot
	dataAge       time.Duration // how stale this replica's data is

	records []record // records[0] is this node
	index   idTable
	claims  map[wire.NodeID]*claim
	table   ring.Table
	own     ring.SlotSet        // the slots this node claims; its claim is built from it
	masters map[wire.NodeID]int // slots owned per node, rebuilt when the table changes

	handshakes []handshake
	// unmet are nodes added only because their MEET reached us, until
	// something else from them shows that our answers reach them too
	// (see noteMet).
	unmet     []unmet
	blacklist map[wire.NodeID]time.Duration // expiry

	peers    map[wire.NodeID]*peer
	peerList []*peer

	buckets [wire.SyncBuckets]uint64
	digest  uint64

	recordQ *epidemic.Queue[rumorKey]
	claimQ  *epidemic.Queue[rumorKey]
	eager   bool // a priority rumor is waiting to be pushed to Fanout peers

	// monitoring
	membershipGen uint64
	// shardGen moves whenever anything the replica-migration rule reads
	// changes: a record (every change, additions and removals included,
	// passes through hashIn), a master's slot count, or a peer's PFAIL
	// mark.
	shardGen   uint64
	liveCache  livenessCache
	rangeCache struct {
		ranges  map[ring.NodeID][]ring.Range
		version uint64 // the table's Version the ranges are of
	}
	monitorGen uint64
	monitored  []wire.NodeID
	mismatch   [8]wire.NodeID // recent peers whose digest differed from ours
	mismatchN  int
	pick       []int // scratch for randomPeers
	hb         hbPolicy

	// timers
	now        time.Duration
	started    bool
	lastTick   time.Duration
	lastGossip time.Duration
	// resetAlone is set by CLUSTER RESET until a MEET joins the node to a
	// cluster again: meanwhile unknown PING senders are ignored (see Step).
	// It is not persisted: a reset node that restarts alone takes PINGs
	// again, as a fresh node does.
	resetAlone bool
	// wantTick asks the runtime for a Tick at once (see NextDeadline).
	wantTick bool
	lastSync time.Duration
	// syncedKnown is the number of records at the last sync round: while
	// the table grows (a cluster forming, nodes joining), sync rounds come
	// at joinSyncInterval instead of SyncInterval.
	syncedKnown int
	failedSelf  time.Duration // when the FAIL this node is held in was declared, as far as it knows
	selfFailed  bool

	migrate replicaMigration
	// restored: New was given saved state. voteHold: no vote is granted
	// before this time (see holdVotes).
	restored bool
	voteHold time.Duration

	// output
	ready   Ready
	pool    []*wire.Message
	used    int
	persist bool
	dirty   bool
	stats   Stats
}

// Stats counts bus messages by type, for CLUSTER INFO and metrics.
type Stats struct {
	Sent     [16]uint64
	Received [16]uint64
	// BytesSent is not known to the core; the runtime counts bytes.
	Dropped uint64 // messages ignored: unknown sender, blacklisted, malformed semantics
}

// State is what a node must keep on disk: enough to come back with the same
// identity, epochs, vote, slots and role, and the membership it knew.
type State struct {
	ID            wire.NodeID
	CurrentEpoch  uint64
	ConfigEpoch   uint64
	LastVoteEpoch uint64
	// VoteFloor and Votes are the failover voting record: no epoch at or
	// below VoteFloor, nor any listed in Votes, is granted again.
	VoteFloor uint64
	Votes     []SavedVote
	// Nodes holds every known node, this node first.
	Nodes []wire.NodeRecord
	// Claims holds every known slot claim, this node's included.
	Claims []wire.SlotClaim
	// Marks holds this node's open slots (SETSLOT IMPORTING/MIGRATING):
	// a move in progress must survive a restart.
	Marks []ring.Mark
}

func (cfg *Config) withDefaults() {
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = 5 * time.Second
	}
	if cfg.GossipInterval <= 0 {
		cfg.GossipInterval = 100 * time.Millisecond
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = max(cfg.NodeTimeout/2, cfg.GossipInterval)
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = cfg.NodeTimeout / 4
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	if cfg.Lambda <= 0 {
		cfg.Lambda = 2
	}
	if cfg.Fanout <= 0 {
		cfg.Fanout = 3
	}
	if cfg.Observers <= 0 {
		cfg.Observers = 8
	}
	if cfg.MaxGossip <= 0 {
		cfg.MaxGossip = 8
	}
	if cfg.MaxClaims <= 0 {
		cfg.MaxClaims = 4
	}
	if cfg.SmallCluster <= 0 {
		cfg.SmallCluster = 64
	}
	if cfg.MigrationBarrier == 0 {
		cfg.MigrationBarrier = 1
	}
}

// New returns a core for cfg. A nil st starts a fresh node that knows only
// itself; otherwise st (as returned by State and stored durably) is restored.
func New(cfg Config, st *State) (*Core, error) {
	cfg.withDefaults()
	if st != nil {
		cfg.ID = st.ID
	}
	if cfg.ID.IsZero() {
		return nil, fmt.Errorf("gossip: node ID must not be zero")
	}
	if !cfg.Addr.IP.IsValid() || cfg.Addr.Port == 0 || cfg.Addr.BusPort == 0 {
		return nil, fmt.Errorf("gossip: node address %v is incomplete", cfg.Addr)
	}
	c := &Core{
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		claims:    make(map[wire.NodeID]*claim),
		masters:   make(map[wire.NodeID]int),
		blacklist: make(map[wire.NodeID]time.Duration),
		peers:     make(map[wire.NodeID]*peer),
		recordQ:   epidemic.NewQueue[rumorKey](1),
		claimQ:    epidemic.NewQueue[rumorKey](1),
		elect: failover.NewElection(failover.Config{
			NodeTimeout: cfg.NodeTimeout, ValidityFactor: cfg.ValidityFactor,
			ManualTimeout: cfg.ManualFailoverTimeout,
		}),
	}
	self := record{id: cfg.ID, flags: wire.FlagMaster, version: 1}
	self.setAddr(cfg.Addr)
	c.addRecord(self)
	if st != nil {
		if err := c.restore(st); err != nil {
			return nil, err
		}
		c.restored = !cfg.StateCurrent
	}
	c.refreshBudget()
	return c, nil
}

func (c *Core) restore(st *State) error {
	// Exact sizes: at simulator scale, append's doubling would waste a third.
	c.records = append(make([]record, 0, len(st.Nodes)+1), c.records...)
	c.index.reserve(c.records, len(st.Nodes)+1)
	c.currentEpoch = st.CurrentEpoch
	c.lastVoteEpoch = st.LastVoteEpoch
	c.restoreBallot(st)
	for i := range st.Nodes {
		r := &st.Nodes[i]
		if r.ID.IsZero() {
			return fmt.Errorf("gossip: state holds a zero node ID")
		}
		if r.ID == c.cfg.ID {
			s := c.self()
			c.hashIn(s, -1)
			s.flags = r.Flags & roleFlags
			s.master = r.Master
			s.version = max(r.Version, 1)
			c.hashIn(s, +1)
			continue
		}
		if c.lookup(r.ID) != nil {
			return fmt.Errorf("gossip: state lists node %s twice", r.ID)
		}
		c.addRecord(recordFrom(r))
	}
	c.setSelfConfigEpoch(st.ConfigEpoch)
	c.currentEpoch = max(c.currentEpoch, st.ConfigEpoch)
	for i := range st.Claims {
		w := &st.Claims[i]
		if err := checkRanges(w.Ranges); err != nil {
			return fmt.Errorf("gossip: state claim of %s: %w", w.Owner, err)
		}
		cl := &claim{owner: w.Owner, epoch: w.ConfigEpoch, version: w.Version, ranges: append([]wire.SlotRange(nil), w.Ranges...)}
		c.setClaim(cl)
		if w.Owner == c.cfg.ID {
			c.own = toSet(w.Ranges)
		}
	}
	c.bindClaims()
	for _, m := range st.Marks {
		if m.Slot >= ring.Slots || m.Node.IsZero() {
			return fmt.Errorf("gossip: state holds a bad mark of slot %d", m.Slot)
		}
		if m.Importing {
			_ = c.table.SetImporting(m.Slot, m.Node)
		} else {
			_ = c.table.SetMigrating(m.Slot, m.Node)
		}
	}
	return nil
}

// State returns what must be stored durably. It allocates a fresh value.
func (c *Core) State() *State {
	st := &State{ID: c.cfg.ID, CurrentEpoch: c.currentEpoch, ConfigEpoch: c.self().configEpoch, LastVoteEpoch: c.lastVoteEpoch,
		VoteFloor: c.ballot.Floor, Votes: c.savedVotes()}
	st.Nodes = make([]wire.NodeRecord, 0, len(c.records))
	for i := range c.records {
		st.Nodes = append(st.Nodes, c.records[i].wireRecord())
	}
	for i := range c.records {
		if cl := c.claims[c.records[i].id]; cl != nil {
			w := cl.wire()
			w.Ranges = append([]wire.SlotRange(nil), w.Ranges...)
			st.Claims = append(st.Claims, w)
		}
	}
	st.Marks = c.table.Marks()
	return st
}

func (c *Core) self() *record { return &c.records[0] }

func (c *Core) lookup(id wire.NodeID) *record {
	i, ok := c.index.get(c.records, id)
	if !ok {
		return nil
	}
	return &c.records[i]
}

func (c *Core) addRecord(r record) *record {
	c.records = append(c.records, r)
	c.index.put(c.records, r.id, int32(len(c.records)-1))
	c.hashIn(&c.records[len(c.records)-1], +1)
	c.membershipGen++
	return &c.records[len(c.records)-1]
}

func (c *Core) removeRecord(id wire.NodeID) {
	i, ok := c.index.get(c.records, id)
	if !ok || i == 0 {
		return
	}
	c.hashIn(&c.records[i], -1)
	c.index.del(c.records, id)
	last := int32(len(c.records) - 1)
	if i != last {
		c.records[i] = c.records[last]
		c.index.put(c.records, c.records[i].id, i)
	}
	c.records = c.records[:last]
	c.membershipGen++
}

// begin starts a call: it resets the output batch and records the time.
func (c *Core) begin(now time.Duration) {
	c.now = now
	c.used = 0
	c.ready.Messages = c.ready.Messages[:0]
	c.ready.Events = c.ready.Events[:0]
	c.ready.Persist = false
	c.ready.Dirty = false
	c.ready.Failover = c.ready.Failover[:0]
	c.ready.PauseWrites = 0
	c.ready.ResumeWrites = false
	c.persist = false
	c.dirty = false
	if !c.started && c.restored || c.started && now-c.lastTick > c.cfg.NodeTimeout/2 {
		c.holdVotes()
	}
	if !c.started {
		// FAIL marks restored from saved state are dated now: their age
		// is unknown, and an age must never be overstated.
		for i := range c.records {
			c.records[i].failAt = now
		}
		c.started = true
		c.lastTick = now
		c.lastGossip = now - c.cfg.GossipInterval
		c.lastSync = now
		c.syncedKnown = len(c.records)
	}
}

// finish flushes pending eager pushes and returns the batch.
func (c *Core) finish() Ready {
	if c.eager {
		c.eager = false
		c.pushEager()
	}
	c.ready.Persist = c.persist
	c.ready.Dirty = c.dirty || c.persist
	return c.ready
}

func (c *Core) event(k EventKind, id wire.NodeID) {
	c.ready.Events = append(c.ready.Events, Event{Kind: k, Node: id})
}

// newMessage returns a reusable message of type t with this node's header.
func (c *Core) newMessage(t wire.Type) *wire.Message {
	if c.used == len(c.pool) {
		c.pool = append(c.pool, &wire.Message{})
	}
	m := c.pool[c.used]
	c.used++
	gossip, claims, buckets := m.Gossip[:0], m.Claims[:0], m.Buckets[:0]
	*m = wire.Message{Type: t, Gossip: gossip, Claims: claims, Buckets: buckets}
	c.fillHeader(&m.Header)
	return m
}

func (c *Core) fillHeader(h *wire.Header) {
	s := c.self()
	*h = wire.Header{
		Sender:       s.id,
		CurrentEpoch: c.currentEpoch,
		ConfigEpoch:  s.configEpoch,
		Version:      s.version,
		Flags:        s.flags & roleFlags,
		Master:       s.master,
		ReplOffset:   s.replOffset,
		Addr:         c.cfg.Addr,
		StateDigest:  c.digest,
		KnownNodes:   uint32(len(c.records)),
	}
}

func (c *Core) send(to *record, m *wire.Message) { c.sendTo(to.id, to.addr(), m) }

// sendTo queues m for the node id at addr; id is zero for a handshake MEET.
func (c *Core) sendTo(id wire.NodeID, addr wire.Addr, m *wire.Message) {
	c.stats.Sent[m.Type&15]++
	c.ready.Messages = append(c.ready.Messages, Envelope{To: id, Addr: addr, Msg: m})
}

// markPersist says durable state changed and must be written before sending.
func (c *Core) markPersist() { c.persist = true }

// ID returns this node's ID.
func (c *Core) ID() wire.NodeID { return c.cfg.ID }

// Config returns the configuration in force, defaults filled in.
func (c *Core) Config() Config { return c.cfg }

// Epochs returns currentEpoch and this node's configEpoch.
func (c *Core) Epochs() (current, config uint64) { return c.currentEpoch, c.self().configEpoch }

// LastVoteEpoch returns the epoch of the last failover vote this node gave.
func (c *Core) LastVoteEpoch() uint64 { return c.lastVoteEpoch }

// Digest returns the digest of the node table and the slot claims. Two cores
// with the same digest hold the same records, FAIL marks and claims.
func (c *Core) Digest() uint64 { return c.digest }

// Stats returns message counters.
func (c *Core) Stats() Stats { return c.stats }

// KnownNodes returns the number of nodes in the table, this one included.
func (c *Core) KnownNodes() int { return len(c.records) }
