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

// DefaultFailing is how many masters the massfail scenario crashes at once.
const DefaultFailing = 100

// failoverMasters is the default master count of the failover and massfail
// scenarios: a quarter of the nodes (three replicas per master), at most
// DefaultMaxMasters. 1000 nodes are then 250 shards of four nodes, and 100
// of them losing their master at once still leave 150 of 250 masters, a
// majority (126) to elect with. 200 shards of five would leave exactly
// half, and a failover needs a majority of all slot-owning masters, as in
// Redis: no shard could be re-mastered.
func (c *Config) failoverMasters() int {
	if c.Masters > 0 {
		return c.Masters
	}
	return min(max(c.Nodes/4, 1), DefaultMaxMasters)
}

// failing is K for the failover (1) and massfail scenarios.
func (c *Config) failing() int {
	if c.Scenario == ScenarioFailover {
		return 1
	}
	if c.Failing > 0 {
		return c.Failing
	}
	return DefaultFailing
}

// validateFailover checks what the failover and massfail scenarios need:
// replicas for every crashed master, and a majority of masters alive to
// vote.
func (c *Config) validateFailover(bad func(flag string, v any, why string)) {
	m, k := c.failoverMasters(), c.failing()
	if c.Failing < 0 {
		bad("failing", c.Failing, "must not be negative (0 takes 100)")
		return
	}
	if c.Nodes < 2*m {
		bad("masters", m, fmt.Sprintf("every master of the %s scenario needs a replica: at most nodes/2 = %d", c.Scenario, c.Nodes/2))
	}
	if k > m {
		bad("failing", k, fmt.Sprintf("more than the %d masters", m))
	} else if m-k < m/2+1 {
		bad("failing", k, fmt.Sprintf("%d of %d masters left alive are no majority (%d): no election can be won", m-k, m, m/2+1))
	}
}

// runFailover runs the failover and massfail scenarios: a formed cluster
// runs to steady state, then K masters crash in the same instant (a rack
// going dark). It records when the last crashed master was first marked
// FAIL (FailMS), when every crashed shard had a master that holds the
// shard's slots in its own table (ShardsMS, the winner's promotion), and
// when every live node saw every slot owned by a live master that was a
// replica of the slot's old owner (ConvergeMS).
func runFailover(s *Sim, cfg *Config, res *Result, mem *memMeter) error {
	claims, err := formed(s, cfg, res, mem)
	if err != nil {
		return err
	}
	n, m, k := cfg.Nodes, res.Masters, cfg.failing()
	res.Failing = k
	victims := s.Rand().Perm(m)[:k]
	down := make([]bool, n)
	shard := make(map[wire.NodeID]int, k) // crashed master -> index in victims
	for j, v := range victims {
		down[v] = true
		shard[s.ID(v)] = j
	}
	// Replicas of master v are the nodes v+m, v+2m, ... (BootCluster's
	// round-robin).
	replicaOf := func(id wire.NodeID, v int) bool {
		i, ok := s.Index(id)
		return ok && i >= m && (i-m)%m == v && s.Up(i)
	}

	t0 := s.now
	var failAt, shardsAt time.Duration = -1, -1
	failed := make([]bool, k)
	nFailed, nShards := 0, 0
	promoted := make([]int, k)
	res.Promotions = promoted
	s.opt.OnReady = func(i int, r *gossip.Ready) {
		for _, e := range r.Events {
			if e.Kind != gossip.EventNodeFail {
				continue
			}
			if j, ok := shard[e.Node]; ok && !failed[j] {
				failed[j] = true
				if nFailed++; nFailed == k {
					failAt = s.now
				}
			}
		}
		for _, e := range r.Failover {
			switch e.Kind {
			case gossip.FailoverNote:
				if e.Reason == failover.NoteElectionStarted {
					res.ElectionsStarted++
				}
			case gossip.FailoverPromoted, gossip.FailoverTakeover:
				j, ok := shard[e.Node]
				if !ok {
					s.violate("node %d was promoted in place of %s, which did not crash", i, e.Node)
					continue
				}
				if promoted[j]++; promoted[j] == 1 {
					if nShards++; nShards == k {
						shardsAt = s.now
					}
				} else {
					s.violate("shard of %s got a second new master: node %d in epoch %d", e.Node, i, e.Epoch)
				}
			}
		}
	}
	for _, v := range victims {
		s.Crash(v)
	}
	granted0, won0 := s.Elections()
	w := mark(s)
	p := newPending(s, func(i int) bool { return down[i] })
	// A live node has converged when, for every crashed shard, both ends
	// of the shard's range belong to a live replica of the old master that
	// it lists as a master. A promotion moves the whole range at once, and
	// a re-mastered shard stays so, so each node keeps a cursor over the
	// shards it already has: a probe costs O(1) per touched node until the
	// next shard arrives.
	cursor := make([]int32, n)
	reMastered := func(i int) bool {
		c := s.Core(i)
		for ; int(cursor[i]) < k; cursor[i]++ {
			v := victims[cursor[i]]
			var o wire.NodeID
			for _, slot := range [2]uint16{claims[v].Ranges[0].Start, claims[v].Ranges[0].End} {
				if o, _ = c.SlotOwner(slot); !replicaOf(o, v) {
					return false
				}
			}
			if nv, ok := c.Node(o); !ok || nv.Flags&wire.FlagMaster == 0 {
				return false
			}
		}
		return true
	}
	tl := newTimeline(s, n)
	at, ok := s.RunUntilTrue(func() bool {
		mem.sample(s.now)
		done := p.sweep(s, reMastered)
		tl.point(s, n-k-len(p.idx))
		return done && shardsAt >= 0
	}, cfg.Sample, t0+cfg.Duration)
	res.Timeline = tl.pts
	res.MsgsPerNodePerS, res.BytesPerNodePerS = w.rates(s, n)
	granted, won := s.Elections()
	res.VotesGranted, res.Elections = granted-granted0, won-won0
	res.ElectionsLost = res.ElectionsStarted - res.Elections
	res.FailMS, res.ShardsMS = -1, -1
	if failAt >= 0 {
		res.FailMS = durMS(failAt - t0)
	}
	if shardsAt >= 0 {
		res.ShardsMS = durMS(shardsAt - t0)
	}
	if ok {
		res.Converged, res.ConvergeMS = true, durMS(at-t0)
	}
	s.opt.OnReady = nil
	return nil
}

// FailoverComparison is single failover against K masters failing at once
// in one configuration, over a set of seeds: the medians of both runs'
// times and the ratio of the convergence medians.
type FailoverComparison struct {
	Seeds  []uint64
	Single []Result // the failover scenario, one per seed
	Mass   []Result // the massfail scenario, one per seed
	// Medians over the seeds, in virtual milliseconds; traffic in bytes
	// per node per second from the crash to convergence.
	SingleFailMS, SingleShardsMS, SingleConvergeMS, SingleBytes float64
	MassFailMS, MassShardsMS, MassConvergeMS, MassBytes         float64
	// Ratio is MassConvergeMS / SingleConvergeMS; ShardsRatio likewise for
	// ShardsMS.
	Ratio, ShardsRatio float64
}

// CompareFailover runs cfg as the failover scenario and as the massfail
// scenario for each seed (the rest of cfg is shared) and returns both sets
// of results and their medians. A run that does not converge counts as
// Duration for the medians.
func CompareFailover(cfg Config, seeds []uint64, each func(r *Result)) (FailoverComparison, error) {
	cmp := FailoverComparison{Seeds: seeds}
	for _, seed := range seeds {
		for _, sc := range []string{ScenarioFailover, ScenarioMassFail} {
			c := cfg
			c.Scenario, c.Seed = sc, seed
			r, err := Run(c)
			if err != nil {
				return cmp, err
			}
			if each != nil {
				each(&r)
			}
			if sc == ScenarioFailover {
				cmp.Single = append(cmp.Single, r)
			} else {
				cmp.Mass = append(cmp.Mass, r)
			}
		}
	}
	lim := durMS(cfg.Duration)
	med := func(rs []Result, f func(r *Result) float64) float64 {
		v := make([]float64, len(rs))
		for i := range rs {
			if v[i] = f(&rs[i]); v[i] < 0 {
				v[i] = lim
			}
		}
		return median(v)
	}
	conv := func(r *Result) float64 { return r.ConvergeMS }
	shards := func(r *Result) float64 { return r.ShardsMS }
	fail := func(r *Result) float64 { return r.FailMS }
	bytes := func(r *Result) float64 { return r.BytesPerNodePerS }
	cmp.SingleFailMS, cmp.SingleShardsMS = med(cmp.Single, fail), med(cmp.Single, shards)
	cmp.SingleConvergeMS, cmp.SingleBytes = med(cmp.Single, conv), med(cmp.Single, bytes)
	cmp.MassFailMS, cmp.MassShardsMS = med(cmp.Mass, fail), med(cmp.Mass, shards)
	cmp.MassConvergeMS, cmp.MassBytes = med(cmp.Mass, conv), med(cmp.Mass, bytes)
	if cmp.SingleConvergeMS > 0 {
		cmp.Ratio = cmp.MassConvergeMS / cmp.SingleConvergeMS
	}
	if cmp.SingleShardsMS > 0 {
		cmp.ShardsRatio = cmp.MassShardsMS / cmp.SingleShardsMS
	}
	return cmp, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Table renders the comparison as the Markdown table README.md records.
func (c *FailoverComparison) Table() string {
	var b strings.Builder
	k := 0
	if len(c.Mass) > 0 {
		k = c.Mass[0].Failing
	}
	fmt.Fprintf(&b, "| medians over %d seeds | last master marked FAIL (ms) | every shard promoted (ms) | every node agrees (ms) | bytes/node/s |\n", len(c.Seeds))
	b.WriteString("|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| 1 master fails | %.0f | %.0f | %.0f | %.0f |\n", c.SingleFailMS, c.SingleShardsMS, c.SingleConvergeMS, c.SingleBytes)
	fmt.Fprintf(&b, "| %d masters fail at once | %.0f | %.0f | %.0f | %.0f |\n", k, c.MassFailMS, c.MassShardsMS, c.MassConvergeMS, c.MassBytes)
	fmt.Fprintf(&b, "| ratio | | %.2f | %.2f | |\n", c.ShardsRatio, c.Ratio)
	return b.String()
}
