package node

import (
	"slices"
	"sync/atomic"
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
}

// heartbeatDriver feeds a Heartbeats transport from the bus loop. Every
// tick it bumps the progress counter, keeps the transport's peers equal to
// the core's monitored set, reads all samples once and feeds them to the
// core; every pingEvery it sends one PING to each monitored peer.
type heartbeatDriver struct {
	n         *Node
	hb        Heartbeats
	pingEvery time.Duration
	peers     []gossip.Peer // the set last given to SetPeers: monitored, then watchers
	nmon      int           // peers[:nmon] are monitored
	mon       map[wire.NodeID]bool
	seen      map[wire.NodeID]bool
	next      []gossip.Peer
	peersOK   bool // SetPeers succeeded with peers
	samples   []HeartbeatSample
	lastPing  time.Duration
	peerCount atomic.Int64 // len(peers), for INFO and /metrics
	answering atomic.Int64 // peers whose last PONG is under NodeTimeout old
	stats     hbStatsCache
}

func newHeartbeatDriver(n *Node, hb Heartbeats) *heartbeatDriver {
	d := &heartbeatDriver{n: n, hb: hb, pingEvery: heartbeatPingInterval(n.cfg.NodeTimeout),
		mon: map[wire.NodeID]bool{}, seen: map[wire.NodeID]bool{}}
	d.stats.d = d
	return d
}

// tick runs on the bus loop.
func (d *heartbeatDriver) tick(now time.Duration) {
	n := d.n
	if err := d.hb.Tick(); err != nil {
		n.metrics.heartbeatErrors.Inc()
	}
	// Ping and answer the peers we monitor, and answer (so also ping) the
	// peers that monitor us: at scale the two sets differ, and a
	// responder drops PINGs from peers it does not know.
	d.next = n.core.Monitored(d.next[:0])
	mon := len(d.next)
	clear(d.seen)
	for _, p := range d.next {
		d.seen[p.ID] = true
	}
	d.next = n.core.Watchers(d.next)
	kept := d.next[:mon]
	for _, p := range d.next[mon:] {
		if !d.seen[p.ID] {
			d.seen[p.ID] = true
			kept = append(kept, p)
		}
	}
	d.next = kept
	// The same list with another split (a watcher became monitored, or
	// back) changes which samples the core gets, so compare nmon too.
	if !d.peersOK || mon != d.nmon || !slices.Equal(d.next, d.peers) {
		d.peers, d.next = d.next, d.peers
		d.nmon = mon
		clear(d.mon)
		for _, p := range d.peers[:mon] {
			d.mon[p.ID] = true
		}
		d.peersOK = true
		d.peerCount.Store(int64(len(d.peers)))
		if err := d.hb.SetPeers(d.peers); err != nil {
			d.peersOK = false // retried next tick
			n.metrics.heartbeatErrors.Inc()
			n.log.Warn("heartbeat: cannot set peers", "err", err)
		}
	}
	if now-d.lastPing >= d.pingEvery && len(d.peers) > 0 {
		d.lastPing = now
		if err := d.hb.SendPings(); err != nil {
			n.metrics.heartbeatErrors.Inc()
		}
	}
	var err error
	if d.samples, err = d.hb.Samples(d.samples[:0]); err != nil {
		n.metrics.heartbeatErrors.Inc()
		return
	}
	answering := 0
	for _, s := range d.samples {
		if !d.mon[s.Peer] {
			continue // a watcher only: the core judges the peers it monitors
		}
		if s.Sample.PongsRecv > 0 && now-s.Sample.LastPong <= n.cfg.NodeTimeout {
			answering++
		}
		n.bus.apply(n.core.Heartbeat(now, s.Peer, s.Sample))
	}
	d.answering.Store(int64(answering))
	n.metrics.heartbeatSamples.Add(len(d.samples))
}
