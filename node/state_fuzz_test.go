package node

import (
	"net/netip"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// FuzzDecodeState feeds arbitrary bytes to the node config file decoder and
// then to the core's restore: a corrupt file must give an error, never a
// panic, and whatever decodes must encode and decode to the same state.
func FuzzDecodeState(f *testing.F) {
	a, b := newNodeID(), newNodeID()
	st := &gossip.State{
		ID: a, CurrentEpoch: 7, ConfigEpoch: 5,
		Nodes: []wire.NodeRecord{
			{ID: a, Addr: wire.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 7000, BusPort: 17000}, Flags: wire.FlagMaster, ConfigEpoch: 5, Version: 3},
			{ID: b, Addr: wire.Addr{IP: netip.MustParseAddr("::1"), Port: 7001, BusPort: 17001}, Flags: wire.FlagReplica, Master: a, Version: 9},
		},
		Claims: []wire.SlotClaim{{Owner: a, ConfigEpoch: 5, Version: 3, Ranges: []wire.SlotRange{{Start: 0, End: 100}}}},
	}
	seed, err := encodeState(st, 7000, 17000, time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("{}"))
	f.Add([]byte(`{"id":"zz"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeState(data)
		if err != nil {
			return
		}
		// The core validates what the file format cannot: it must refuse
		// or accept, never panic.
		_, _ = gossip.New(gossip.Config{Addr: wire.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 7000, BusPort: 17000}}, got)
		again, err := encodeState(got, 7000, 17000, time.Unix(0, 0))
		if err != nil {
			t.Fatalf("a decoded state does not encode: %v", err)
		}
		if _, err := decodeState(again); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
	})
}
