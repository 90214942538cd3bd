package gossip

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// gridRun drives a formed cluster the way the node's runtime drives its
// core: each core sleeps until its NextDeadline and wakes up to maxLate
// late, feeds a fresh heartbeat sample of every peer, Ticks and plans its
// heartbeats; messages arrive after the net's latency and are Stepped at
// once, which may bring a deadline forward.
type gridRun struct {
	tn      *testNet
	rng     *rand.Rand
	maxLate time.Duration
	armed   []time.Duration // the deadline each core sleeps until
	wake    []time.Duration // when it wakes for it
	prog    uint64
	// Per core, from the warm-up on: ticks, the ticks whose deadline was
	// off the heartbeat grid, and the bus PINGs Tick sent.
	ticks, offGrid, pings []int
}

func newGridRun(tn *testNet, seed uint64, maxLate time.Duration) *gridRun {
	n := len(tn.cores)
	g := &gridRun{tn: tn, rng: rand.New(rand.NewPCG(seed, seed+1)), maxLate: maxLate,
		armed: make([]time.Duration, n), wake: make([]time.Duration, n),
		ticks: make([]int, n), offGrid: make([]int, n), pings: make([]int, n)}
	for i := range tn.cores {
		g.arm(i, true)
	}
	return g
}

func (g *gridRun) arm(i int, force bool) {
	d := max(g.tn.cores[i].NextDeadline(), g.tn.now)
	if !force && d >= g.armed[i] {
		return
	}
	g.armed[i] = d
	g.wake[i] = d + time.Duration(g.rng.Int64N(int64(g.maxLate)+1))
}

// run advances to end, counting from countFrom on.
func (g *gridRun) run(end, countFrom time.Duration) {
	tn := g.tn
	for {
		now := end
		for _, w := range g.wake {
			now = min(now, w)
		}
		for _, p := range tn.queue {
			now = min(now, p.at)
		}
		if now >= end {
			tn.now = end
			return
		}
		tn.now = now
		for _, p := range tn.takeDue() {
			tn.out(p.to, tn.cores[p.to].Step(now, p.msg))
			g.arm(p.to, false)
		}
		for i, c := range tn.cores {
			if g.wake[i] > now {
				continue
			}
			iv := c.Config().HeartbeatInterval
			counted := now >= countFrom
			if counted {
				g.ticks[i]++
				if (g.armed[i]+c.Config().HeartbeatPhase)%iv != 0 {
					g.offGrid[i]++
				}
			}
			for j, peer := range tn.cores {
				if j != i {
					g.prog++
					c.Heartbeat(now, peer.ID(), HeartbeatSample{PongsRecv: g.prog, LastPong: now, Progress: g.prog})
				}
			}
			r := c.Tick(now)
			for _, e := range r.Messages {
				if counted && e.Msg.Type == wire.TypePing {
					g.pings[i]++
				}
			}
			tn.out(i, r)
			c.HeartbeatPlan(now, nil)
			g.arm(i, true)
		}
	}
}

// An idle core whose heartbeat rounds run on their grid wakes only for
// the rounds: the once-per-SyncInterval gossip PING and sync round ride on
// the nearest round's Tick instead of waking it twice more a second, at
// the same rate, however late the runtime's timer fires.
func TestIdleTicksRideHeartbeatGrid(t *testing.T) {
	const phase = 37 * time.Millisecond
	for _, late := range []time.Duration{0, 3 * time.Millisecond, 40 * time.Millisecond} {
		tn := formed(t, 4, func(c *Config) {
			c.ExternalHeartbeat = true
			c.HeartbeatPhase = phase
		})
		g := newGridRun(tn, 7, late)
		span := 20 * time.Second
		from := tn.now + 2*time.Second
		g.run(from+span, from)
		for i, c := range tn.cores {
			cfg := c.Config()
			rounds := int(span / cfg.HeartbeatInterval)
			if g.offGrid[i] != 0 {
				t.Errorf("late %v, node %d: %d of %d ticks were for deadlines off the heartbeat grid", late, i, g.offGrid[i], g.ticks[i])
			}
			if g.ticks[i] < rounds-1 || g.ticks[i] > rounds+1 {
				t.Errorf("late %v, node %d: %d ticks in %v, want one per heartbeat round (%d)", late, i, g.ticks[i], span, rounds)
			}
			syncs := int(span / cfg.SyncInterval)
			if g.pings[i] < syncs-1 || g.pings[i] > syncs+1 {
				t.Errorf("late %v, node %d: %d gossip PINGs in %v, want one per SyncInterval (%d)", late, i, g.pings[i], span, syncs)
			}
			for _, p := range c.peerList {
				if p.pfail {
					t.Errorf("late %v, node %d: peer %s turned PFAIL on an idle cluster", late, i, p.id)
				}
			}
		}
	}
}

// Without the grid (liveness from bus PINGs) the rounds keep their own
// times: the slack applies only to heartbeat rounds that exist.
func TestRoundSlackNeedsGrid(t *testing.T) {
	tn := formed(t, 3, nil)
	if s := tn.cores[0].roundSlack(); s != 0 {
		t.Fatalf("bus heartbeats: round slack %v, want 0", s)
	}
	tn = formed(t, 3, func(c *Config) { c.ExternalHeartbeat = true })
	g := newGridRun(tn, 1, 0)
	g.run(tn.now+time.Second, tn.now)
	c := tn.cores[0]
	if s, want := c.roundSlack(), c.Config().HeartbeatInterval/2; s != want {
		t.Fatalf("heartbeat grid running: round slack %v, want %v", s, want)
	}
	sparse := formed(t, 3, func(c *Config) {
		c.ExternalHeartbeat = true
		c.HeartbeatInterval = 2 * time.Second
	})
	g = newGridRun(sparse, 1, 0)
	g.run(sparse.now+5*time.Second, sparse.now)
	if s := sparse.cores[0].roundSlack(); s != 0 {
		t.Fatalf("heartbeat rounds sparser than SyncInterval: round slack %v, want 0", s)
	}
}
