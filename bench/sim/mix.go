package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hearsay/hearsay/failover"
	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// MixConfig is the configuration the simulation tests run for one seed:
// 10-20 nodes with a 1s node timeout and up to 20% loss, with liveness
// from the modelled heartbeat transport for even seeds and from bus pings
// for odd ones, and half of each with ticks at the cores' own deadlines as
// a node runs them. Its Command replays it.
func MixConfig(seed uint64) Config {
	c := DefaultConfig()
	c.Scenario = ScenarioMix
	c.Nodes = 0
	c.Seed = seed
	c.Loss = 0.2
	c.Timeout = time.Second
	c.Duration = 60 * time.Second
	c.ExternalHeartbeat = seed%2 == 0
	c.DeadlineTicks = seed%4 >= 2
	return c
}

// Command is the `hearsay sim cluster` command line that runs c.
func (c *Config) Command() string {
	d := DefaultConfig()
	var b strings.Builder
	fmt.Fprintf(&b, "hearsay sim cluster --scenario %s", c.Scenario)
	if c.Nodes != d.Nodes {
		fmt.Fprintf(&b, " --nodes %d", c.Nodes)
	}
	if c.Masters != 0 {
		fmt.Fprintf(&b, " --masters %d", c.Masters)
	}
	if c.Failing != 0 {
		fmt.Fprintf(&b, " --failing %d", c.Failing)
	}
	if c.Loss != d.Loss {
		fmt.Fprintf(&b, " --loss %g", c.Loss)
	}
	for _, f := range []struct {
		name string
		v, d time.Duration
	}{
		{"latency", c.Latency, d.Latency}, {"jitter", c.Jitter, d.Jitter},
		{"period", c.Period, d.Period}, {"timeout", c.Timeout, d.Timeout},
		{"warmup", c.Warmup, d.Warmup}, {"steady", c.Steady, d.Steady},
		{"duration", c.Duration, d.Duration}, {"sample", c.Sample, d.Sample},
	} {
		if f.v != f.d {
			fmt.Fprintf(&b, " --%s %v", f.name, f.v)
		}
	}
	if c.ExternalHeartbeat {
		b.WriteString(" --external-heartbeat")
	}
	if c.DeadlineTicks {
		b.WriteString(" --deadline-ticks")
	}
	fmt.Fprintf(&b, " --seed %d", c.Seed)
	return b.String()
}

// mixPhase is how long the faults of a mix run last before everything heals.
const mixPhase = 8 * time.Second

// RunMix runs the random fault mix behind the simulation tests. From the
// seed it draws:
//
//   - N in [10,20] (unless cfg.Nodes is set), of which 3..N boot as a formed
//     cluster with 1..5 masters, possibly leaving 1024 slots unassigned; the
//     rest boot fresh and MEET a random member within the first 2s;
//   - a loss probability in [0, cfg.Loss];
//   - 3 to 8 faults over the first 8s: crashes (restarted from persisted
//     state 0.3-3s later), stalls (the process freezes while its kernel
//     keeps answering heartbeats, and resumes 0.3-3s later), partitions
//     into two random sides (healed 0.5-4s later), AddSlots of unassigned
//     slots, slot takeovers by a master with a bumped epoch (for odd slots
//     a ClaimSlots of up to 32 slots, as an atomic migration's target), REPLICATE of
//     a master by a node, CLUSTER FAILOVER on a replica, and bare epoch
//     bumps.
//
// Liveness comes from bus pings or, with cfg.ExternalHeartbeat, from the
// modelled heartbeat transport (MixConfig picks it for even seeds).
//
// At 8s every partition heals, every stalled node resumes and every
// crashed node restarts; nodes that
// know nobody MEET a member again, as an operator would, every 2s while
// they still know nobody (a MEET can be lost). The run then
// settles until all nodes agree or cfg.Duration passes. Violations lists
// every broken invariant: epochs going backwards (checked on every Ready and
// across restarts), a voter granting one epoch twice or two winners of one
// epoch, two masters serving one slot at one configEpoch (see servingLog;
// all checked on every Ready), no convergence (one node table, equal
// digests, one slot table), two owners of a slot with the same
// configEpoch, and a slot whose owner is not a live master after healing.
func RunMix(cfg Config) (Result, error) {
	start := time.Now()
	opt := cfg.options()
	opt.KeepState = true
	s := New(opt)
	rng := s.Rand()
	n := cfg.Nodes
	if n == 0 {
		n = 10 + rng.IntN(11)
	}
	res := Result{Scenario: ScenarioMix, Nodes: n, Seed: cfg.Seed, ConvergeMS: -1}
	formedN := 3 + rng.IntN(n-2)
	if n < 3 {
		formedN = n
	}
	masters := 1 + rng.IntN(min(formedN, 5))
	if cfg.Masters > 0 {
		masters = min(cfg.Masters, formedN)
	}
	slots := wire.NumSlots
	if rng.IntN(2) == 0 {
		slots -= 1024
	}
	res.Masters = masters
	s.SetLoss(rng.Float64() * cfg.Loss)

	s.AddNodes(n)
	s.CheckServing()
	if _, err := s.BootCluster(0, formedN, masters, slots); err != nil {
		return res, err
	}
	for i := formedN; i < n; i++ {
		if err := s.Boot(i, nil); err != nil {
			return res, err
		}
		seed := rng.IntN(formedN)
		s.At(randDur(rng, 2*time.Second), func() { _ = s.Meet(i, seed) })
	}

	faults := 3 + rng.IntN(6)
	for range faults {
		at := 200*time.Millisecond + randDur(rng, mixPhase-200*time.Millisecond)
		switch p := rng.IntN(100); {
		case p < 30:
			// Half the crashes hit a master of the formed cluster, so
			// that its replicas fail over and it later returns.
			i, back := rng.IntN(n), at+300*time.Millisecond+randDur(rng, 2700*time.Millisecond)
			if rng.IntN(2) == 0 {
				i = rng.IntN(masters)
			}
			s.At(at, func() { s.Crash(i) })
			s.At(min(back, mixPhase), func() {
				if !s.Up(i) {
					_ = s.Restart(i)
				}
			})
		case p < 40:
			// A stall (SIGSTOP, a swap storm) freezes a process, half
			// the time a master's, while its kernel keeps answering
			// heartbeats: only its stopped progress counter gives it
			// away. It resumes 0.3-3s later and steps what its
			// sockets buffered.
			i, back := rng.IntN(n), at+300*time.Millisecond+randDur(rng, 2700*time.Millisecond)
			if rng.IntN(2) == 0 {
				i = rng.IntN(masters)
			}
			s.At(at, func() { s.Stall(i) })
			s.At(min(back, mixPhase), func() { s.Resume(i) })
		case p < 60:
			var side []int
			for i := range n {
				if rng.IntN(2) == 0 {
					side = append(side, i)
				}
			}
			s.At(at, func() { s.Partition(side) })
			s.At(min(at+500*time.Millisecond+randDur(rng, 3500*time.Millisecond), mixPhase), s.Heal)
		case p < 68:
			i := rng.IntN(n)
			lo := uint16(wire.NumSlots - 1024 + rng.IntN(1000))
			r := []wire.SlotRange{{Start: lo, End: lo + uint16(rng.IntN(24))}}
			s.At(at, func() {
				if s.Up(i) {
					_ = s.Do(i, func(c *Core, now time.Duration) (gossip.Ready, error) { return c.AddSlots(now, r) })
				}
			})
		case p < 78:
			i, slot := rng.IntN(n), uint16(rng.IntN(wire.NumSlots))
			s.At(at, func() {
				// Only a master takes slots: see the "config" scenario.
				if !s.Up(i) || !s.isMaster(i) {
					return
				}
				// Odd slots go by an atomic migration's claim of a
				// short range instead; the choice comes from the slot
				// so that no draw is added and other seeds keep
				// their faults.
				if slot%2 == 1 {
					end := min(int(slot)+int(slot%32), wire.NumSlots-1)
					_ = s.ClaimSlots(i, []wire.SlotRange{{Start: slot, End: uint16(end)}})
					return
				}
				_ = s.TakeSlot(i, slot)
			})
		case p < 85:
			// A node without slots (a joiner, usually) becomes a replica
			// of one of the formed cluster's masters.
			i, m := rng.IntN(n), rng.IntN(masters)
			s.At(at, func() {
				if s.Up(i) {
					id := s.ID(m)
					_ = s.Do(i, func(c *Core, now time.Duration) (gossip.Ready, error) { return c.Replicate(now, id) })
				}
			})
		case p < 95:
			// An operator's CLUSTER FAILOVER on a replica, in the
			// default mode (pause, catch up, elect) or FORCE.
			i, mode := rng.IntN(n), failover.Mode(failover.ModeDefault+failover.Mode(rng.IntN(2)))
			s.At(at, func() {
				if s.Up(i) && !s.isMaster(i) {
					_ = s.Do(i, func(c *Core, now time.Duration) (gossip.Ready, error) { return c.Failover(now, mode) })
				}
			})
		default:
			i := rng.IntN(n)
			s.At(at, func() {
				if s.Up(i) {
					_ = s.Do(i, bumpEpoch)
				}
			})
		}
	}

	rejoin := func() {
		for i := range n {
			if s.Up(i) && s.Core(i).KnownNodes() < 2 {
				_ = s.Meet(i, rng.IntN(formedN))
			}
		}
	}
	s.At(mixPhase, func() {
		s.Heal()
		for i := range n {
			s.Resume(i)
			if !s.Up(i) {
				_ = s.Restart(i)
			}
		}
		rejoin()
	})
	// An operator retries a MEET that got lost, as redis-cli --cluster
	// check would show it is needed.
	for t := mixPhase + 2*time.Second; t < mixPhase+cfg.Duration/2; t += 2 * time.Second {
		s.At(t, rejoin)
	}

	// Collisions between quiet masters produce no Ready to check them on.
	var sweep func()
	sweep = func() {
		s.sweepServing()
		if s.now < mixPhase+cfg.Duration {
			s.At(s.now+250*time.Millisecond, sweep)
		}
	}
	s.At(250*time.Millisecond, sweep)

	s.RunUntil(mixPhase)
	var why string
	at, ok := s.RunUntilTrue(func() bool {
		why = agree(s)
		return why == ""
	}, 100*time.Millisecond, mixPhase+cfg.Duration)
	if ok {
		res.Converged, res.ConvergeMS = true, durMS(at-mixPhase)
	} else {
		s.violate("no convergence %v after healing: %s", cfg.Duration, why)
	}
	// Once converged every slot table is the same (agree checked), so
	// node 0 speaks for all; otherwise check each node to name the culprit.
	check := []int{0}
	if !ok {
		check = check[:0]
		for i := range n {
			if s.Up(i) {
				check = append(check, i)
			}
		}
	}
	for _, i := range check {
		if v := tableMismatch(s, i); v != "" {
			s.violate("%s", v)
		}
	}
	if v := sameEpochOwners(s, check); v != "" {
		s.violate("%s", v)
	}
	if ok {
		if v := ownersAreMasters(s); v != "" {
			s.violate("%s", v)
		}
	}
	res.VotesGranted, res.Elections = s.Elections()
	res.CollisionMS, res.Collisions = durMS(s.LongestCollision()), s.Collisions()
	res.MsgsPerNodePerS = rate(0, s.stats.Sent, n, s.now)
	res.BytesPerNodePerS = rate(0, s.stats.Bytes, n, s.now)
	res.finish(s, start)
	return res, nil
}

// agree reports why the up nodes do not (yet) share one view, or "" when they
// do: the same node IDs with no handshake in flight and nobody FAIL, equal
// digests, and the same owner and configEpoch for every slot.
func agree(s *Sim) string {
	// Digests first: they are O(1), and Nodes() is not (it lists each
	// master's slots), so the full comparison runs only once they match.
	for i := range s.Len() {
		if !s.Up(i) {
			return fmt.Sprintf("node %d is down", i)
		}
		if d, d0 := s.Core(i).Digest(), s.Core(0).Digest(); d != d0 {
			return fmt.Sprintf("node %d digest %x, node 0 digest %x", i, d, d0)
		}
	}
	var ref, views []NodeView
	for i := range s.Len() {
		views = s.Core(i).Nodes(views[:0])
		for k := range views {
			if f := views[k].Flags; f&(wire.FlagHandshake|wire.FlagFail) != 0 {
				return fmt.Sprintf("node %d sees %s with flags %#x", i, views[k].ID, f)
			}
		}
		if i == 0 {
			ref = slices.Clone(views)
			continue
		}
		if len(views) != len(ref) {
			return fmt.Sprintf("node %d knows %d nodes, node 0 knows %d", i, len(views), len(ref))
		}
		for k := range views {
			if views[k].ID != ref[k].ID {
				return fmt.Sprintf("node %d and node 0 know different nodes", i)
			}
		}
	}
	for slot := range uint16(wire.NumSlots) {
		o0, e0 := s.Core(0).SlotOwner(slot)
		for i := 1; i < s.Len(); i++ {
			if o, e := s.Core(i).SlotOwner(slot); o != o0 || e != e0 {
				return fmt.Sprintf("slot %d: node %d says %s@%d, node 0 says %s@%d", slot, i, o, e, o0, e0)
			}
		}
	}
	return ""
}

// sameEpochOwners reports a slot that two different nodes claim at the same
// configEpoch, either as seen in two of the given nodes' slot tables or as
// two claims that one of them holds; "" if there is none.
func sameEpochOwners(s *Sim, nodes []int) string {
	type owner struct {
		id    wire.NodeID
		epoch uint64
	}
	seen := make([]owner, wire.NumSlots)
	for _, i := range nodes {
		c := s.Core(i)
		if c == nil {
			continue
		}
		for slot := range uint16(wire.NumSlots) {
			o, e := c.SlotOwner(slot)
			if o.IsZero() {
				continue
			}
			if p := seen[slot]; !p.id.IsZero() && p.id != o && p.epoch == e {
				return fmt.Sprintf("slot %d has two owners with configEpoch %d: %s and %s (node %d's table)", slot, e, p.id, o, i)
			}
			seen[slot] = owner{o, e}
		}
		st := c.State()
		byEpoch := map[uint64][]wire.SlotClaim{}
		for _, cl := range st.Claims {
			for _, other := range byEpoch[cl.ConfigEpoch] {
				if overlap(cl.Ranges, other.Ranges) && cl.Owner != other.Owner {
					return fmt.Sprintf("node %d holds claims of %s and %s on the same slots at configEpoch %d", i, cl.Owner, other.Owner, cl.ConfigEpoch)
				}
			}
			byEpoch[cl.ConfigEpoch] = append(byEpoch[cl.ConfigEpoch], cl)
		}
	}
	return ""
}

func overlap(a, b []wire.SlotRange) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Start <= y.End && y.Start <= x.End {
				return true
			}
		}
	}
	return false
}

// tableMismatch reports the first slot where node i's slot table differs
// from the table its own claims define (highest configEpoch wins, ties to
// the smaller ID, as package gossip documents), or "" if none does.
func tableMismatch(s *Sim, i int) string {
	c := s.Core(i)
	st := c.State()
	type owner struct {
		id    wire.NodeID
		epoch uint64
		set   bool
	}
	want := make([]owner, wire.NumSlots)
	for _, cl := range st.Claims {
		for _, r := range cl.Ranges {
			for slot := int(r.Start); slot <= int(r.End); slot++ {
				w := &want[slot]
				if !w.set || cl.ConfigEpoch > w.epoch || cl.ConfigEpoch == w.epoch && string(cl.Owner[:]) < string(w.id[:]) {
					*w = owner{cl.Owner, cl.ConfigEpoch, true}
				}
			}
		}
	}
	for slot := range uint16(wire.NumSlots) {
		o, e := c.SlotOwner(slot)
		if w := want[slot]; o != w.id || (w.set && e != w.epoch) {
			return fmt.Sprintf("node %d's table gives slot %d to %s@%d but its claims give it to %s@%d", i, slot, o, e, w.id, w.epoch)
		}
	}
	return ""
}

// isMaster reports whether node i, which must be up, sees itself as a master.
func (s *Sim) isMaster(i int) bool {
	v, ok := s.Core(i).Node(s.ID(i))
	return ok && v.Flags&wire.FlagMaster != 0
}

// ownersAreMasters reports a slot whose owner, in node 0's table, is not up
// or does not see itself as a master: after healing every shard must have
// a serving master.
func ownersAreMasters(s *Sim) string {
	for slot := range uint16(wire.NumSlots) {
		o, _ := s.Core(0).SlotOwner(slot)
		if o.IsZero() {
			continue
		}
		i, ok := s.Index(o)
		if !ok || !s.Up(i) || !s.isMaster(i) {
			return fmt.Sprintf("slot %d is owned by %s, which is not a live master", slot, o)
		}
	}
	return ""
}
