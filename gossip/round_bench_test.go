package gossip

import (
	"testing"

	"github.com/hearsay/hearsay/gossip/wire"
)

// BenchmarkBusRound is one bus message's whole trip through a node: a PING
// with 10 gossip entries decoded from its frame, stepped into the core of a
// 12-node cluster, and the PONG it answers encoded, into reused buffers, as
// the bus loop does it. With a secret both frames carry an HMAC.
func BenchmarkBusRound(b *testing.B) {
	for _, bc := range []struct {
		name   string
		secret []byte
	}{{"plain", nil}, {"hmac", []byte("0123456789abcdef0123456789abcdef")}} {
		b.Run(bc.name, func(b *testing.B) {
			tn := formed(b, 12, nil)
			c, from := tn.cores[0], tn.cores[1]
			ping := cloneMsg(from.newMessage(wire.TypePing))
			for i := 2; i < 12; i++ {
				v, _ := from.Node(tn.cores[i].ID())
				ping.Gossip = append(ping.Gossip, wire.NodeRecord{ID: v.ID, Addr: v.Addr, Flags: v.Flags, Master: v.Master, ConfigEpoch: v.ConfigEpoch, Version: v.Version})
			}
			enc, dec := wire.NewEncoder(bc.secret), wire.NewDecoder(bc.secret)
			in, err := enc.AppendFrame(nil, ping)
			if err != nil {
				b.Fatal(err)
			}
			out := make([]byte, 0, wire.MaxFrame)
			var m wire.Message
			now := tn.now
			replies := 0
			b.ReportAllocs()
			for b.Loop() {
				if err := dec.Decode(in, &m); err != nil {
					b.Fatal(err)
				}
				r := c.Step(now, &m)
				for k := range r.Messages {
					if out, err = enc.AppendFrame(out[:0], r.Messages[k].Msg); err != nil {
						b.Fatal(err)
					}
					replies++
				}
			}
			if replies < b.N {
				b.Fatalf("%d replies to %d PINGs", replies, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
