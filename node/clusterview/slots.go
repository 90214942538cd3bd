package clusterview

import (
	"cmp"
	"slices"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// SlotGroup is one entry of CLUSTER SLOTS: a range of slots, the master that
// serves it and the replicas that can serve reads for it.
type SlotGroup struct {
	Start, End uint16
	Master     gossip.NodeView
	Replicas   []gossip.NodeView
}

// SlotGroups returns the entries of CLUSTER SLOTS ordered by first slot. Each
// range of each master is its own group. Replicas that are FAIL, that are
// still in handshake, or whose replication offset is 0 are left out, as Redis
// leaves them out; the rest keep the order of views.
func SlotGroups(views []gossip.NodeView) []SlotGroup {
	replicas := replicasByMaster(views)
	var groups []SlotGroup
	for i := range views {
		m := &views[i]
		if len(m.Slots) == 0 || m.Flags&wire.FlagHandshake != 0 {
			continue
		}
		var avail []gossip.NodeView
		for _, r := range replicas[m.ID] {
			if r.Flags&wire.FlagFail != 0 || r.ReplOffset == 0 {
				continue
			}
			avail = append(avail, r)
		}
		for _, r := range m.Slots {
			groups = append(groups, SlotGroup{Start: r.Start, End: r.End, Master: *m, Replicas: avail})
		}
	}
	slices.SortStableFunc(groups, func(a, b SlotGroup) int { return cmp.Compare(a.Start, b.Start) })
	return groups
}

// Shard is one entry of CLUSTER SHARDS: a master and its replicas, and the
// slots the master serves. Nodes[0] is the master.
type Shard struct {
	Slots []ring.Range
	Nodes []gossip.NodeView
}

// Shards returns the entries of CLUSTER SHARDS: one per known master (with or
// without slots), ordered by first slot with slotless shards last, then by
// master ID. Replicas follow their master in the order of views. Nodes in
// handshake belong to no shard yet.
func Shards(views []gossip.NodeView) []Shard {
	replicas := replicasByMaster(views)
	var shards []Shard
	for i := range views {
		m := &views[i]
		if m.Flags&wire.FlagHandshake != 0 || !isMaster(m) {
			continue
		}
		nodes := make([]gossip.NodeView, 0, 1+len(replicas[m.ID]))
		nodes = append(nodes, *m)
		nodes = append(nodes, replicas[m.ID]...)
		shards = append(shards, Shard{Slots: m.Slots, Nodes: nodes})
	}
	slices.SortStableFunc(shards, func(a, b Shard) int {
		switch {
		case len(a.Slots) == 0 && len(b.Slots) == 0:
			return compareID(a.Nodes[0].ID, b.Nodes[0].ID)
		case len(a.Slots) == 0:
			return 1
		case len(b.Slots) == 0:
			return -1
		}
		return cmp.Compare(a.Slots[0].Start, b.Slots[0].Start)
	})
	return shards
}

// Role returns "master" or "replica", the role field of CLUSTER SHARDS.
func Role(v gossip.NodeView) string {
	if isMaster(&v) {
		return "master"
	}
	return "replica"
}

// Health returns the health field of CLUSTER SHARDS as Redis derives it:
// "fail" for a FAIL node, "loading" for a replica that has replicated
// nothing yet (offset 0), and "online" otherwise.
func Health(v gossip.NodeView) string {
	switch {
	case v.Flags&wire.FlagFail != 0:
		return "fail"
	case !isMaster(&v) && v.ReplOffset == 0:
		return "loading"
	}
	return "online"
}

func isMaster(v *gossip.NodeView) bool {
	return v.Master.IsZero() && v.Flags&wire.FlagReplica == 0
}

func replicasByMaster(views []gossip.NodeView) map[wire.NodeID][]gossip.NodeView {
	m := make(map[wire.NodeID][]gossip.NodeView)
	for i := range views {
		v := &views[i]
		if v.Master.IsZero() || v.Flags&wire.FlagHandshake != 0 {
			continue
		}
		m[v.Master] = append(m[v.Master], *v)
	}
	return m
}

func compareID(a, b wire.NodeID) int {
	for i := range a {
		if c := cmp.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}
