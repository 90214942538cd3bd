package sim

import (
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// benchConfig runs the config scenario: 1ms links, 100ms gossip period, a
// formed cluster whose master takes a slot from another.
func benchConfig(b *testing.B, nodes int) {
	cfg := DefaultConfig()
	cfg.Scenario = ScenarioConfig
	cfg.Nodes = nodes
	var res Result
	for b.Loop() {
		var err error
		res, err = Run(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if !res.Converged || len(res.Violations) > 0 {
			b.Fatalf("%s; violations %q; replay: %s", res.String(), res.Violations, cfg.Command())
		}
	}
	b.ReportMetric(res.ConvergeMS, "convergence_ms")
	b.ReportMetric(res.SteadyBytesPerNodePerS, "bytes/node/s")
	b.ReportMetric(res.SteadyMsgsPerNodePerS, "msgs/node/s")
	b.ReportMetric(res.BytesPerNodePerS, "change_bytes/node/s")
	b.ReportMetric(float64(res.PeakMemPerNodeBytes), "heap_B/node")
}

// BenchmarkSim1k is the config scenario over 1,000 nodes: convergence_ms
// is virtual time until every node agrees on the moved slot and on one
// state digest; bytes/node/s and msgs/node/s are steady-state bus traffic.
func BenchmarkSim1k(b *testing.B) { benchConfig(b, 1000) }

// BenchmarkSim10k is BenchmarkSim1k over 10,000 nodes. It takes minutes
// and gigabytes, so -short skips it.
func BenchmarkSim10k(b *testing.B) {
	if testing.Short() {
		b.Skip("10,000 simulated nodes take minutes and several GB; run without -short")
	}
	// ~15 GB of live core tables: without a limit the collector would let
	// the heap grow to twice that.
	SetMemoryLimit(0.8)
	benchConfig(b, 10000)
}

// BenchmarkCoreStep measures Core.Step on a PING carrying 10 gossip
// entries, as a node receives it from a peer in a 100-node cluster,
// decoded by the real codec: msgs/s is PINGs handled per second.
func BenchmarkCoreStep(b *testing.B) {
	s := New(Options{Seed: 1})
	const n = 100
	s.AddNodes(n)
	if _, err := s.BootCluster(0, n, n/2, wire.NumSlots); err != nil {
		b.Fatal(err)
	}
	c := s.Core(0)
	// The sender's view: its own header and 10 records of nodes the
	// receiver knows, at the versions it knows.
	views := s.Core(1).Nodes(nil)
	m := &wire.Message{Type: wire.TypePing}
	cur, conf := s.Core(1).Epochs()
	m.Header = wire.Header{
		Sender: s.ID(1), CurrentEpoch: cur, ConfigEpoch: conf, Version: 1,
		Flags: wire.FlagMaster, Addr: s.Addr(1), StateDigest: s.Core(1).Digest(), KnownNodes: n,
	}
	for _, v := range views {
		if len(m.Gossip) == 10 {
			break
		}
		if v.ID == s.ID(0) || v.ID == s.ID(1) {
			continue
		}
		m.Gossip = append(m.Gossip, wire.NodeRecord{ID: v.ID, Addr: v.Addr, Flags: v.Flags &^ (wire.FlagPFail | wire.FlagHandshake), Master: v.Master, ConfigEpoch: v.ConfigEpoch, Version: v.Version})
	}
	frame, err := wire.NewEncoder(nil).AppendFrame(nil, m)
	if err != nil {
		b.Fatal(err)
	}
	dec := wire.NewDecoder(nil)
	var in wire.Message
	if err := dec.Decode(frame, &in); err != nil {
		b.Fatal(err)
	}
	now := CoreOrigin
	var out int
	b.ReportAllocs()
	for b.Loop() {
		now += time.Microsecond
		r := c.Step(now, &in)
		out += len(r.Messages)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if out == 0 {
		b.Fatal("Step answered no PING with a PONG")
	}
}
