package sim

import (
	"fmt"

	"github.com/hearsay/hearsay/gossip/wire"
)

// BootCluster boots nodes [first, first+n) as an already formed cluster, the
// way nodes that load a nodes.conf come up: every one knows all n, the first
// masters of them are masters owning even shares of the slots [0, slots),
// and the rest are replicas spread round-robin over the masters. Master k
// has configEpoch k+1 and every node currentEpoch masters. It returns the
// claims it assigned, in master order.
//
// All the States share one node list and one claim list (the core copies
// what it keeps), so booting 10,000 nodes costs O(N) here, not O(N²).
func (s *Sim) BootCluster(first, n, masters, slots int) ([]wire.SlotClaim, error) {
	if n < 1 || masters < 1 || masters > n || slots < 0 || slots > wire.NumSlots || (slots > 0 && masters > slots) {
		return nil, fmt.Errorf("sim: cannot form a cluster of %d nodes with %d masters over %d slots", n, masters, slots)
	}
	if first < 0 || first+n > len(s.nodes) {
		return nil, fmt.Errorf("sim: nodes [%d,%d) do not exist", first, first+n)
	}
	recs := make([]wire.NodeRecord, n)
	claims := make([]wire.SlotClaim, 0, masters)
	for k := range n {
		i := first + k
		r := wire.NodeRecord{ID: s.nodes[i].id, Addr: s.nodes[i].addr, Version: 1}
		if k < masters {
			r.Flags = wire.FlagMaster
			r.ConfigEpoch = uint64(k + 1)
			if slots > 0 {
				lo, hi := k*slots/masters, (k+1)*slots/masters-1
				claims = append(claims, wire.SlotClaim{
					Owner: r.ID, ConfigEpoch: r.ConfigEpoch, Version: 1,
					Ranges: []wire.SlotRange{{Start: uint16(lo), End: uint16(hi)}},
				})
			}
		} else {
			r.Flags = wire.FlagReplica
			r.Master = s.nodes[first+(k-masters)%masters].id
		}
		recs[k] = r
	}
	for k := range n {
		st := &State{
			ID:           recs[k].ID,
			CurrentEpoch: uint64(masters),
			ConfigEpoch:  recs[k].ConfigEpoch,
			Nodes:        recs,
			Claims:       claims,
		}
		if err := s.Boot(first+k, st); err != nil {
			return nil, err
		}
		if s.opt.KeepState {
			s.nodes[first+k].saved = cloneState(st)
		}
	}
	for k := range masters {
		s.agreeEpoch(first+k, uint64(k+1))
	}
	return claims, nil
}
