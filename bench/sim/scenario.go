package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// Scenario names for Config.Scenario.
const (
	ScenarioJoin   = "join"   // N fresh nodes meet one seed node
	ScenarioFail   = "fail"   // a master of a formed cluster crashes
	ScenarioConfig = "config" // a master takes a slot from another with a new configEpoch
	ScenarioMix    = "mix"    // the random fault mix of the simulation tests (see RunMix)
	// ScenarioFailover crashes one master of a formed cluster; converged
	// when every live node lists one of its replicas as master of its slots.
	ScenarioFailover = "failover"
	// ScenarioMassFail crashes Config.Failing masters at once (a rack).
	ScenarioMassFail = "massfail"
)

// Config is one cluster experiment, as `hearsay sim cluster` takes it.
type Config struct {
	Scenario string
	// Nodes is N. Masters is M for fail and config; 0 means N/2 (one
	// replica per master, Redis's usual layout), at least 1 and at most
	// DefaultMaxMasters.
	Nodes, Masters int
	// Loss is the message loss probability in [0,1).
	Loss float64
	// Latency and Jitter shape the one-way link delay: Latency±Jitter.
	// Jitter 0 means Latency/4; negative means none.
	Latency, Jitter time.Duration
	Seed            uint64
	// Period is the core's GossipInterval, Timeout its NodeTimeout.
	Period, Timeout time.Duration
	// Warmup runs a formed cluster before the steady-state window, Steady
	// is that window (for join it follows convergence), and the event comes
	// right after it.
	Warmup, Steady time.Duration
	// Duration bounds the virtual time allowed for convergence after the
	// event; Sample is how often convergence is checked.
	Duration, Sample time.Duration
	// ExternalHeartbeat runs the cores with liveness from the modelled
	// heartbeat transport (the core's ExternalHeartbeat, driven by its
	// HeartbeatPlan) instead of bus pings.
	ExternalHeartbeat bool
	// DeadlineTicks ticks each core at its NextDeadline, as the node
	// runtime does, instead of at a fixed rate.
	DeadlineTicks bool
	// Failing is how many masters massfail crashes at once; 0 means
	// DefaultFailing.
	Failing int
}

// DefaultConfig is the join scenario over 1000 nodes with 1ms latency, a
// 100ms gossip period and a 5s node timeout.
func DefaultConfig() Config {
	return Config{
		Scenario: ScenarioJoin,
		Nodes:    1000,
		Latency:  time.Millisecond,
		Seed:     1,
		Period:   100 * time.Millisecond,
		Timeout:  5 * time.Second,
		Warmup:   2 * time.Second,
		Steady:   2 * time.Second,
		Duration: 120 * time.Second,
		Sample:   10 * time.Millisecond,
	}
}

// Validate reports every bad field, each naming its flag.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag string, v any, why string) {
		errs = append(errs, fmt.Errorf("invalid value %v for flag --%s: %s", v, flag, why))
	}
	switch c.Scenario {
	case ScenarioJoin, ScenarioFail, ScenarioConfig, ScenarioMix, ScenarioFailover, ScenarioMassFail:
	default:
		bad("scenario", fmt.Sprintf("%q", c.Scenario), "must be join, fail, config, mix, failover or massfail")
	}
	minNodes := 2
	switch c.Scenario {
	case ScenarioConfig:
		minNodes = 4 // two masters, by default one replica each
	case ScenarioFail:
		minNodes = 3 // FAIL needs a majority of the masters alive
	case ScenarioFailover, ScenarioMassFail:
		minNodes = 6 // three masters with a replica each
	}
	if c.Nodes < minNodes && !(c.Scenario == ScenarioMix && c.Nodes == 0) {
		bad("nodes", c.Nodes, fmt.Sprintf("must be at least %d for the %s scenario (0 picks 10-20 for mix)", minNodes, c.Scenario))
	}
	if c.Masters < 0 || (c.Nodes > 0 && c.Masters > c.Nodes) || c.Masters > wire.NumSlots {
		bad("masters", c.Masters, "must be between 1 and min(nodes, 16384), or 0 for min(nodes/2, 500)")
	}
	if c.Scenario == ScenarioConfig && c.Masters == 1 {
		bad("masters", c.Masters, "the config scenario moves a slot between two masters: needs at least 2")
	}
	if c.Scenario == ScenarioFail && c.Nodes >= minNodes && c.masters() < 3 {
		bad("masters", c.Masters, fmt.Sprintf("the fail scenario crashes one of %d masters, and the rest are no majority: needs at least 3", c.masters()))
	}
	if (c.Scenario == ScenarioFailover || c.Scenario == ScenarioMassFail) && c.Nodes >= minNodes {
		c.validateFailover(bad)
	}
	if !(c.Loss >= 0 && c.Loss < 1) {
		bad("loss", c.Loss, "must be in [0,1) (a fraction, or a percentage such as 5%)")
	}
	positive := func(flag string, d time.Duration) {
		if d <= 0 {
			bad(flag, d, "must be positive")
		}
	}
	positive("latency", c.Latency)
	positive("period", c.Period)
	positive("timeout", c.Timeout)
	if c.Warmup < 0 {
		bad("warmup", c.Warmup, "must not be negative")
	}
	positive("steady", c.Steady)
	positive("duration", c.Duration)
	positive("sample", c.Sample)
	return errors.Join(errs...)
}

// DefaultMaxMasters caps the default master count. Every core holds a claim
// and slot-table entries per master, so at 10,000 nodes N/2 masters would
// double the simulator's memory for no new behaviour.
const DefaultMaxMasters = 500

func (c *Config) masters() int {
	if c.Scenario == ScenarioFailover || c.Scenario == ScenarioMassFail {
		return c.failoverMasters()
	}
	if c.Masters > 0 {
		return c.Masters
	}
	return min(max(c.Nodes/2, 1), DefaultMaxMasters)
}

// Point is one probe of a converging run, for plots: the virtual time since
// the event, how many live nodes had converged (know the change), and the
// bus bytes per node per second since the previous point.
type Point struct {
	MS               float64
	Knowing          int
	BytesPerNodePerS float64
}

// timeline records Points at every probe of a converging run.
type timeline struct {
	t0    time.Duration
	at    time.Duration
	bytes uint64
	n     int
	pts   []Point
}

func newTimeline(s *Sim, n int) *timeline {
	return &timeline{t0: s.now, at: s.now, bytes: s.stats.Bytes, n: n}
}

func (tl *timeline) point(s *Sim, knowing int) {
	d := s.now - tl.at
	if d <= 0 && len(tl.pts) > 0 {
		return
	}
	tl.pts = append(tl.pts, Point{MS: durMS(s.now - tl.t0), Knowing: knowing,
		BytesPerNodePerS: rate(tl.bytes, s.stats.Bytes, tl.n, d)})
	tl.at, tl.bytes = s.now, s.stats.Bytes
}

// Result is what one experiment measured. Rates are per node and per
// second of virtual time.
type Result struct {
	// Timeline is the convergence of the event, probe by probe (join,
	// fail and config); it is not part of the printed result.
	Timeline []Point `json:"-"`
	Scenario string  `json:"scenario"`
	Nodes    int     `json:"nodes"`
	Masters  int     `json:"masters,omitempty"`
	// VotesGranted and Elections count failover votes and won elections
	// (mix scenario).
	VotesGranted int `json:"votes_granted,omitempty"`
	Elections    int `json:"elections,omitempty"`
	// Failing is how many masters crashed at once (failover and
	// massfail); ElectionsStarted counts election attempts after the
	// crash, ElectionsLost those that did not win; Promotions counts the
	// new masters of each crashed shard, in crash order.
	Failing          int   `json:"failing,omitempty"`
	ElectionsStarted int   `json:"elections_started,omitempty"`
	ElectionsLost    int   `json:"elections_lost,omitempty"`
	Promotions       []int `json:"-"`
	// FailMS is when the last crashed master was first marked FAIL, and
	// ShardsMS when every crashed shard had a master that holds its slots
	// in its own table (failover and massfail).
	FailMS   float64 `json:"fail_ms,omitempty"`
	ShardsMS float64 `json:"shards_ms,omitempty"`
	// Converged says the convergence condition held within Duration.
	Converged bool `json:"converged"`
	// ConvergeMS is the virtual time from the event to convergence, -1 if
	// it did not converge.
	ConvergeMS float64 `json:"converge_ms"`
	// SlotsMS and DigestMS split config convergence: every node's slot
	// owner agrees, and every node's state digest is equal.
	SlotsMS  float64 `json:"slots_ms,omitempty"`
	DigestMS float64 `json:"digest_ms,omitempty"`
	// Traffic from the event to convergence.
	MsgsPerNodePerS  float64 `json:"msgs_per_node_per_s"`
	BytesPerNodePerS float64 `json:"bytes_per_node_per_s"`
	// Traffic in the steady window: before the event, or for join after
	// convergence.
	SteadyMsgsPerNodePerS  float64 `json:"steady_msgs_per_node_per_s"`
	SteadyBytesPerNodePerS float64 `json:"steady_bytes_per_node_per_s"`
	// PeakMemPerNodeBytes is the peak Go heap in use while the simulation
	// ran, above what was in use before it, divided by N.
	PeakMemPerNodeBytes uint64 `json:"peak_mem_per_node_bytes"`
	// LiveMemPerNodeBytes is the heap still in use after a collection at
	// the end of the run, above the baseline, divided by N: what the cores
	// really hold, without garbage not yet collected.
	LiveMemPerNodeBytes uint64 `json:"live_mem_per_node_bytes"`
	Seed                uint64 `json:"seed"`
	// VirtualMS is the virtual time simulated; WallMS the real time it took.
	VirtualMS float64 `json:"virtual_ms"`
	WallMS    float64 `json:"wall_ms"`
	// ByType counts frames and bytes per message type over the whole run.
	ByType map[string]TypeStats `json:"by_type"`
	Stats  Stats                `json:"network"`
	// CollisionMS is, in the fault mix, the longest time two masters that
	// could talk served one slot at one configEpoch (taken without
	// consensus) before the collision rule split them.
	CollisionMS float64 `json:"collision_ms,omitempty"`
	Collisions  int     `json:"collisions,omitempty"`
	// Violations are invariant breaks seen during the run; see
	// Sim.Violations and RunMix.
	Violations []string `json:"violations,omitempty"`
}

// String renders the key=value line of `hearsay sim cluster`.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario=%s nodes=%d converge_ms=%s msgs_per_node_per_s=%.1f bytes_per_node_per_s=%.0f steady_bytes_per_node_per_s=%.0f peak_mem_per_node_bytes=%d seed=%d",
		r.Scenario, r.Nodes, ms(r.ConvergeMS), r.MsgsPerNodePerS, r.BytesPerNodePerS, r.SteadyBytesPerNodePerS, r.PeakMemPerNodeBytes, r.Seed)
	if r.Failing > 0 {
		fmt.Fprintf(&b, " masters=%d failing=%d fail_ms=%s shards_ms=%s elections_started=%d elections_won=%d elections_lost=%d votes_granted=%d",
			r.Masters, r.Failing, ms(r.FailMS), ms(r.ShardsMS), r.ElectionsStarted, r.Elections, r.ElectionsLost, r.VotesGranted)
	}
	if len(r.Violations) > 0 {
		fmt.Fprintf(&b, " violations=%d", len(r.Violations))
	}
	return b.String()
}

// JSON renders the result as one JSON object.
func (r *Result) JSON() string {
	b, _ := json.Marshal(r)
	return string(b)
}

func ms(v float64) string {
	if v < 0 {
		return "-1"
	}
	return fmt.Sprintf("%.1f", v)
}

func durMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rate is per node per second of virtual time between two counter values.
func rate(a, b uint64, n int, d time.Duration) float64 {
	if d <= 0 || n <= 0 {
		return 0
	}
	return float64(b-a) / float64(n) / d.Seconds()
}

// memMeter tracks the peak heap in use above a baseline.
type memMeter struct {
	base, peak uint64
	next       time.Duration
	every      time.Duration
}

func newMemMeter(every time.Duration) *memMeter {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &memMeter{base: ms.HeapInuse, peak: ms.HeapInuse, every: every}
}

// sample reads the heap if virtual time passed the next sampling point.
func (m *memMeter) sample(now time.Duration) {
	if now < m.next {
		return
	}
	m.next = now + m.every
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.peak = max(m.peak, ms.HeapInuse)
}

// live collects garbage and returns the heap in use above the baseline,
// per node.
func (m *memMeter) live(n int) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if n <= 0 || ms.HeapInuse < m.base {
		return 0
	}
	return (ms.HeapInuse - m.base) / uint64(n)
}

func (m *memMeter) perNode(n int) uint64 {
	if n <= 0 || m.peak < m.base {
		return 0
	}
	return (m.peak - m.base) / uint64(n)
}

func (c *Config) options() Options {
	return Options{
		Seed:    c.Seed,
		Latency: c.Latency,
		Jitter:  c.Jitter,
		Loss:    c.Loss,
		Core: gossip.Config{
			GossipInterval:    c.Period,
			NodeTimeout:       c.Timeout,
			ExternalHeartbeat: c.ExternalHeartbeat,
		},
		DeadlineTicks: c.DeadlineTicks,
	}
}

// Run runs one experiment. An error means the configuration was bad or the
// cluster could not be built; a run that does not converge is a Result with
// Converged false.
func Run(cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.Scenario == ScenarioMix {
		return RunMix(cfg)
	}
	start := time.Now()
	mem := newMemMeter(100 * time.Millisecond)
	s := New(cfg.options())
	res := Result{Scenario: cfg.Scenario, Nodes: cfg.Nodes, Seed: cfg.Seed, ConvergeMS: -1}
	var err error
	switch cfg.Scenario {
	case ScenarioJoin:
		err = runJoin(s, &cfg, &res, mem)
	case ScenarioFail:
		err = runFail(s, &cfg, &res, mem)
	case ScenarioConfig:
		err = runConfig(s, &cfg, &res, mem)
	case ScenarioFailover, ScenarioMassFail:
		err = runFailover(s, &cfg, &res, mem)
	}
	if err != nil {
		return Result{}, err
	}
	mem.sample(1 << 62)
	res.PeakMemPerNodeBytes = mem.perNode(cfg.Nodes)
	res.LiveMemPerNodeBytes = mem.live(cfg.Nodes)
	res.finish(s, start)
	runtime.KeepAlive(s)
	return res, nil
}

// finish records what every run reports at its end: the virtual and wall
// time it took (wall time since start), the network counters and the
// violations seen.
func (r *Result) finish(s *Sim, start time.Time) {
	r.VirtualMS = durMS(s.Now())
	r.WallMS = float64(time.Since(start).Microseconds()) / 1000
	r.Stats = s.Stats()
	r.ByType = byType(&r.Stats)
	r.Violations = s.Violations()
}

func byType(st *Stats) map[string]TypeStats {
	m := make(map[string]TypeStats)
	for t, v := range st.ByType {
		if v.Msgs > 0 {
			m[wire.Type(t).String()] = v
		}
	}
	return m
}

// window measures traffic between two points in virtual time.
type window struct {
	at          time.Duration
	msgs, bytes uint64
}

func mark(s *Sim) window {
	st := &s.stats
	return window{at: s.now, msgs: st.Sent, bytes: st.Bytes}
}

func (w window) rates(s *Sim, n int) (msgs, bytes float64) {
	d := s.now - w.at
	return rate(w.msgs, s.stats.Sent, n, d), rate(w.bytes, s.stats.Bytes, n, d)
}

// pending is the set of nodes a probe has not yet seen converge. Probes
// recheck only nodes whose core was called since the last look.
type pending struct{ idx []int32 }

func newPending(s *Sim, skip func(i int) bool) *pending {
	p := &pending{}
	for i := range s.Len() {
		if skip == nil || !skip(i) {
			p.idx = append(p.idx, int32(i))
		}
	}
	return p
}

// sweep drops from the set every touched node for which done holds.
func (p *pending) sweep(s *Sim, done func(i int) bool) bool {
	k := 0
	for _, i := range p.idx {
		if s.Touched(int(i)) {
			s.ClearTouched(int(i))
			if done(int(i)) {
				continue
			}
		}
		p.idx[k] = i
		k++
	}
	p.idx = p.idx[:k]
	return k == 0
}

func runJoin(s *Sim, cfg *Config, res *Result, mem *memMeter) error {
	n := cfg.Nodes
	s.AddNodes(n)
	for i := range n {
		if err := s.Boot(i, nil); err != nil {
			return err
		}
	}
	rng := s.Rand()
	for i := 1; i < n; i++ {
		s.At(randDur(rng, 100*time.Millisecond), func() {
			if err := s.Meet(i, 0); err != nil {
				s.violate("node %d could not meet the seed: %v", i, err)
			}
		})
	}
	var views []NodeView
	p := newPending(s, nil)
	full := func(i int) bool {
		c := s.Core(i)
		if c.KnownNodes() < n {
			return false
		}
		views = c.Nodes(views[:0])
		if len(views) != n {
			return false
		}
		for k := range views {
			if views[k].Flags&wire.FlagHandshake != 0 {
				return false
			}
		}
		return true
	}
	w0 := mark(s)
	tl := newTimeline(s, n)
	at, ok := s.RunUntilTrue(func() bool {
		mem.sample(s.now)
		done := p.sweep(s, full)
		tl.point(s, n-len(p.idx))
		return done
	}, cfg.Sample, cfg.Duration)
	res.Timeline = tl.pts
	res.MsgsPerNodePerS, res.BytesPerNodePerS = w0.rates(s, n)
	if ok {
		res.Converged, res.ConvergeMS = true, durMS(at)
	}
	w1 := mark(s)
	end := s.now + cfg.Steady
	s.RunUntilTrue(func() bool { mem.sample(s.now); return false }, 100*time.Millisecond, end)
	res.SteadyMsgsPerNodePerS, res.SteadyBytesPerNodePerS = w1.rates(s, n)
	return nil
}

// formed boots a formed cluster, runs the warmup and the steady window (whose
// rates it records in res), and returns the claims it assigned.
func formed(s *Sim, cfg *Config, res *Result, mem *memMeter) ([]wire.SlotClaim, error) {
	n, m := cfg.Nodes, cfg.masters()
	res.Masters = m
	s.AddNodes(n)
	claims, err := s.BootCluster(0, n, m, wire.NumSlots)
	if err != nil {
		return nil, err
	}
	idle := func() bool { mem.sample(s.now); return false }
	s.RunUntilTrue(idle, 100*time.Millisecond, cfg.Warmup)
	w := mark(s)
	s.RunUntilTrue(idle, 100*time.Millisecond, cfg.Warmup+cfg.Steady)
	res.SteadyMsgsPerNodePerS, res.SteadyBytesPerNodePerS = w.rates(s, n)
	return claims, nil
}

func runFail(s *Sim, cfg *Config, res *Result, mem *memMeter) error {
	if _, err := formed(s, cfg, res, mem); err != nil {
		return err
	}
	n := cfg.Nodes
	victim := s.Rand().IntN(res.Masters)
	vid := s.ID(victim)
	seen := make([]bool, n)
	s.opt.OnReady = func(i int, r *gossip.Ready) {
		for _, e := range r.Events {
			if e.Node != vid {
				continue
			}
			switch e.Kind {
			case gossip.EventNodeFail:
				seen[i] = true
			case gossip.EventNodeFailCleared:
				seen[i] = false
			}
		}
	}
	t0 := s.now
	s.Crash(victim)
	w := mark(s)
	p := newPending(s, func(i int) bool { return i == victim })
	sees := func(i int) bool {
		if !seen[i] {
			return false
		}
		v, ok := s.Core(i).Node(vid)
		return ok && v.Flags&wire.FlagFail != 0
	}
	tl := newTimeline(s, n)
	at, ok := s.RunUntilTrue(func() bool {
		mem.sample(s.now)
		// A node that saw FAIL may see it cleared again: recheck it then.
		done := p.sweep(s, sees)
		tl.point(s, n-1-len(p.idx))
		return done
	}, cfg.Sample, t0+cfg.Duration)
	res.Timeline = tl.pts
	res.MsgsPerNodePerS, res.BytesPerNodePerS = w.rates(s, n)
	if ok {
		res.Converged, res.ConvergeMS = true, durMS(at-t0)
	}
	return nil
}

func runConfig(s *Sim, cfg *Config, res *Result, mem *memMeter) error {
	claims, err := formed(s, cfg, res, mem)
	if err != nil {
		return err
	}
	n := cfg.Nodes
	rng := s.Rand()
	a := rng.IntN(res.Masters)
	b := (a + 1 + rng.IntN(res.Masters-1)) % res.Masters
	slot := claims[b].Ranges[0].Start
	t0 := s.now
	w := mark(s)
	if err := s.TakeSlot(a, slot); err != nil {
		return fmt.Errorf("sim: node %d could not take slot %d from node %d: %w", a, slot, b, err)
	}
	aid := s.ID(a)
	_, epoch := s.Core(a).Epochs()

	// Slots: each node's owner of the slot is a and a's new epoch.
	ps := newPending(s, nil)
	owns := func(i int) bool {
		id, e := s.Core(i).SlotOwner(slot)
		return id == aid && e == epoch
	}
	// Digests: all nodes equal. Digest is O(1), so every probe reads all.
	var slotsAt, digestAt time.Duration = -1, -1
	same := func() bool {
		d := s.Core(0).Digest()
		for i := 1; i < n; i++ {
			if s.Core(i).Digest() != d {
				return false
			}
		}
		return true
	}
	tl := newTimeline(s, n)
	at, ok := s.RunUntilTrue(func() bool {
		mem.sample(s.now)
		if slotsAt < 0 {
			done := ps.sweep(s, owns)
			tl.point(s, n-len(ps.idx))
			if done {
				slotsAt = s.now
			} else {
				return false
			}
		}
		if digestAt < 0 && same() {
			digestAt = s.now
		}
		return digestAt >= 0
	}, cfg.Sample, t0+cfg.Duration)
	res.MsgsPerNodePerS, res.BytesPerNodePerS = w.rates(s, n)
	res.Timeline = tl.pts
	if slotsAt >= 0 {
		res.SlotsMS = durMS(slotsAt - t0)
	}
	if digestAt >= 0 {
		res.DigestMS = durMS(digestAt - t0)
	}
	if ok {
		res.Converged, res.ConvergeMS = true, durMS(at-t0)
	}
	return nil
}
