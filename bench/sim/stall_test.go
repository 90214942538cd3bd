package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// A stalled master is failed over although its kernel keeps answering
// heartbeat PINGs: its progress counter stops, so its PONGs prove nothing.
// Its replica is promoted, and when it resumes it becomes a replica of the
// new master. With bus pings only, the stall silences it outright; the
// outcome must be the same.
func TestStalledMasterFailsOver(t *testing.T) {
	for _, external := range []bool{true, false} {
		t.Run(fmt.Sprintf("external-heartbeat=%v", external), func(t *testing.T) {
			const timeout = time.Second
			s := New(Options{Seed: 5, KeepState: true, Loss: 0.01,
				Core: gossip.Config{NodeTimeout: timeout, ExternalHeartbeat: external}})
			s.AddNodes(6)
			claims, err := s.BootCluster(0, 6, 3, wire.NumSlots)
			if err != nil {
				t.Fatal(err)
			}
			s.RunFor(3 * time.Second)
			if why := agree(s); why != "" {
				t.Fatalf("cluster not steady before the stall: %s", why)
			}
			// BootCluster makes node 3 the replica of master 0.
			const master, replica = 0, 3
			slot := claims[master].Ranges[0].Start
			answered := s.PingsAnswered(master)
			before, known := s.HeartbeatSample(replica, master)
			if external && (!known || before.PongsRecv == 0) {
				t.Fatalf("the replica has no heartbeats from its master before the stall: %+v", before)
			}

			s.Stall(master)
			stalledAt := s.Now()
			failedOver := func() bool {
				c := s.Core(replica)
				if o, _ := c.SlotOwner(slot); o != s.ID(replica) || !s.isMaster(replica) {
					return false
				}
				for i := range s.Len() {
					if i != master && !hasFlag(s.Core(i), s.ID(master), wire.FlagFail) {
						return false
					}
				}
				return true
			}
			at, ok := s.RunUntilTrue(failedOver, 10*time.Millisecond, stalledAt+10*timeout)
			if !ok {
				t.Fatalf("a stalled master was not failed over within %v", 10*timeout)
			}
			t.Logf("failed over %v after the stall", at-stalledAt)
			if external {
				// The failover happened while the kernel answered.
				if s.PingsAnswered(master) == answered {
					t.Fatal("the stalled master's kernel answered no PINGs")
				}
				now, _ := s.HeartbeatSample(replica, master)
				if now.PongsRecv <= before.PongsRecv || s.CoreNow()-now.LastPong > timeout/2 {
					t.Fatalf("the replica got no fresh PONGs from the stalled master: before %+v, now %+v at %v", before, now, s.CoreNow())
				}
				if now.Progress != s.nodes[master].kern.progress {
					t.Fatalf("PONGs carry progress %d, the stalled process's counter is %d", now.Progress, s.nodes[master].kern.progress)
				}
			}

			s.Resume(master)
			rejoined := func() bool {
				v, ok := s.Core(master).Node(s.ID(master))
				return ok && v.Flags&wire.FlagReplica != 0 && v.Master == s.ID(replica) && agree(s) == ""
			}
			resumedAt := s.Now()
			at, ok = s.RunUntilTrue(rejoined, 10*time.Millisecond, resumedAt+20*timeout)
			if !ok {
				v, _ := s.Core(master).Node(s.ID(master))
				t.Fatalf("the resumed master did not become a replica of the promoted one: flags %#x master %s; %s", v.Flags, v.Master, agree(s))
			}
			t.Logf("a replica and in agreement %v after resuming", at-resumedAt)
			if v := s.Violations(); len(v) > 0 {
				t.Fatalf("violations: %q", v)
			}
		})
	}
}

// A stalled node buffers the bus frames that reach it and steps them when
// it resumes; its core is not ticked meanwhile, and admin calls fail.
func TestStallBuffersFrames(t *testing.T) {
	s := New(Options{Seed: 2, Core: gossip.Config{NodeTimeout: time.Second}})
	s.AddNodes(3)
	if _, err := s.BootCluster(0, 3, 3, wire.NumSlots); err != nil {
		t.Fatal(err)
	}
	s.RunFor(time.Second)
	s.Stall(1)
	ticks := s.Stats().Ticks
	s.RunFor(500 * time.Millisecond)
	if !s.Stalled(1) || !s.Up(1) {
		t.Fatal("a stalled node must be up and stalled")
	}
	if len(s.nodes[1].backlog) == 0 {
		t.Fatal("no frames buffered for the stalled node")
	}
	if err := s.Do(1, bumpEpoch); err == nil {
		t.Fatal("an admin call on a stalled node succeeded")
	}
	// Two of three nodes tick: 10 ticks of 50ms each in 500ms, ±10%.
	if got := s.Stats().Ticks - ticks; got > 2*11+1 {
		t.Fatalf("%d ticks in 500ms with one of three nodes stalled", got)
	}
	delivered := s.Stats().Delivered
	buffered := uint64(len(s.nodes[1].backlog))
	s.Resume(1)
	if got := s.Stats().Delivered - delivered; got != buffered || len(s.nodes[1].backlog) != 0 {
		t.Fatalf("resume stepped %d frames of %d buffered", got, buffered)
	}
	s.RunFor(3 * time.Second)
	if why := agree(s); why != "" {
		t.Fatalf("no agreement after the resume: %s", why)
	}
}

func hasFlag(c *Core, id wire.NodeID, f wire.Flags) bool {
	v, ok := c.Node(id)
	return ok && v.Flags&f != 0
}
