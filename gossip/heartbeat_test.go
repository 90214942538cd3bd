package gossip

import (
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// The cores of these tests ping on the bus: the plan does not depend on
// ExternalHeartbeat, and the test network carries no heartbeats.

// The plan's peer set is the monitored peers first, then the watchers not
// already monitored, each once; it is reported changed only when it is.
func TestHeartbeatPlanPeers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		small int
	}{{"small", 6, 0}, {"scale", 40, 8}} {
		t.Run(tc.name, func(t *testing.T) {
			tn := formed(t, tc.n, func(c *Config) {
				if tc.small > 0 {
					c.SmallCluster = tc.small
				}
			})
			extra := 0
			for _, c := range tn.cores {
				plan := c.HeartbeatPlan(tn.now, nil)
				if !plan.Changed {
					t.Fatalf("node %v: the first plan is not marked changed", c.ID())
				}
				mon := c.Monitored(nil)
				if plan.Monitored != len(mon) {
					t.Fatalf("node %v: plan has %d monitored, Monitored has %d", c.ID(), plan.Monitored, len(mon))
				}
				seen := map[wire.NodeID]bool{}
				for k, p := range plan.Peers {
					if seen[p.ID] {
						t.Fatalf("node %v: plan lists %v twice", c.ID(), p.ID)
					}
					seen[p.ID] = true
					if k < len(mon) && mon[k] != p {
						t.Fatalf("node %v: plan peer %d is %v, Monitored has %v", c.ID(), k, p, mon[k])
					}
				}
				for _, w := range c.Watchers(nil) {
					if !seen[w.ID] {
						t.Fatalf("node %v: watcher %v is not in the plan", c.ID(), w.ID)
					}
				}
				if len(plan.Peers) != len(seen) {
					t.Fatal("plan holds duplicates")
				}
				extra += len(plan.Peers) - plan.Monitored
				again := c.HeartbeatPlan(tn.now+time.Millisecond, plan.Peers)
				if again.Changed || again.Monitored != plan.Monitored || len(again.Peers) != len(seen) {
					t.Fatalf("node %v: an unchanged plan is reported changed (%+v)", c.ID(), again)
				}
			}
			if tc.small == 0 && extra != 0 {
				t.Fatalf("small cluster: watchers equal monitored, yet plans hold %d extra peers", extra)
			}
			if tc.small > 0 && extra == 0 {
				t.Fatal("at scale some watchers are not monitored; the test proves nothing")
			}
			// A membership change shows as a changed plan.
			c := tn.cores[0]
			_ = c.HeartbeatPlan(tn.now, nil)
			victim := c.HeartbeatPlan(tn.now, nil).Peers[0].ID
			if _, err := c.Forget(tn.now, victim); err != nil {
				t.Fatal(err)
			}
			plan := c.HeartbeatPlan(tn.now, nil)
			if !plan.Changed {
				t.Fatal("forgetting a monitored peer left the plan unchanged")
			}
			for _, p := range plan.Peers {
				if p.ID == victim {
					t.Fatal("a forgotten peer is still in the plan")
				}
			}
		})
	}
}

// Pings are due every HeartbeatInterval (NodeTimeout/4 by default) on the
// grid HeartbeatPhase sets, and never more often than the plan is asked
// for: the first at once, then one at the first call on or after each grid
// point.
func TestHeartbeatPlanPingCadence(t *testing.T) {
	for _, phase := range []time.Duration{0, 110 * time.Millisecond} {
		tn := formed(t, 3, func(c *Config) { c.HeartbeatPhase = phase })
		c := tn.cores[0]
		iv := c.Config().HeartbeatInterval
		if iv != time.Second/4 {
			t.Fatalf("default HeartbeatInterval %v, want NodeTimeout/4", iv)
		}
		start := tn.now
		var rounds []time.Duration
		for now := start; now < start+time.Second; now += 20 * time.Millisecond {
			if c.HeartbeatPlan(now, nil).Ping {
				rounds = append(rounds, now)
			}
		}
		if len(rounds) < 4 || len(rounds) > 5 || rounds[0] != start {
			t.Fatalf("phase %v: rounds at %v from %v: want the first at once and one per 250ms grid point", phase, rounds, start)
		}
		for k := 1; k < len(rounds); k++ {
			off := (rounds[k] + phase) % iv
			if off >= 20*time.Millisecond || rounds[k]-off <= rounds[k-1] {
				t.Fatalf("phase %v: round %d at %v is not the first call after a grid point following %v", phase, k, rounds[k], rounds[k-1])
			}
		}
	}
	c := formed(t, 3, nil).cores[0]
	start := c.lastTick
	// Asked less often than the interval, it pings on every call.
	for k := range 5 {
		now := start + 2*time.Second + time.Duration(k)*time.Second
		if !c.HeartbeatPlan(now, nil).Ping {
			t.Fatalf("call %d a second apart: no ping due", k)
		}
	}
	// A node with no peers pings nobody.
	lone, err := New(Config{ID: testID(99), Addr: testAddr(99), ExternalHeartbeat: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := lone.HeartbeatPlan(0, nil); p.Ping || len(p.Peers) != 0 {
		t.Fatalf("a lone node's plan: %+v", p)
	}
}

// Heartbeat counts only the peers this node monitors: at scale a watcher
// that is not monitored is in the transport's set (to be answered), and
// its samples are ignored.
func TestHeartbeatIgnoresWatchers(t *testing.T) {
	tn := formed(t, 40, func(c *Config) { c.SmallCluster = 8 })
	for _, c := range tn.cores {
		plan := c.HeartbeatPlan(tn.now, nil)
		if plan.Monitored == len(plan.Peers) {
			continue
		}
		w := plan.Peers[plan.Monitored].ID
		m := plan.Peers[0].ID
		now := tn.now
		for k := range uint64(5) {
			s := HeartbeatSample{PongsRecv: k + 1, LastPong: now, Progress: k + 1}
			c.Heartbeat(now, w, s)
			c.Heartbeat(now, m, s)
			now += 100 * time.Millisecond
		}
		if p := c.peers[w]; p != nil && p.hbSeen {
			t.Fatalf("node %v took heartbeats of %v, which it only answers", c.ID(), w)
		}
		if p := c.peers[m]; p == nil || !p.hbSeen || p.hbProgress != 5 {
			t.Fatalf("node %v ignored heartbeats of monitored %v", c.ID(), m)
		}
		return
	}
	t.Fatal("no node has a watcher it does not monitor; the test proves nothing")
}
