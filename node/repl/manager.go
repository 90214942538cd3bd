// Package repl is hearsay's replication, in Redis's own protocol: a master
// streams its writes to replicas over their client connections (REPLCONF,
// PSYNC, SYNC, a disk-less RDB snapshot, then the command stream with a
// backlog for partial resyncs), and a replica follows its master the same
// way, so a stock redis-server can replicate from a hearsay master.
//
// The stream carries effects, not commands (see node/command's Feed): every
// propagated command sets a key to an absolute state. A full sync therefore
// reads the store slot by slot while writers keep going, and the writes made
// meanwhile, replayed on the replica, bring it to the master's state.
package repl

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearsay/hearsay/node/command"
	"github.com/hearsay/hearsay/node/store"
)

// Defaults, as in Redis.
const (
	DefaultBacklogSize = 1 << 20
	// Replica output limits: client-output-buffer-limit replica 256mb 64mb 60.
	DefaultReplicaHardLimit   = 256 << 20
	DefaultReplicaSoftLimit   = 64 << 20
	DefaultReplicaSoftSeconds = 60
	pingPeriod                = 10 * time.Second // repl-ping-replica-period
	replTimeout               = 60 * time.Second // repl-timeout
	ackPeriod                 = time.Second
)

// Config configures a Manager.
type Config struct {
	Store      *store.Store
	Dispatcher *command.Dispatcher
	// BacklogSize is repl-backlog-size (default 1 MB).
	BacklogSize int64
	// ListenPort is the client port announced to a master (REPLCONF
	// listening-port).
	ListenPort int
	// MasterAuth is the password sent to a master, if it needs one.
	MasterAuth string
	// Replica output buffer limits (client-output-buffer-limit replica):
	// 0 takes the default, a negative limit means none. A replica over
	// SoftLimit for SoftSeconds (negative: at once) is dropped.
	HardLimit, SoftLimit int64
	SoftSeconds          int
	Logger               *slog.Logger
	// OnSync, when set, is told of every sync a replica of this node
	// made (full or partial) and every sync this node made as a replica.
	OnSync func(full, asReplica bool)
	// OnWait, when set, is told how long every WAIT that blocked waited.
	OnWait func(time.Duration)
	// Busy, when set, is called as a full sync starts (sending or loading
	// a snapshot), and the function it returns when it ends: the node
	// lends such work more CPUs than its event loops use.
	Busy func() (done func())
}

// busy brackets background work with Config.Busy.
func (m *Manager) busy() (done func()) {
	if m.cfg.Busy == nil {
		return func() {}
	}
	return m.cfg.Busy()
}

// Manager runs a node's replication: the master side for its replicas,
// and, while it is a replica, the link to its master.
type Manager struct {
	cfg    Config
	st     *store.Store
	d      *command.Dispatcher
	log    *slog.Logger
	stream *Stream

	mu       sync.Mutex
	replicas map[*replica]struct{}
	waiters  map[*waiter]struct{}
	getAckAt int64 // stream offset at the last GETACK sent
	master   string
	link     *masterLink // while following a master
	role     atomic.Bool // true while a replica

	// Counters for INFO and metrics: syncs served to replicas, partial
	// resyncs refused, replicas dropped for their output limit, and syncs
	// this node made with its own master ([0] partial, [1] full).
	FullSyncs, PartialSyncs, PartialSyncErrors, ReplicaDrops atomic.Int64
	SyncsWithMaster                                          [2]atomic.Int64

	closing chan struct{}
	// attached wakes the cron when a replica attaches; without replicas
	// it sleeps, so an idle master does not wake ten times a second.
	attached chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

// New returns a manager; it serves nothing until its commands are
// registered and Start is called.
func New(cfg Config) *Manager {
	if cfg.BacklogSize <= 0 {
		cfg.BacklogSize = DefaultBacklogSize
	}
	if cfg.HardLimit == 0 {
		cfg.HardLimit = DefaultReplicaHardLimit
	}
	if cfg.SoftLimit == 0 {
		cfg.SoftLimit = DefaultReplicaSoftLimit
	}
	if cfg.SoftSeconds == 0 {
		cfg.SoftSeconds = DefaultReplicaSoftSeconds
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{
		cfg: cfg, st: cfg.Store, d: cfg.Dispatcher, log: cfg.Logger,
		stream:   NewStream(newReplID(), cfg.BacklogSize),
		replicas: make(map[*replica]struct{}),
		waiters:  make(map[*waiter]struct{}),
		closing:  make(chan struct{}),
		attached: make(chan struct{}, 1),
	}
}

func newReplID() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Append implements command.Feed.
func (m *Manager) Append(b []byte) int64 { return m.stream.Append(b) }

// Stream returns the node's replication stream.
func (m *Manager) Stream() *Stream { return m.stream }

// Start runs the periodic work (pings to replicas, output limits).
func (m *Manager) Start() {
	m.wg.Add(1)
	go m.cron()
}

// Close stops the link to a master and drops every replica.
func (m *Manager) Close() {
	m.once.Do(func() { close(m.closing) })
	m.mu.Lock()
	if m.link != nil {
		m.link.stop()
		m.link = nil
	}
	for r := range m.replicas {
		r.drop()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// IsReplica reports whether the node follows a master (it must then not
// expire keys on its own).
func (m *Manager) IsReplica() bool { return m.role.Load() }

// Offset is the node's replication offset: master_repl_offset on a master,
// the processed offset on a replica.
func (m *Manager) Offset() int64 { return m.stream.Offset() }

// unknownAge is the data age of a replica that never heard from its
// master: too old for any automatic failover, as in Redis.
const unknownAge = 1 << 62

// MasterDataAge is how long ago this replica last received anything from
// its master: the data age Redis's failover validity rule reads. It is 0
// on a master.
func (m *Manager) MasterDataAge() time.Duration {
	m.mu.Lock()
	l := m.link
	m.mu.Unlock()
	if l == nil {
		if m.role.Load() {
			return unknownAge
		}
		return 0
	}
	last := l.lastIO.Load()
	if last == 0 {
		return unknownAge
	}
	return time.Since(time.Unix(0, last))
}

// SetRole makes the node a master (replica false) or a replica of the
// master at addr ("ip:port"; empty while its address is unknown). It
// returns at once; the link runs in the background and reconnects until
// told otherwise.
func (m *Manager) SetRole(replica bool, addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if replica == m.role.Load() && addr == m.master {
		return
	}
	select {
	case <-m.closing:
		return
	default:
	}
	prev := m.master
	if m.link == nil && !replica && !m.role.Load() {
		return // a master staying one
	}
	m.master = addr
	if m.link != nil {
		m.link.stop()
		m.link = nil
	}
	if !replica {
		// Promoted: continue the history under a new id, so replicas
		// of the old master can continue with a partial resync.
		m.role.Store(false)
		m.stream.Shift(newReplID())
		m.stream.Activate()
		m.d.StartPropagation(m)
		m.log.Info("replication: now a master", "previous_master", prev, "replid2", m.stream.Info().ReplID2)
		return
	}
	m.role.Store(true)
	if m.d.Propagating() {
		m.d.StopPropagation()
	}
	// Reads must not delete expired keys on a replica either.
	m.st.SetExpireHook(func(uint16, []byte) {})
	if addr == "" {
		return
	}
	m.link = newMasterLink(m, addr)
	m.log.Info("replication: following a master", "master", addr)
}

// EnsureFeed starts propagating writes into the stream, as a first
// replica does, unless this node is a replica: an atomic slot migration's
// source reads its writes from the stream even with no replica attached.
func (m *Manager) EnsureFeed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ensureFeed()
}

// ensureFeed starts propagating writes, once, when the first replica
// attaches (Redis creates its backlog at that moment too).
func (m *Manager) ensureFeed() {
	if m.role.Load() || m.d.Propagating() {
		return
	}
	m.stream.Activate()
	m.d.StartPropagation(m)
}

// cron pings replicas and enforces the soft output limit while any are
// attached.
func (m *Manager) cron() {
	defer m.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var lastPing time.Time
	for {
		select {
		case <-m.closing:
			return
		case now := <-t.C:
			m.mu.Lock()
			n := len(m.replicas)
			replica := m.role.Load()
			for r := range m.replicas {
				r.checkSoftLimit(now)
			}
			m.mu.Unlock()
			if n > 0 && !replica && now.Sub(lastPing) >= pingPeriod {
				lastPing = now
				m.stream.Append(pingCmd)
			}
			if n == 0 {
				t.Stop()
				select {
				case <-m.closing:
					return
				case <-m.attached:
				}
				t.Reset(100 * time.Millisecond)
			}
		}
	}
}

var (
	pingCmd   = []byte("*1\r\n$4\r\nPING\r\n")
	getAckCmd = []byte("*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n")
)

// Info appends the "# Replication" section of INFO.
func (m *Manager) Info(b []byte) []byte {
	in := m.stream.Info()
	b = append(b, "# Replication\r\n"...)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.role.Load() {
		b = append(b, "role:slave\r\n"...)
		b = m.link.info(b, in)
	} else {
		b = append(b, "role:master\r\n"...)
	}
	b = kvi(b, "connected_slaves", int64(len(m.replicas)))
	i := 0
	now := time.Now()
	for _, r := range m.sortedReplicas() {
		if r.state.Load() == nil {
			continue
		}
		b = append(b, "slave"+strconv.Itoa(i)+":ip="+r.ip+",port="+strconv.Itoa(r.port)+
			",state="+*r.state.Load()+",offset="+strconv.FormatInt(r.ack.Load(), 10)+
			",lag="+strconv.FormatInt(int64(now.Sub(time.Unix(0, r.lastAck.Load())).Seconds()), 10)+"\r\n"...)
		i++
	}
	b = append(b, "master_failover_state:no-failover\r\n"...)
	b = kv(b, "master_replid", in.ReplID)
	b = kv(b, "master_replid2", in.ReplID2)
	b = kvi(b, "master_repl_offset", in.Offset)
	b = kvi(b, "second_repl_offset", in.SecondOffset)
	active := int64(0)
	if in.Active {
		active = 1
	}
	b = kvi(b, "repl_backlog_active", active)
	b = kvi(b, "repl_backlog_size", in.BacklogSize)
	b = kvi(b, "repl_backlog_first_byte_offset", in.FirstByte)
	b = kvi(b, "repl_backlog_histlen", in.HistLen)
	return b
}

// Stats appends INFO stats' replication counters, in Redis's names.
func (m *Manager) Stats(b []byte) []byte {
	b = kvi(b, "sync_full", m.FullSyncs.Load())
	b = kvi(b, "sync_partial_ok", m.PartialSyncs.Load())
	b = kvi(b, "sync_partial_err", m.PartialSyncErrors.Load())
	return b
}

// ReplicaInfo is one attached replica, for metrics and status pages.
type ReplicaInfo struct {
	Addr   string
	State  string
	Offset int64
	Lag    time.Duration // since its last ACK
	Behind int64         // bytes of the stream it has not acknowledged
}

// Replicas lists the attached replicas.
func (m *Manager) Replicas() []ReplicaInfo {
	end := m.stream.Offset()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ReplicaInfo
	for _, r := range m.sortedReplicas() {
		st := r.state.Load()
		if st == nil {
			continue
		}
		ack := r.ack.Load()
		out = append(out, ReplicaInfo{Addr: net.JoinHostPort(r.ip, strconv.Itoa(r.port)), State: *st,
			Offset: ack, Lag: time.Since(time.Unix(0, r.lastAck.Load())), Behind: end - ack})
	}
	return out
}

func kv(b []byte, k, v string) []byte { return append(b, k+":"+v+"\r\n"...) }

func kvi(b []byte, k string, v int64) []byte { return kv(b, k, strconv.FormatInt(v, 10)) }
