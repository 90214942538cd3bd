package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/hearsay/hearsay/bpf/hbpacket"
	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// CoreOrigin is what a core's monotonic clock reads at virtual time 0. A real
// node's monotonic clock starts at an arbitrary value, so the simulator does
// not hand cores a clock that starts at zero either.
const CoreOrigin = time.Hour

// Options configure the virtual world. Zero values take the defaults named
// on each field.
type Options struct {
	// Seed seeds the simulator's one PCG source. Every decision of the
	// simulator (node IDs, latency, loss, tick phases) and every core's own
	// seed derive from it, so a seed replays exactly.
	Seed uint64
	// Latency is the mean one-way link latency. Default 1ms.
	Latency time.Duration
	// Jitter spreads latency uniformly over Latency±Jitter (never below
	// 1µs). Default Latency/4; negative means none.
	Jitter time.Duration
	// Loss is the probability that a message is lost, in [0,1).
	Loss float64
	// Tick is how often each core's Tick runs. Each node gets a random phase
	// and every tick a small jitter (±Tick/10), as real timers have.
	// Default GossipInterval/2 (GossipInterval defaults to 100ms).
	Tick time.Duration
	// Core is the template for every core's Config. ID, Addr and Seed are
	// filled in per node. With Core.ExternalHeartbeat set, liveness comes
	// from a modelled heartbeat transport (see Stall and the package
	// documentation) instead of bus pings.
	Core gossip.Config
	// KeepState makes the simulator keep what a runtime writes to disk,
	// which is what Restart boots from: State() at once on every Ready
	// with Persist set, and at the node's next tick after a Ready with
	// Dirty set (a lazy write a crash can lose). Without it a restart
	// boots a fresh node with the same ID. Snapshots cost O(N) per
	// change, so large runs that never restart leave it off.
	KeepState bool
	// Secret is the cluster secret; frames then carry an HMAC.
	Secret []byte
	// DeadlineTicks ticks each core when its NextDeadline says, and
	// earlier when a Step brings that forward, as the node runtime does,
	// instead of every Tick. With external heartbeats the samples are then
	// fed before each Tick, as the runtime does too.
	DeadlineTicks bool
	// OnReady, if set, sees every Ready after it has been routed, with the
	// index of the node that produced it. r.Messages' Msg fields are still
	// valid.
	OnReady func(i int, r *gossip.Ready)
}

func (o *Options) setDefaults() {
	if o.Latency <= 0 {
		o.Latency = time.Millisecond
	}
	if o.Jitter == 0 {
		o.Jitter = o.Latency / 4
	}
	if o.Jitter < 0 {
		o.Jitter = 0
	}
	if o.Tick <= 0 {
		gi := o.Core.GossipInterval
		if gi <= 0 {
			gi = 100 * time.Millisecond
		}
		o.Tick = max(gi/2, time.Millisecond)
	}
}

// TypeStats counts messages and bytes of one message type.
type TypeStats struct {
	Msgs  uint64 `json:"msgs"`
	Bytes uint64 `json:"bytes"`
}

// Stats are the network counters since the simulator started.
type Stats struct {
	Sent          uint64 `json:"sent"`          // frames that left a node (lost ones included)
	Bytes         uint64 `json:"bytes"`         // their encoded size
	Delivered     uint64 `json:"delivered"`     // frames stepped into a core
	Lost          uint64 `json:"lost"`          // dropped by the loss probability
	Partitioned   uint64 `json:"partitioned"`   // dropped by a partition
	Down          uint64 `json:"down"`          // dropped because the receiver was down or restarted, or stalled with full buffers
	Undeliverable uint64 `json:"undeliverable"` // addressed to an ID or address no node has
	Ticks         uint64 `json:"ticks"`
	// Heartbeat packets (Core.ExternalHeartbeat): PINGs and PONGs sent,
	// their payload bytes, and those lost, partitioned or dropped by a
	// kernel that does not know the sender.
	Heartbeats        uint64 `json:"heartbeats,omitempty"`
	HeartbeatBytes    uint64 `json:"heartbeat_bytes,omitempty"`
	HeartbeatsDropped uint64 `json:"heartbeats_dropped,omitempty"`
	// ByType counts sent frames per wire.Type.
	ByType [16]TypeStats `json:"-"`
}

// node is one simulated host: an address, an identity and, while it is up,
// a core.
type node struct {
	id    wire.NodeID
	addr  wire.Addr
	core  *Core // nil while down
	inc   uint32
	group int32 // partition group; nodes talk only within a group
	saved *State
	// The highest epochs this node has reported, across restarts.
	cur, cfg uint64
	// touched is set whenever the core was called; probes clear it.
	touched bool
	// lazy is set by a Ready with Dirty: state worth saving changed, and
	// the runtime writes it at its next tick rather than at once.
	lazy bool
	// stalled is set while the process is frozen (Stall); backlog holds
	// the bus frames that reached it meanwhile.
	stalled bool
	backlog []buffered
	// kern is the host's heartbeat responder (Core.ExternalHeartbeat).
	kern kernel
	// With DeadlineTicks: when the armed tick fires, and its generation
	// (carried in the event's from field); an earlier arming makes the
	// later event stale.
	tickAt  time.Duration
	tickGen uint32
}

// Sim is a discrete-event simulation of N real cores on a virtual network.
// It is single-threaded and deterministic: the same Options and the same
// calls produce the same run, bit for bit.
type Sim struct {
	opt   Options
	rng   *rand.Rand
	now   time.Duration
	q     queue
	nodes []node
	byID  map[wire.NodeID]int32
	byAdr map[wire.Addr]int32

	actions []func()
	enc     *wire.Encoder
	dec     *wire.Decoder
	hbKey   *hbpacket.Key // heartbeat MAC key, nil without a Secret
	msg     wire.Message
	free    [][]byte

	stats      Stats
	violations []string
	elect      electionLog
	serve      servingLog
}

// New returns an empty simulator at virtual time 0.
func New(opt Options) *Sim {
	opt.setDefaults()
	return &Sim{
		opt:   opt,
		rng:   rand.New(rand.NewPCG(opt.Seed, splitmix(opt.Seed^0x9e3779b97f4a7c15))),
		byID:  make(map[wire.NodeID]int32),
		byAdr: make(map[wire.Addr]int32),
		enc:   wire.NewEncoder(opt.Secret),
		dec:   wire.NewDecoder(opt.Secret),
		hbKey: hbpacket.DeriveKey(opt.Secret),
	}
}

// splitmix is SplitMix64's finaliser: a cheap bijective scrambler used to
// derive independent seeds from one.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Rand is the simulator's random source, for scenarios that need choices
// that replay with the seed.
func (s *Sim) Rand() *rand.Rand { return s.rng }

// Now is the virtual time.
func (s *Sim) Now() time.Duration { return s.now }

// CoreNow is what the cores' clock reads now.
func (s *Sim) CoreNow() time.Duration { return CoreOrigin + s.now }

// Options returns the options in effect, defaults filled in.
func (s *Sim) Options() Options { return s.opt }

// Len is the number of nodes, up or down.
func (s *Sim) Len() int { return len(s.nodes) }

// ID is node i's identity.
func (s *Sim) ID(i int) wire.NodeID { return s.nodes[i].id }

// Addr is node i's address: 127.0.0.0 plus i+1, client port 7000, bus 17000.
func (s *Sim) Addr(i int) wire.Addr { return s.nodes[i].addr }

// Index returns the node with the given ID.
func (s *Sim) Index(id wire.NodeID) (int, bool) {
	i, ok := s.byID[id]
	return int(i), ok
}

// Core is node i's core, nil while the node is down. Calling its admin
// methods directly bypasses routing; use Do for calls whose Ready matters.
func (s *Sim) Core(i int) *Core { return s.nodes[i].core }

// Up reports whether node i is running; a stalled node is.
func (s *Sim) Up(i int) bool { return s.nodes[i].core != nil }

// Saved is node i's last persisted state, nil if it never persisted (or
// KeepState is off).
func (s *Sim) Saved(i int) *State { return s.nodes[i].saved }

// Stats returns the network counters.
func (s *Sim) Stats() Stats { return s.stats }

// Violations lists the invariant breaks the simulator itself watches for:
// epochs going backwards, frames the codec refused, cores that failed to
// boot from their own persisted state.
func (s *Sim) Violations() []string { return s.violations }

func (s *Sim) violate(format string, args ...any) {
	if len(s.violations) < 100 {
		s.violations = append(s.violations, fmt.Sprintf("t=%v ", s.now)+fmt.Sprintf(format, args...))
	}
}

// AddNodes allocates n more nodes, down, with fresh random IDs and the next
// addresses, and returns the index of the first. Boot starts them.
func (s *Sim) AddNodes(n int) int {
	first := len(s.nodes)
	s.nodes = slices.Grow(s.nodes, n)
	for k := range n {
		i := first + k
		var id wire.NodeID
		for {
			for j := 0; j < len(id); j += 8 {
				var b [8]byte
				v := s.rng.Uint64()
				for x := range b {
					b[x] = byte(v >> (8 * x))
				}
				copy(id[j:], b[:])
			}
			if _, dup := s.byID[id]; !dup && !id.IsZero() {
				break
			}
		}
		ip := uint32(127)<<24 + uint32(i+1)
		addr := wire.Addr{
			IP:      netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}),
			Port:    7000,
			BusPort: 17000,
		}
		s.nodes = append(s.nodes, node{id: id, addr: addr})
		s.byID[id] = int32(i)
		s.byAdr[addr] = int32(i)
	}
	return first
}

// Boot starts node i now from st (nil: a fresh node with no peers). The
// first tick comes after a random phase within one tick interval.
func (s *Sim) Boot(i int, st *State) error {
	n := &s.nodes[i]
	if n.core != nil {
		return fmt.Errorf("sim: node %d is already up", i)
	}
	cfg := s.opt.Core
	cfg.ID = n.id
	cfg.Addr = n.addr
	cfg.Seed = splitmix(s.opt.Seed ^ splitmix(uint64(i)<<20|uint64(n.inc)))
	// A first boot from a given state is a cluster formed in memory, not a
	// restart: its state is current.
	cfg.StateCurrent = n.inc == 0
	c, err := newCore(cfg, st)
	if err != nil {
		return fmt.Errorf("sim: boot node %d: %w", i, err)
	}
	n.inc++
	n.core = c
	n.touched = true
	cur, conf := c.Epochs()
	if cur < n.cur || conf < n.cfg {
		s.violate("node %d booted with epochs current=%d config=%d below the current=%d config=%d it had reported before", i, cur, conf, n.cur, n.cfg)
	}
	n.cur, n.cfg = max(n.cur, cur), max(n.cfg, conf)
	s.armTick(i, s.now+randDur(s.rng, s.opt.Tick)+1)
	s.recomputeServing(i)
	return nil
}

// Crash stops node i now: its core is dropped, frames to it are lost, and
// frames it already sent still arrive. Its heartbeat kernel stops
// answering, and a stall ends with the frames it buffered lost.
func (s *Sim) Crash(i int) {
	n := &s.nodes[i]
	if n.core == nil {
		return
	}
	n.core = nil
	n.lazy = false // the lazy write never happened
	n.inc++
	n.stalled = false
	for _, b := range n.backlog {
		s.stats.Down++
		s.putBuf(b.buf)
	}
	n.backlog = nil
	n.kern.down()
	s.recomputeServing(i)
}

// Restart boots a crashed node from its last persisted state, as a process
// restarted on the same host reads its nodes.conf.
func (s *Sim) Restart(i int) error {
	var st *State
	if sv := s.nodes[i].saved; sv != nil {
		st = cloneState(sv)
	}
	err := s.Boot(i, st)
	if err != nil {
		s.violate("restart of node %d from its persisted state failed: %v", i, err)
	}
	return err
}

// Partition splits the network: the nodes in groups[k] can talk only to
// each other; nodes in no group form one more group. Frames in flight
// across the new boundaries are lost.
func (s *Sim) Partition(groups ...[]int) {
	for i := range s.nodes {
		s.nodes[i].group = 0
	}
	for k, g := range groups {
		for _, i := range g {
			s.nodes[i].group = int32(k + 1)
		}
	}
	s.sweepServing()
}

// Heal removes every partition.
func (s *Sim) Heal() { s.Partition() }

// SetLoss changes the loss probability from now on.
func (s *Sim) SetLoss(p float64) { s.opt.Loss = p }

// At schedules f at virtual time t (or now, if t is in the past). Events
// at the same time run in the order they were scheduled.
func (s *Sim) At(t time.Duration, f func()) {
	s.actions = append(s.actions, f)
	s.q.push(event{at: max(t, s.now), kind: evAction, from: int32(len(s.actions) - 1)})
}

// Do makes an admin call on node i's core now and routes its Ready. It
// returns the call's error, or an error if the node is down.
func (s *Sim) Do(i int, call func(c *Core, now time.Duration) (gossip.Ready, error)) error {
	n := &s.nodes[i]
	if n.core == nil {
		return fmt.Errorf("sim: node %d is down", i)
	}
	if n.stalled {
		return fmt.Errorf("sim: node %d is stalled", i)
	}
	r, err := call(n.core, s.CoreNow())
	s.handle(i, &r)
	return err
}

// Meet makes node i meet node j, as CLUSTER MEET on i with j's address.
func (s *Sim) Meet(i, j int) error {
	addr := s.nodes[j].addr
	return s.Do(i, func(c *Core, now time.Duration) (gossip.Ready, error) { return c.Meet(now, addr) })
}

// Touched reports whether node i's core was called since the last
// ClearTouched(i); probes use it to recheck only nodes that may have changed.
func (s *Sim) Touched(i int) bool { return s.nodes[i].touched }

// ClearTouched clears node i's touched mark.
func (s *Sim) ClearTouched(i int) { s.nodes[i].touched = false }

// RunUntil processes every event up to and including virtual time t.
func (s *Sim) RunUntil(t time.Duration) {
	for s.q.len() > 0 && s.q.peek() <= t {
		e := s.q.pop()
		s.now = e.at
		switch e.kind {
		case evDeliver:
			s.deliver(&e)
		case evTick:
			s.tick(&e)
		case evAction:
			f := s.actions[e.from]
			s.actions[e.from] = nil
			f()
		case evPacket:
			s.deliverDatagram(&e)
		}
	}
	if t > s.now {
		s.now = t
	}
	// Actions that ran are nil; drop the trailing ones so a long run
	// does not keep a slot per action it ever scheduled.
	for k := len(s.actions); k > 0 && s.actions[k-1] == nil; k-- {
		s.actions = s.actions[:k-1]
	}
}

// RunFor advances virtual time by d.
func (s *Sim) RunFor(d time.Duration) { s.RunUntil(s.now + d) }

// RunUntilTrue advances in steps of sample until cond holds or virtual time
// reaches deadline. It returns the virtual time at which cond was first seen
// to hold, and whether it did.
func (s *Sim) RunUntilTrue(cond func() bool, sample, deadline time.Duration) (time.Duration, bool) {
	for {
		if cond() {
			return s.now, true
		}
		if s.now >= deadline {
			return s.now, false
		}
		s.RunUntil(min(s.now+sample, deadline))
	}
}

func (s *Sim) tick(e *event) {
	n := &s.nodes[e.to]
	if n.core == nil || n.inc != e.inc || uint32(e.from) != n.tickGen {
		return // crashed (its timer died with it), or re-armed earlier
	}
	i := int(e.to)
	if n.stalled {
		// The timer fires; the frozen process does not run.
		s.armTick(i, s.now+s.opt.Tick)
		return
	}
	s.stats.Ticks++
	if n.lazy {
		n.saved, n.lazy = n.core.State(), false
	}
	external := s.opt.Core.ExternalHeartbeat
	if external && s.opt.DeadlineTicks {
		s.feedSamples(i)
	}
	if n.core == nil {
		return
	}
	r := n.core.Tick(s.CoreNow())
	s.handle(i, &r)
	if external && n.core != nil {
		s.heartbeat(i)
		if !s.opt.DeadlineTicks {
			s.feedSamples(i)
		}
	}
	if n.core == nil {
		return
	}
	if s.opt.DeadlineTicks {
		s.armTick(i, max(n.core.NextDeadline()-CoreOrigin, s.now+1)+s.timerSlack())
		return
	}
	next := s.opt.Tick
	if j := int64(s.opt.Tick / 10); j > 0 {
		next += time.Duration(s.rng.Int64N(2*j+1) - j)
	}
	s.armTick(i, s.now+max(next, 1))
}

// timerSlack is how late a timer fires with DeadlineTicks: up to 1ms.
func (s *Sim) timerSlack() time.Duration {
	return time.Duration(s.rng.Int64N(int64(time.Millisecond)))
}

// armTick schedules node i's next tick at t, making any later one stale.
func (s *Sim) armTick(i int, t time.Duration) {
	n := &s.nodes[i]
	n.tickGen++
	n.tickAt = t
	s.q.push(event{at: t, kind: evTick, to: int32(i), inc: n.inc, from: int32(n.tickGen)})
}

// rearm brings node i's tick forward when its core's next deadline moved
// before the armed one (DeadlineTicks).
func (s *Sim) rearm(i int) {
	n := &s.nodes[i]
	if !s.opt.DeadlineTicks || n.core == nil || n.stalled {
		return
	}
	if at := max(n.core.NextDeadline()-CoreOrigin, s.now); at < n.tickAt {
		s.armTick(i, at+s.timerSlack())
	}
}

func (s *Sim) deliver(e *event) {
	to := &s.nodes[e.to]
	switch {
	case to.core == nil || to.inc != e.inc:
		s.stats.Down++
	case to.group != s.nodes[e.from].group:
		s.stats.Partitioned++
	case to.stalled && len(to.backlog) < stallBacklog:
		to.backlog = append(to.backlog, buffered{buf: e.buf, from: e.from})
		return // stepped, and returned to the pool, by Resume
	case to.stalled:
		s.stats.Down++
	default:
		if err := s.dec.Decode(e.buf, &s.msg); err != nil {
			s.violate("node %d sent node %d a frame the decoder refused: %v", e.from, e.to, err)
			break
		}
		s.stats.Delivered++
		r := to.core.Step(s.CoreNow(), &s.msg)
		s.handle(int(e.to), &r)
	}
	s.putBuf(e.buf)
}

// handle persists, checks and routes one Ready of node i.
func (s *Sim) handle(i int, r *gossip.Ready) {
	n := &s.nodes[i]
	n.touched = true
	cur, conf := n.core.Epochs()
	if cur < n.cur || conf < n.cfg {
		s.violate("node %d epochs went backwards: current %d -> %d, config %d -> %d", i, n.cur, cur, n.cfg, conf)
	}
	if (cur > n.cur || conf > n.cfg) && !r.Persist && s.opt.KeepState {
		// An epoch that is not made durable can be lost by a crash and
		// then go backwards; the restart check catches the consequence,
		// this names the cause.
		s.violate("node %d raised its epochs to current=%d config=%d without setting Persist", i, cur, conf)
	}
	n.cur, n.cfg = max(n.cur, cur), max(n.cfg, conf)
	if s.opt.KeepState {
		if r.Persist {
			n.saved, n.lazy = n.core.State(), false
		} else if r.Dirty {
			n.lazy = true
		}
	}
	s.checkFailover(i, r)
	s.observeServing(i, r)
	for k := range r.Messages {
		s.send(i, &r.Messages[k])
	}
	if s.opt.OnReady != nil {
		s.opt.OnReady(i, r)
	}
	if r.PauseWrites != 0 {
		s.pauseWrites(i)
	}
	s.rearm(i)
}

func (s *Sim) send(from int, env *gossip.Envelope) {
	var to int32
	var ok bool
	if !env.To.IsZero() {
		to, ok = s.byID[env.To]
	}
	if !ok {
		to, ok = s.byAdr[env.Addr]
	}
	buf, err := s.enc.AppendFrame(s.getBuf(), env.Msg)
	if err != nil {
		s.violate("node %d produced a %v message the encoder refused: %v", from, env.Msg.Type, err)
		s.putBuf(buf)
		return
	}
	s.stats.Sent++
	s.stats.Bytes += uint64(len(buf))
	ts := &s.stats.ByType[env.Msg.Type&15]
	ts.Msgs++
	ts.Bytes += uint64(len(buf))
	switch {
	case ok && int(to) == from:
		s.violate("node %d sent a %v to itself", from, env.Msg.Type)
	case !ok:
		s.stats.Undeliverable++
	case s.opt.Loss > 0 && s.rng.Float64() < s.opt.Loss:
		s.stats.Lost++
	case s.nodes[from].group != s.nodes[to].group:
		s.stats.Partitioned++
	default:
		s.q.push(event{at: s.now + s.latency(), kind: evDeliver, buf: buf, to: to, from: int32(from), inc: s.nodes[to].inc})
		return
	}
	s.putBuf(buf)
}

func (s *Sim) latency() time.Duration {
	d := s.opt.Latency
	if j := int64(s.opt.Jitter); j > 0 {
		d += time.Duration(s.rng.Int64N(2*j+1) - j)
	}
	return max(d, time.Microsecond)
}

// getBuf returns an empty frame buffer from the pool. Buffers keep the
// capacity they grew to, so steady state encodes without allocating.
func (s *Sim) getBuf() []byte {
	if k := len(s.free); k > 0 {
		b := s.free[k-1]
		s.free = s.free[:k-1]
		return b[:0]
	}
	return make([]byte, 0, 512)
}

func (s *Sim) putBuf(b []byte) {
	if cap(b) > 0 && cap(b) <= 1<<20 {
		s.free = append(s.free, b[:0])
	}
}

// cloneState deep-copies st, so a restart never shares slices with the
// snapshot it boots from.
func cloneState(st *State) *State {
	c := *st
	c.Nodes = slices.Clone(st.Nodes)
	c.Claims = slices.Clone(st.Claims)
	for k := range c.Claims {
		c.Claims[k].Ranges = slices.Clone(c.Claims[k].Ranges)
	}
	return &c
}

// randDur is a uniform duration in [0, d).
func randDur(rng *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(d)))
}
