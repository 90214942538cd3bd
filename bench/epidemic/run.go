// Package epidemic runs the synchronous-cycle experiments of Demers et al.,
// "Epidemic algorithms for replicated database maintenance" (PODC 1987),
// over the strategies implemented in gossip/epidemic.
//
// One run injects a single update at one random site at cycle 0 and then
// executes synchronous cycles: in each cycle every site that initiates
// contacts Fanout distinct partners chosen uniformly among the other sites,
// and every decision in the cycle (who sends, and whether the recipient
// "already knew" for feedback) is made on the state at the start of the
// cycle. A site that receives the update in cycle t starts spreading it in
// cycle t+1. A site hot at the start of a cycle sends all of its Fanout
// pushes and answers every pull in that cycle; after all contacts of the
// cycle, each such site applies loss of interest once for the cycle with
// RumorState.EndRound (messages it sent, and how many were news).
//
// A run ends when no site is infective (rumor mongering) or when every site
// has the update (anti-entropy), or after Config.MaxCycles cycles, by
// default 10*ceil(log2 N)+100. Push anti-entropy reaches everyone in about
// log2 N + ln N cycles, far below the cap, so in practice the cap only
// bounds pathological policies (for example coin stop with a huge k).
//
// The metrics, averaged over runs:
//   - residue: fraction of sites still susceptible at the end;
//   - traffic: messages that carried the update, divided by N. Pull
//     requests and digests that carry no update are not counted, as in
//     Demers;
//   - t_ave: mean cycle at which a site received the update, over the sites
//     that received it (the origin, which has it at cycle 0 by injection, is
//     not counted);
//   - t_last: cycle at which the last site received it.
package epidemic

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"

	ep "github.com/hearsay/hearsay/gossip/epidemic"
)

// Config is one experiment.
type Config struct {
	Nodes  int
	Policy ep.Policy
	Runs   int
	// Seed makes the experiment reproducible: run r uses a PCG source
	// seeded from Seed+r.
	Seed uint64
	// MaxCycles caps each run; 0 means DefaultMaxCycles(Nodes).
	MaxCycles int
}

// DefaultConfig is 10 runs of push rumor mongering (feedback, counter, k=2)
// over 1000 nodes with seed 1.
func DefaultConfig() Config {
	return Config{Nodes: 1000, Policy: ep.DefaultPolicy(), Runs: 10, Seed: 1}
}

// DefaultMaxCycles is the default cycle cap for n sites: 10*ceil(log2 n)+100.
func DefaultMaxCycles(n int) int {
	return 10*bits.Len(uint(max(n, 1))) + 100
}

// Result holds the metrics averaged over runs.
type Result struct {
	Residue float64 `json:"residue"`
	Traffic float64 `json:"traffic"`
	TAve    float64 `json:"t_ave"`
	TLast   float64 `json:"t_last"`
}

// String renders "residue=<f> traffic=<f> t_ave=<f> t_last=<f>".
func (r Result) String() string {
	// Six significant digits: averages over runs carry float noise beyond that.
	return fmt.Sprintf("residue=%.6g traffic=%.6g t_ave=%.6g t_last=%.6g", r.Residue, r.Traffic, r.TAve, r.TLast)
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	var errs []error
	if c.Nodes < 2 {
		errs = append(errs, fmt.Errorf("nodes must be at least 2, got %d", c.Nodes))
	}
	if c.Runs < 1 {
		errs = append(errs, fmt.Errorf("runs must be at least 1, got %d", c.Runs))
	}
	if c.MaxCycles < 0 {
		errs = append(errs, fmt.Errorf("max cycles must not be negative, got %d", c.MaxCycles))
	}
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Nodes >= 2 && c.Policy.Fanout > c.Nodes-1 {
		errs = append(errs, fmt.Errorf("fanout %d exceeds nodes-1 = %d", c.Policy.Fanout, c.Nodes-1))
	}
	return errors.Join(errs...)
}

// Run executes cfg.Runs independent runs and averages their metrics. It is
// deterministic for a given Config.
func Run(cfg Config) (Result, error) {
	res, _, err := run(cfg)
	return res, err
}

// stats are per-experiment facts not part of Result, for tests and
// benchmarks.
type stats struct {
	cycles float64 // mean cycles executed per run
	capped int     // runs stopped by MaxCycles
}

// Curve returns, for each cycle c from 0, the fraction of sites that hold
// the update at the end of cycle c, averaged over cfg.Runs runs (a run that
// ended earlier counts with its final fraction). It is deterministic for a
// given Config and draws the same runs as Run.
func Curve(cfg Config) ([]float64, error) {
	var curve []float64
	_, _, err := runWith(cfg, func(recv []int32) {
		counts := make([]float64, 0, 64)
		for _, t := range recv {
			if t < 0 {
				continue
			}
			for int(t) >= len(counts) {
				counts = append(counts, 0)
			}
			counts[t]++
		}
		for len(curve) < len(counts) {
			last := 0.0
			if len(curve) > 0 {
				last = curve[len(curve)-1] // runs so far ended at their final fraction
			}
			curve = append(curve, last)
		}
		reached := 0.0
		for c := range curve {
			if c < len(counts) {
				reached += counts[c]
			}
			curve[c] += reached / float64(len(recv))
		}
	})
	if err != nil {
		return nil, err
	}
	// Every run added to every cycle in curve, past its own end with its
	// final fraction, so dividing by the runs gives the mean.
	for c := range curve {
		curve[c] /= float64(cfg.Runs)
	}
	return curve, nil
}

func run(cfg Config) (Result, stats, error) { return runWith(cfg, nil) }

// runWith is run, calling each (when set) with the per-site receive cycles
// (-1: never) after every run.
func runWith(cfg Config, each func(recv []int32)) (Result, stats, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, stats{}, err
	}
	if cfg.MaxCycles == 0 {
		cfg.MaxCycles = DefaultMaxCycles(cfg.Nodes)
	}
	s := newSim(cfg.Nodes, cfg.Policy, cfg.MaxCycles)
	var sum Result
	var st stats
	for r := 0; r < cfg.Runs; r++ {
		seed := cfg.Seed + uint64(r)
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		one := s.run(rng)
		if each != nil {
			each(s.recv)
		}
		sum.Residue += one.res.Residue
		sum.Traffic += one.res.Traffic
		sum.TAve += one.res.TAve
		sum.TLast += one.res.TLast
		st.cycles += float64(one.cycles)
		if one.capped {
			st.capped++
		}
	}
	k := float64(cfg.Runs)
	sum.Residue /= k
	sum.Traffic /= k
	sum.TAve /= k
	sum.TLast /= k
	st.cycles /= k
	return sum, st, nil
}

// sim holds the per-site arrays, reused across runs.
type sim struct {
	n         int
	p         ep.Policy
	maxCycles int

	recv    []int32 // cycle the site received the update; -1 if not yet
	phase   []ep.Phase
	rumor   []ep.RumorState
	ver     []ep.Version
	next    []ep.Version
	sent    []int32 // rumor messages sent by each site this cycle
	news    []int32 // of those, how many reached a susceptible site
	partner []int   // scratch: this site's partners in this cycle
}

type runResult struct {
	res    Result
	cycles int
	capped bool
}

func newSim(n int, p ep.Policy, maxCycles int) *sim {
	s := &sim{n: n, p: p, maxCycles: maxCycles, recv: make([]int32, n), partner: make([]int, 0, p.Fanout)}
	if p.Mode == ep.Rumor {
		s.phase = make([]ep.Phase, n)
		s.rumor = make([]ep.RumorState, n)
		s.sent = make([]int32, n)
		s.news = make([]int32, n)
	} else {
		s.ver = make([]ep.Version, n)
		s.next = make([]ep.Version, n)
	}
	return s
}

// partners fills s.partner with Fanout distinct sites other than i, chosen
// uniformly (Floyd's sampling over the n-1 other sites).
func (s *sim) partners(i int, rng *rand.Rand) []int {
	f := s.p.Fanout
	out := s.partner[:0]
	m := s.n - 1
	for j := m - f; j < m; j++ {
		t := rng.IntN(j + 1)
		for _, c := range out {
			if c == t {
				t = j
				break
			}
		}
		out = append(out, t)
	}
	for k, t := range out {
		if t >= i {
			out[k] = t + 1
		}
	}
	s.partner = out
	return out
}

func (s *sim) run(rng *rand.Rand) runResult {
	for i := range s.recv {
		s.recv[i] = -1
	}
	origin := rng.IntN(s.n)
	s.recv[origin] = 0
	var msgs, cycles int
	var capped bool
	if s.p.Mode == ep.Rumor {
		msgs, cycles, capped = s.runRumor(origin, rng)
	} else {
		msgs, cycles, capped = s.runAntiEntropy(origin, rng)
	}
	var got, sumT, last int
	for i, t := range s.recv {
		if t < 0 {
			continue
		}
		got++
		if i != origin {
			sumT += int(t)
		}
		last = max(last, int(t))
	}
	r := runResult{cycles: cycles, capped: capped}
	r.res.Residue = float64(s.n-got) / float64(s.n)
	r.res.Traffic = float64(msgs) / float64(s.n)
	if got > 1 {
		r.res.TAve = float64(sumT) / float64(got-1)
	}
	r.res.TLast = float64(last)
	return r
}

func (s *sim) runRumor(origin int, rng *rand.Rand) (msgs, cycles int, capped bool) {
	p := &s.p
	clear(s.rumor)
	s.rumor[origin].Receive()
	hot := 1
	for hot > 0 {
		if cycles == s.maxCycles {
			return msgs, cycles, true
		}
		cycles++
		for i := range s.rumor {
			s.phase[i] = s.rumor[i].Phase
		}
		for i, ph := range s.phase {
			if !p.Initiates(ph) {
				continue
			}
			for _, j := range s.partners(i, rng) {
				push, pull := p.RumorContact(ph, s.phase[j])
				if push {
					msgs++
					hot += s.deliver(j, cycles)
					s.tally(i, s.phase[j])
				}
				if pull {
					msgs++
					hot += s.deliver(i, cycles)
					s.tally(j, ph)
				}
			}
		}
		for i, sent := range s.sent {
			if sent == 0 {
				continue
			}
			r := &s.rumor[i]
			if r.Hot() && !r.EndRound(p, int(sent), int(s.news[i]), rng) {
				hot--
			}
			s.sent[i], s.news[i] = 0, 0
		}
	}
	return msgs, cycles, false
}

// deliver gives site j the rumor in cycle c and returns 1 if it became hot.
func (s *sim) deliver(j, c int) int {
	if s.rumor[j].Receive() {
		s.recv[j] = int32(c)
		return 1
	}
	return 0
}

// tally records that sender i carried the rumor to a site whose
// start-of-cycle phase was to.
func (s *sim) tally(i int, to ep.Phase) {
	s.sent[i]++
	if !to.Knows() {
		s.news[i]++
	}
}

func (s *sim) runAntiEntropy(origin int, rng *rand.Rand) (msgs, cycles int, capped bool) {
	const update ep.Version = 1
	clear(s.ver)
	s.ver[origin] = update
	have := 1
	dir := s.p.Direction
	for have < s.n {
		if cycles == s.maxCycles {
			return msgs, cycles, true
		}
		cycles++
		copy(s.next, s.ver)
		for i, vi := range s.ver {
			for _, j := range s.partners(i, rng) {
				vj := s.ver[j]
				push, pull := ep.AntiEntropyContact(dir, vi, vj)
				if push {
					msgs++
					have += s.merge(j, vi, cycles)
				}
				if pull {
					msgs++
					have += s.merge(i, vj, cycles)
				}
			}
		}
		s.ver, s.next = s.next, s.ver
	}
	return msgs, cycles, false
}

// merge folds incoming into site j's next-cycle version and returns 1 if j
// received the update for the first time.
func (s *sim) merge(j int, incoming ep.Version, c int) int {
	s.next[j] = ep.Merge(s.next[j], incoming)
	if s.next[j] != 0 && s.recv[j] < 0 {
		s.recv[j] = int32(c)
		return 1
	}
	return 0
}
