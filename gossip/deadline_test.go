package gossip

import (
	"testing"
	"time"
)

// An idle core's next deadline is after its last Tick, no later than one
// tick period after it, and no later than any monitored peer's next ping
// or PFAIL instant: a runtime sleeping until then misses no timer.
func TestNextDeadlineIdle(t *testing.T) {
	for _, external := range []bool{false, true} {
		tn := formed(t, 4, func(c *Config) { c.ExternalHeartbeat = external })
		tn.run(5 * time.Second)
		for i, c := range tn.cores {
			d := c.NextDeadline()
			if d <= tn.now {
				t.Errorf("external=%v node %d: an idle core wants a tick at %v, not after its last Tick at %v", external, i, d, tn.now)
			}
			if d > tn.now+c.TickPeriod() {
				t.Errorf("external=%v node %d: deadline %v is beyond one tick period (%v) after the last Tick at %v", external, i, d, c.TickPeriod(), tn.now)
			}
			for _, p := range c.peerList {
				if !p.monitored || p.pfail {
					continue
				}
				if at, ok := p.alive(); ok && d > max(at, p.monSince)+c.cfg.NodeTimeout+1 {
					t.Errorf("external=%v node %d: deadline %v is after peer %s would turn PFAIL", external, i, d, p.id)
				}
				if !external && d > p.lastPing+c.cfg.PingInterval {
					t.Errorf("node %d: deadline %v is after the ping of %s falls due at %v", i, d, p.id, p.lastPing+c.cfg.PingInterval)
				}
			}
		}
	}
}

// The tick period stays under NodeTimeout/2, past which Tick takes the gap
// for a stall of this process, and at most the heartbeat interval with
// external heartbeats.
func TestTickPeriod(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want time.Duration
	}{
		{Config{NodeTimeout: time.Second}, 250 * time.Millisecond},
		{Config{NodeTimeout: time.Second, ExternalHeartbeat: true}, 250 * time.Millisecond},
		{Config{NodeTimeout: time.Second, ExternalHeartbeat: true, HeartbeatInterval: 100 * time.Millisecond}, 100 * time.Millisecond},
		{Config{NodeTimeout: 2 * time.Millisecond}, time.Millisecond},
	} {
		c.cfg.ID, c.cfg.Addr = testID(1), testAddr(1)
		core, err := New(c.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := core.TickPeriod(); got != c.want {
			t.Errorf("%+v: tick period %v, want %v", c.cfg, got, c.want)
		}
	}
}

// A Step that leaves work for the next Tick (here: this replica learns its
// master is FAIL, and its election starts on the next Tick) asks for the
// Tick at once; the Tick consumes the request.
func TestNextDeadlineAfterMasterFail(t *testing.T) {
	tn := withReplica(t)
	c := tn.cores[2]
	if d := c.NextDeadline(); d <= tn.now {
		t.Fatalf("deadline %v not after the last Tick at %v before any failure", d, tn.now)
	}
	tn.now += time.Millisecond
	c.begin(tn.now)
	c.markFail(c.lookup(tn.cores[0].ID()), 1, tn.now)
	c.finish()
	if d := c.NextDeadline(); d != tn.now {
		t.Fatalf("after its master's FAIL the replica's deadline is %v, want now (%v)", d, tn.now)
	}
	tn.out(2, c.Tick(tn.now))
	if d := c.NextDeadline(); d <= tn.now {
		t.Fatalf("after the Tick the deadline is still %v (now %v): a runtime would spin", d, tn.now)
	}
	if _, ok := c.elect.NextDeadline(); !ok {
		t.Fatal("the Tick after the FAIL did not schedule an election")
	}
}
