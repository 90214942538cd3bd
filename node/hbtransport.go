package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hearsay/hearsay/bpf"
	"github.com/hearsay/hearsay/bpf/hbpacket"
	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// HeartbeatStats are the counters of a heartbeat transport, as shown in
// INFO and /metrics. A Heartbeats implementation may provide them by also
// implementing HeartbeatStatser.
type HeartbeatStats = bpf.Stats

// HeartbeatStatser is implemented by heartbeat transports that keep
// counters (the bpf-backed one does).
type HeartbeatStatser interface {
	Stats() (HeartbeatStats, error)
}

// heartbeatPingInterval is how often every heartbeat peer gets a PING,
// given the core's HeartbeatInterval (NodeTimeout/4 by default): the core
// decides when a round is due and makes it one of its deadlines. A peer
// must miss four in a row before it is PFAIL, so one lost datagram never
// accuses anyone, and idle heartbeat traffic stays proportional to
// 1/NodeTimeout, like Redis's pings at NodeTimeout/2: a short timeout
// (which XDP makes cheap) buys fast detection, a long one costs almost
// nothing.
func heartbeatPingInterval(coreInterval time.Duration) time.Duration {
	return coreInterval
}

// bpfHeartbeats adapts a bpf.Heartbeater to Heartbeats: peers are keyed by
// the first 8 bytes of their node ID (wire.NodeID.Key) and reached on UDP
// at their IP and bus port, and sample times are moved from
// CLOCK_MONOTONIC onto the core's clock.
type bpfHeartbeats struct {
	h     bpf.Heartbeater
	clock func() time.Duration // the core's clock (Node.now)

	mu    sync.Mutex // SetPeers/Samples run on the bus loop, Stats anywhere
	byKey map[uint64]wire.NodeID
	peers []bpf.Peer
	raw   []bpf.Sample
}

// openHeartbeats creates the transport for cfg.Heartbeat (auto, xdp or
// udp). Under xdp it fails with the reason when XDP is not possible.
// pingEvery is only logged.
func openHeartbeats(cfg *Config, a addrs, id wire.NodeID, clock func() time.Duration, pingEvery time.Duration) (*bpfHeartbeats, error) {
	log := cfg.Logger
	bcfg := bpf.Config{
		Key:       id.Key(),
		Bind:      netip.AddrPortFrom(a.bind, uint16(cfg.BusPort)),
		Secret:    hbpacket.DeriveKey(cfg.ClusterSecret),
		Interface: cfg.XDPInterface,
		XDPMode:   xdpAttachMode(cfg.XDPMode),
		Logf:      func(f string, args ...any) { log.Info(fmt.Sprintf(f, args...)) },
	}
	if bcfg.Interface == "" && a.bind.IsUnspecified() {
		// The interface holding a wildcard bind is not defined; the
		// announced address is the one peers send heartbeats to.
		if name, err := interfaceOf(a.announce); err == nil {
			bcfg.Interface = name
		}
	}
	h, err := bpf.New(bpf.Mode(cfg.Heartbeat), bcfg)
	if err != nil {
		if cfg.Heartbeat == HeartbeatXDP {
			if errors.Is(err, bpf.ErrUnsupported) {
				return nil, fmt.Errorf("node: --heartbeat xdp: XDP is not possible here (use --heartbeat auto or udp): %w", err)
			}
			return nil, fmt.Errorf("node: --heartbeat xdp: %w", err)
		}
		return nil, fmt.Errorf("node: --heartbeat %s: %w", cfg.Heartbeat, err)
	}
	attrs := []any{"mode", string(h.Mode()), "requested", cfg.Heartbeat, "bind", bcfg.Bind.String(),
		"auth", bcfg.Secret != nil, "ping_interval", pingEvery}
	if x, ok := h.(*bpf.XDP); ok {
		attrs = append(attrs, "iface", x.Interface(), "attach", string(x.AttachMode()), "pins", x.PinDir())
	}
	log.Info("heartbeats on", attrs...)
	return &bpfHeartbeats{h: h, clock: clock, byKey: map[uint64]wire.NodeID{}}, nil
}

// xdpAttachMode maps --xdp-mode to bpf's attach mode; auto is "".
func xdpAttachMode(m string) bpf.AttachMode {
	switch m {
	case XDPModeNative:
		return bpf.AttachNative
	case XDPModeGeneric:
		return bpf.AttachGeneric
	}
	return ""
}

// interfaceOf names the interface that holds addr.
func interfaceOf(addr netip.Addr) (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifc := range ifs {
		as, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			if pfx, err := netip.ParsePrefix(a.String()); err == nil && pfx.Addr().Unmap() == addr {
				return ifc.Name, nil
			}
		}
	}
	return "", fmt.Errorf("no interface holds %v", addr)
}

// Mode implements Heartbeats.
func (t *bpfHeartbeats) Mode() string { return string(t.h.Mode()) }

// SetPeers implements Heartbeats.
func (t *bpfHeartbeats) SetPeers(peers []gossip.Peer) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.byKey)
	t.peers = t.peers[:0]
	for _, p := range peers {
		k := p.ID.Key()
		if _, dup := t.byKey[k]; dup {
			continue // two IDs sharing 8 bytes: astronomically unlikely
		}
		t.byKey[k] = p.ID
		t.peers = append(t.peers, bpf.Peer{Key: k, Addr: netip.AddrPortFrom(p.Addr.IP, p.Addr.BusPort)})
	}
	return t.h.SetPeers(t.peers)
}

// Tick implements Heartbeats.
func (t *bpfHeartbeats) Tick() error { return t.h.Tick() }

// SendPings implements Heartbeats.
func (t *bpfHeartbeats) SendPings() error { return t.h.SendPings() }

// SetID implements Heartbeats.
func (t *bpfHeartbeats) SetID(id wire.NodeID) error { return t.h.SetKey(id.Key()) }

// Samples implements Heartbeats: one batched read, times moved onto the
// core's clock. Go's monotonic clock is CLOCK_MONOTONIC on Linux, so the
// two clocks differ by a constant, measured here on every call.
func (t *bpfHeartbeats) Samples(dst []HeartbeatSample) ([]HeartbeatSample, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dst = dst[:0]
	var err error
	if t.raw, err = t.h.Samples(t.raw[:0]); err != nil {
		return dst, err
	}
	offset := t.clock() - bpf.MonotonicNow()
	for _, s := range t.raw {
		id, ok := t.byKey[s.PeerKey]
		if !ok {
			continue
		}
		var last time.Duration
		if s.LastPong > 0 {
			last = max(s.LastPong+offset, 1)
		}
		dst = append(dst, HeartbeatSample{Peer: id, Sample: gossip.HeartbeatSample{
			PongsRecv: s.PongsRecv, LastPong: last, RTT: s.RTT, Progress: s.Progress,
		}, Kernel: s.Kernel})
	}
	return dst, nil
}

// Stats implements HeartbeatStatser.
func (t *bpfHeartbeats) Stats() (HeartbeatStats, error) { return t.h.Stats() }

// Close implements Heartbeats.
func (t *bpfHeartbeats) Close() error { return t.h.Close() }

// xdpInfo reports the interface and attach mode when the transport is XDP.
func (t *bpfHeartbeats) xdpInfo() (iface, attach string, ok bool) {
	if x, ok := t.h.(*bpf.XDP); ok {
		return x.Interface(), string(x.AttachMode()), true
	}
	return "", "", false
}
