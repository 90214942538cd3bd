package node

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// fakeHeartbeats is a Heartbeats transport that records what the driver
// asks of it and returns canned samples.
type fakeHeartbeats struct {
	setPeers [][]gossip.Peer
	pings    int
	ticks    int
	samples  []HeartbeatSample
}

func (f *fakeHeartbeats) Mode() string { return HeartbeatUDP }
func (f *fakeHeartbeats) SetPeers(p []gossip.Peer) error {
	f.setPeers = append(f.setPeers, append([]gossip.Peer(nil), p...))
	return nil
}
func (f *fakeHeartbeats) Tick() error             { f.ticks++; return nil }
func (f *fakeHeartbeats) SendPings() error        { f.pings++; return nil }
func (f *fakeHeartbeats) SetID(wire.NodeID) error { return nil }
func (f *fakeHeartbeats) Close() error            { return nil }
func (f *fakeHeartbeats) Samples(dst []HeartbeatSample) ([]HeartbeatSample, error) {
	return append(dst[:0], f.samples...), nil
}

// The driver does what the core's plan says: SetPeers once per change,
// PINGs every NodeTimeout/4, every sample to the core, and the peer and
// answering counts for INFO and /metrics.
func TestHeartbeatDriverFollowsPlan(t *testing.T) {
	f := &fakeHeartbeats{}
	n, err := New(Config{Dir: t.TempDir(), Port: 7100, NodeTimeout: time.Second, Heartbeats: f,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// A peer the core learns from a bus MEET (alone, a node takes no other
	// stranger, as Redis).
	var peer wire.NodeID
	peer[0], peer[1] = 0xab, 0xcd
	addr := wire.Addr{IP: netip.MustParseAddr("127.0.0.2"), Port: 7000, BusPort: 17000}
	now := n.now()
	n.core.Step(now, &wire.Message{Type: wire.TypeMeet, Header: wire.Header{Sender: peer, Addr: addr,
		Version: 1, Flags: wire.FlagMaster}})
	if n.core.KnownNodes() != 2 {
		t.Fatalf("the core knows %d nodes, want 2", n.core.KnownNodes())
	}
	var stranger wire.NodeID
	stranger[0] = 0x77
	f.samples = []HeartbeatSample{
		{Peer: peer, Sample: gossip.HeartbeatSample{PongsRecv: 1, LastPong: now, Progress: 1}},
		{Peer: stranger, Sample: gossip.HeartbeatSample{PongsRecv: 1, LastPong: now, Progress: 1}},
	}
	const step = 20 * time.Millisecond
	for k := range 50 { // one second of ticks 20ms apart
		f.samples[0].Sample = gossip.HeartbeatSample{PongsRecv: uint64(k + 1), LastPong: now, Progress: uint64(k + 1)}
		n.hb.feed(now)
		n.hb.tick(now)
		now += step
	}
	if len(f.setPeers) != 1 || len(f.setPeers[0]) != 1 || f.setPeers[0][0].ID != peer || f.setPeers[0][0].Addr != addr {
		t.Fatalf("SetPeers calls %v, want one with the peer", f.setPeers)
	}
	if f.ticks != 50 {
		t.Fatalf("%d progress ticks in 50 driver ticks", f.ticks)
	}
	// One at once, then one per 250ms point of the wall-clock grid.
	if f.pings < 4 || f.pings > 5 {
		t.Fatalf("%d ping rounds in one second at NodeTimeout 1s, want 4 or 5", f.pings)
	}
	if got := n.hb.peerCount.Load(); got != 1 {
		t.Fatalf("peer count %d, want 1", got)
	}
	if got := n.hb.answering.Load(); got != 1 {
		t.Fatalf("answering %d, want 1 (the stranger is not monitored)", got)
	}
	if v, ok := n.core.Node(peer); !ok || !v.Connected {
		t.Fatalf("the core does not hold the peer alive: %+v", v)
	}
	if _, ok := n.core.Node(stranger); ok {
		t.Fatal("a sample of an unknown node added it")
	}
}
