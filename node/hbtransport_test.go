package node

import (
	"net/netip"
	"testing"
	"time"

	"github.com/hearsay/hearsay/bpf"
	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// fakeHB is a bpf.Heartbeater that reports canned samples.
type fakeHB struct {
	peers   []bpf.Peer
	samples []bpf.Sample
	key     uint64
}

func (f *fakeHB) Mode() bpf.Mode              { return bpf.ModeUDP }
func (f *fakeHB) SetPeers(p []bpf.Peer) error { f.peers = append(f.peers[:0], p...); return nil }
func (f *fakeHB) Tick() error                 { return nil }
func (f *fakeHB) SendPings() error            { return nil }
func (f *fakeHB) SetKey(k uint64) error       { f.key = k; return nil }
func (f *fakeHB) Stats() (bpf.Stats, error)   { return bpf.Stats{}, nil }
func (f *fakeHB) Close() error                { return nil }
func (f *fakeHB) Samples(dst []bpf.Sample) ([]bpf.Sample, error) {
	return append(dst[:0], f.samples...), nil
}

// The adapter keys peers by wire.NodeID.Key, addresses them at IP:bus
// port, and moves CLOCK_MONOTONIC times onto the core's clock.
func TestBPFHeartbeatsAdapter(t *testing.T) {
	var id1, id2 wire.NodeID
	id1[0], id2[0] = 1, 2
	start := time.Now()
	clock := func() time.Duration { return time.Since(start) + clockOrigin } // as Node.now
	f := &fakeHB{}
	a := &bpfHeartbeats{h: f, clock: clock, byKey: map[uint64]wire.NodeID{}}
	ip := netip.MustParseAddr("10.0.0.7")
	err := a.SetPeers([]gossip.Peer{
		{ID: id1, Addr: wire.Addr{IP: ip, Port: 7000, BusPort: 17000}},
		{ID: id2, Addr: wire.Addr{IP: ip, Port: 7001, BusPort: 17001}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.peers) != 2 || f.peers[0].Key != id1.Key() || f.peers[0].Addr != netip.MustParseAddrPort("10.0.0.7:17000") {
		t.Fatalf("peers given to the transport: %+v", f.peers)
	}
	pong := bpf.MonotonicNow() - 50*time.Millisecond
	f.samples = []bpf.Sample{
		{PeerKey: id1.Key(), PongsRecv: 3, LastPong: pong, RTT: time.Millisecond, Progress: 9},
		{PeerKey: id2.Key()},            // never answered
		{PeerKey: 0xdead, PongsRecv: 1}, // not ours
	}
	got, err := a.Samples(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Peer != id1 || got[1].Peer != id2 {
		t.Fatalf("samples: %+v", got)
	}
	s := got[0].Sample
	if s.PongsRecv != 3 || s.Progress != 9 || s.RTT != time.Millisecond {
		t.Fatalf("sample fields: %+v", s)
	}
	// The PONG was 50ms ago on CLOCK_MONOTONIC; on the core's clock too.
	if age := clock() - s.LastPong; age < 50*time.Millisecond || age > time.Second {
		t.Fatalf("PONG age on the core's clock: %v, want about 50ms", age)
	}
	if got[1].Sample.LastPong != 0 {
		t.Fatalf("a peer that never answered has LastPong %v, want 0", got[1].Sample.LastPong)
	}
	// A new own ID (RESET HARD) becomes the transport's sender key.
	if err := a.SetID(id2); err != nil || f.key != id2.Key() {
		t.Fatalf("SetID: key %x, err %v; want %x", f.key, err, id2.Key())
	}
}

// The ping cadence is the core's HeartbeatInterval (NodeTimeout/4 by
// default).
func TestHeartbeatPingInterval(t *testing.T) {
	for _, c := range []struct{ timeout, want time.Duration }{
		{5 * time.Second, 1250 * time.Millisecond},
		{300 * time.Millisecond, 75 * time.Millisecond},
		{40 * time.Millisecond, 10 * time.Millisecond},
	} {
		var id wire.NodeID
		id[0] = 1
		core, err := gossip.New(gossip.Config{ID: id, NodeTimeout: c.timeout,
			Addr: wire.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 7000, BusPort: 17000}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := heartbeatPingInterval(core.Config().HeartbeatInterval); got != c.want {
			t.Errorf("node timeout %v: ping interval %v, want %v", c.timeout, got, c.want)
		}
	}
}
