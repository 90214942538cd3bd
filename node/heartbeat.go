package node

import (
	"sync/atomic"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// Heartbeats is the seam for the XDP heartbeat fast path and its UDP
// fallback (package bpf). The node drives it from the bus loop as the
// core's HeartbeatPlan says: Tick every loop tick (so a hung process stops
// advancing its progress counter), SetPeers when the plan's peer set
// changes, SendPings when the plan asks for a round, and Samples to feed
// the core. Samples are already on the core's clock and
// keyed by node ID; an adapter over bpf.Heartbeater does that translation.
type Heartbeats interface {
	// Mode names the transport in use ("xdp" or "udp").
	Mode() string
	// SetPeers replaces the peers: those pinged, answered and sampled.
	// It must not keep peers after it returns.
	SetPeers(peers []gossip.Peer) error
	// Tick advances the progress counter stamped into our PONGs.
	Tick() error
	// SendPings sends one PING to every peer.
	SendPings() error
	// Samples appends one sample per peer to dst[:0].
	Samples(dst []HeartbeatSample) ([]HeartbeatSample, error)
	// SetID changes our own ID, whose first 8 bytes are the sender key
	// in every PING and PONG (CLUSTER RESET HARD takes a new ID).
	SetID(id wire.NodeID) error
	// Close releases the transport.
	Close() error
}

// HeartbeatSample is one peer's latest heartbeat state.
type HeartbeatSample struct {
	Peer   wire.NodeID
	Sample gossip.HeartbeatSample
	// Kernel says the peer's last PONG was written by its XDP program
	// (the PONG's hbpacket.FlagKernel); false means a userspace responder
	// answered. Only the web view reads it; the core does not care.
	Kernel bool
}

// heartbeatDriver feeds a Heartbeats transport from the bus loop. The
// policy is the core's (gossip.Core.HeartbeatPlan and Heartbeat); the
// driver only does the I/O: every tick it bumps the progress counter, asks
// the core for its plan, replaces the transport's peers when the plan
// changed, sends PINGs when the plan says they are due, and feeds every
// sample it reads to the core.
type heartbeatDriver struct {
	n         *Node
	hb        Heartbeats
	pingEvery time.Duration        // the core's ping cadence, for INFO
	peers     []gossip.Peer        // the latest plan's peer set
	peersOK   bool                 // SetPeers succeeded with the latest changed set
	mon       map[wire.NodeID]bool // the plan's monitored peers, for the answering count
	samples   []HeartbeatSample
	peerCount atomic.Int64 // len(peers), for INFO and /metrics
	answering atomic.Int64 // monitored peers whose last PONG is under NodeTimeout old
	stats     hbStatsCache
	webSamples
}

func newHeartbeatDriver(n *Node, hb Heartbeats) *heartbeatDriver {
	d := &heartbeatDriver{n: n, hb: hb, pingEvery: heartbeatPingInterval(n.core.Config().HeartbeatInterval),
		mon: map[wire.NodeID]bool{}}
	d.stats.d = d
	return d
}

// tick runs on the bus loop after each Tick of the core: it advances the
// progress counter, follows the core's plan and sends the PINGs it asks
// for.
func (d *heartbeatDriver) tick(now time.Duration) {
	n := d.n
	if err := d.hb.Tick(); err != nil {
		n.metrics.heartbeatErrors.Inc()
	}
	plan := n.core.HeartbeatPlan(now, d.peers)
	d.peers = plan.Peers
	if plan.Changed {
		clear(d.mon)
		for _, p := range plan.Peers[:plan.Monitored] {
			d.mon[p.ID] = true
		}
		d.peerCount.Store(int64(len(plan.Peers)))
	}
	if plan.Changed || !d.peersOK {
		d.peersOK = true
		if err := d.hb.SetPeers(plan.Peers); err != nil {
			d.peersOK = false // retried next tick
			n.metrics.heartbeatErrors.Inc()
			n.log.Warn("heartbeat: cannot set peers", "err", err)
		}
	}
	if plan.Ping {
		if err := d.hb.SendPings(); err != nil {
			n.metrics.heartbeatErrors.Inc()
		}
	}
}

// feed reads every sample the transport holds and feeds it to the core;
// the bus runs it before each Tick of the core.
func (d *heartbeatDriver) feed(now time.Duration) {
	n := d.n
	var err error
	if d.samples, err = d.hb.Samples(d.samples[:0]); err != nil {
		n.metrics.heartbeatErrors.Inc()
		return
	}
	answering := 0
	for _, s := range d.samples {
		if d.mon[s.Peer] && s.Sample.PongsRecv > 0 && now-s.Sample.LastPong <= n.cfg.NodeTimeout {
			answering++
		}
		// Every sample goes to the core, which ignores the peers it
		// does not monitor.
		n.bus.apply(n.core.Heartbeat(now, s.Peer, s.Sample))
	}
	d.answering.Store(int64(answering))
	d.publishSamples(now)
	n.metrics.heartbeatSamples.Add(len(d.samples))
}
