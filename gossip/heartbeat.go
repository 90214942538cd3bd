package gossip

import (
	"slices"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// The heartbeat policy. When liveness comes from outside the bus
// (Config.ExternalHeartbeat: XDP or its UDP fallback), the core decides
// everything about it and the runtime only moves datagrams:
//
//   - HeartbeatPlan says which peers the transport must know (to ping them
//     and to answer their PINGs) and when a round of PINGs is due;
//   - Heartbeat takes the transport's samples, every peer's, and counts
//     only those of the peers this node monitors.
//
// A runtime that runs HeartbeatPlan and feeds every sample back through
// Heartbeat, once per tick, implements the policy exactly; the node and
// the simulator both do.

// HeartbeatPlan is what the heartbeat transport must do now.
type HeartbeatPlan struct {
	// Peers is the transport's peer set: the peers this node monitors,
	// then the ones that monitor it (Watchers) and are not monitored
	// already. A responder answers only the peers it knows, so a node
	// must know its watchers to answer them; at scale the two sets differ.
	Peers []Peer
	// Monitored says Peers[:Monitored] are monitored. Only their samples
	// count as liveness; Heartbeat ignores the rest.
	Monitored int
	// Changed is set when Peers or Monitored differ from the previous
	// plan's (and on the first plan): the runtime replaces the
	// transport's peers then (and retries on the next plan if that
	// failed).
	Changed bool
	// Ping says a round is due: one PING to every peer in Peers, now.
	// Rounds are Config.HeartbeatInterval apart on the grid that
	// Config.HeartbeatPhase sets, as measured between the calls that
	// return Ping; a runtime that plans once per tick thus
	// pings at most once per tick.
	Ping bool
}

// hbPolicy is the core's state behind HeartbeatPlan.
type hbPolicy struct {
	gen     uint64        // membershipGen ids was built at
	built   bool          // ids has been built at least once
	ids     []wire.NodeID // monitored, then watchers not monitored
	mon     int           // ids[:mon] are monitored
	last    []Peer        // the previous plan's Peers (a copy)
	lastMon int
	planned bool
	pinged  bool          // a round has been asked for
	ping    time.Duration // when the last round was asked for
}

// HeartbeatPlan returns the heartbeat transport's peer set, with Peers
// appended to dst[:0], and says whether the set changed since the previous
// plan and whether PINGs are due. The runtime calls it once per tick (after
// Tick), sends the PINGs when told and feeds every sample it then reads to
// Heartbeat. It changes no state other than the plan's own and sends
// nothing, so it returns no Ready.
func (c *Core) HeartbeatPlan(now time.Duration, dst []Peer) HeartbeatPlan {
	h := &c.hb
	c.refreshMonitors()
	if !h.built || h.gen != c.membershipGen {
		// Both sets change only with membership or roles: rebuild them
		// then, not on every tick (the watchers cost O(N log K)).
		h.built, h.gen = true, c.membershipGen
		h.ids = append(h.ids[:0], c.monitored...)
		h.ids = slices.DeleteFunc(h.ids, func(id wire.NodeID) bool { return c.lookup(id) == nil })
		h.mon = len(h.ids)
		var w []wire.NodeID
		if c.smallCluster() {
			w = c.monitored
		} else {
			w = c.watcherIDs(nil)
		}
		for _, id := range w {
			if !slices.Contains(h.ids, id) && c.lookup(id) != nil {
				h.ids = append(h.ids, id)
			}
		}
	}
	// Addresses can change without a membership change: look them up on
	// every plan.
	plan := HeartbeatPlan{Peers: c.appendPeers(dst[:0], h.ids), Monitored: h.mon}
	if !h.planned || plan.Monitored != h.lastMon || !slices.Equal(plan.Peers, h.last) {
		h.planned = true
		h.last = append(h.last[:0], plan.Peers...)
		h.lastMon = plan.Monitored
		plan.Changed = true
	}
	if len(plan.Peers) > 0 && (!h.pinged || now >= c.nextRound()) {
		h.pinged, h.ping = true, now
		plan.Ping = true
	}
	return plan
}

// Heartbeat feeds one peer's sample from the heartbeat transport. The
// runtime feeds every sample it has, watchers' included: samples of peers
// this node does not monitor are ignored, and a PONG only proves life when
// its progress counter moved, since a hung process keeps a kernel that
// answers.
func (c *Core) Heartbeat(now time.Duration, peer wire.NodeID, s HeartbeatSample) Ready {
	c.begin(now)
	c.refreshMonitors()
	p := c.peers[peer]
	if p == nil || !p.monitored || c.lookup(peer) == nil || s.PongsRecv == 0 {
		return c.finish()
	}
	if !p.hbSeen || s.Progress != p.hbProgress {
		p.hbSeen = true
		p.hbProgress = s.Progress
		if s.LastPong > p.hbAlive {
			p.hbAlive = s.LastPong
		}
		if now-p.hbAlive <= c.cfg.NodeTimeout {
			c.alive(p)
		}
	}
	return c.finish()
}

// nextRound is when the heartbeat round after the last one falls due: the
// first grid point (see Config.HeartbeatPhase) after it.
func (c *Core) nextRound() time.Duration {
	iv := c.cfg.HeartbeatInterval
	off := (c.hb.ping + c.cfg.HeartbeatPhase) % iv
	if off < 0 {
		off += iv
	}
	return c.hb.ping - off + iv
}
