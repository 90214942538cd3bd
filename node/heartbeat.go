package node

import (
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// Heartbeats is the seam for the XDP heartbeat fast path and its UDP
// fallback (package bpf). The node drives it from the bus loop: Tick every
// loop tick (so a hung process stops advancing its progress counter),
// SetPeers when the monitored set changes, SendPings once per ping period,
// and Samples to feed the core. Samples are already on the core's clock and
// keyed by node ID; an adapter over bpf.Heartbeater does that translation.
type Heartbeats interface {
	// Mode names the transport in use ("xdp" or "udp").
	Mode() string
	// SetPeers replaces the monitored peers.
	SetPeers(peers []gossip.Peer) error
	// Tick advances the progress counter stamped into our PONGs.
	Tick() error
	// SendPings sends one PING to every peer.
	SendPings() error
	// Samples appends one sample per peer to dst[:0].
	Samples(dst []HeartbeatSample) ([]HeartbeatSample, error)
	// Close releases the transport.
	Close() error
}

// HeartbeatSample is one peer's latest heartbeat state.
type HeartbeatSample struct {
	Peer   wire.NodeID
	Sample gossip.HeartbeatSample
}

// heartbeatDriver feeds a Heartbeats transport from the bus loop.
type heartbeatDriver struct {
	n        *Node
	hb       Heartbeats
	peers    []gossip.Peer
	samples  []HeartbeatSample
	lastPing time.Duration
}

// tick runs on the bus loop.
func (d *heartbeatDriver) tick(now time.Duration) {
	n := d.n
	_ = d.hb.Tick()
	if now-d.lastPing < n.core.Config().PingInterval {
		return
	}
	d.lastPing = now
	d.peers = n.core.Monitored(d.peers[:0])
	if err := d.hb.SetPeers(d.peers); err != nil {
		n.log.Warn("heartbeat: cannot set peers", "err", err)
	}
	if err := d.hb.SendPings(); err != nil {
		n.metrics.heartbeatErrors.Inc()
	}
	var err error
	if d.samples, err = d.hb.Samples(d.samples[:0]); err != nil {
		n.metrics.heartbeatErrors.Inc()
		return
	}
	for _, s := range d.samples {
		n.bus.apply(n.core.Heartbeat(now, s.Peer, s.Sample))
	}
	n.metrics.heartbeatSamples.Add(len(d.samples))
}
