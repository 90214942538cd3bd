package gossip

import (
	"bytes"
	"slices"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// NodeView is one node as CLUSTER NODES shows it.
type NodeView struct {
	ID          wire.NodeID
	Addr        wire.Addr
	Flags       wire.Flags // role, FlagFail, and FlagPFail / FlagHandshake as this node sees them
	Myself      bool
	Master      wire.NodeID
	ConfigEpoch uint64 // the node's own configEpoch; Redis shows a replica's master's
	Version     uint64
	ReplOffset  uint64
	PingSent    time.Duration // 0 when no ping is outstanding
	PongRecv    time.Duration // 0 when never
	Connected   bool          // heard from within node-timeout, or this node
	Slots       []ring.Range  // from this node's slot table
}

// Nodes appends every known node, handshakes included, sorted by ID.
func (c *Core) Nodes(dst []NodeView) []NodeView {
	start := len(dst)
	for i := range c.records {
		dst = append(dst, c.view(&c.records[i]))
	}
	for _, hs := range c.handshakes {
		dst = append(dst, NodeView{ID: hs.tempID, Addr: hs.addr, Flags: wire.FlagHandshake | wire.FlagMaster})
	}
	slices.SortFunc(dst[start:], func(a, b NodeView) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return dst
}

// Node returns the view of one node.
func (c *Core) Node(id wire.NodeID) (NodeView, bool) {
	r := c.lookup(id)
	if r == nil {
		return NodeView{}, false
	}
	return c.view(r), true
}

func (c *Core) view(r *record) NodeView {
	v := NodeView{
		ID: r.id, Addr: r.addr(), Flags: r.flags, Myself: r.id == c.cfg.ID, Master: r.master,
		ConfigEpoch: r.configEpoch, Version: r.version, ReplOffset: r.replOffset,
	}
	if v.Myself {
		v.Connected = true
	}
	if p := c.peers[r.id]; p != nil {
		if p.pfail {
			v.Flags |= wire.FlagPFail
		}
		if p.pinged {
			v.PingSent = p.pingSent
		}
		v.PongRecv = p.pongRecv
		if at, ok := p.alive(); ok && c.now-at <= c.cfg.NodeTimeout {
			v.Connected = true
		}
	}
	if c.masters[r.id] > 0 {
		v.Slots = slices.Clone(c.ownerRanges()[ring.NodeID(r.id)]) // the cache's own
	}
	return v
}

// ownerRanges returns every owner's slot ranges (ring.Table.RangesByOwner)
// and keeps them until the table changes: Nodes runs on every change the
// runtime publishes, most of which leave the slots alone.
func (c *Core) ownerRanges() map[ring.NodeID][]ring.Range {
	// Version 0 is the empty table, whose ranges the zero cache holds.
	rc := &c.rangeCache
	if rc.version != c.table.Version() {
		rc.ranges, rc.version = c.table.RangesByOwner(), c.table.Version()
	}
	return rc.ranges
}

// Snapshot returns an immutable copy of the slot table for lock-free readers.
func (c *Core) Snapshot() *ring.Snapshot { return c.table.Snapshot() }

// SlotOwner returns the owner of slot and its configEpoch.
func (c *Core) SlotOwner(slot uint16) (wire.NodeID, uint64) {
	id, e := c.table.Owner(slot)
	return wire.NodeID(id), e
}

// SlotCount returns how many slots node id serves.
func (c *Core) SlotCount(id wire.NodeID) int { return c.masters[id] }

// Monitored appends the IDs and addresses of the peers this node watches;
// the runtime sends them heartbeats when liveness comes from outside.
func (c *Core) Monitored(dst []Peer) []Peer {
	c.refreshMonitors()
	return c.appendPeers(dst, c.monitored)
}

// appendPeers appends the known nodes among ids with their addresses.
func (c *Core) appendPeers(dst []Peer, ids []wire.NodeID) []Peer {
	for _, id := range ids {
		if r := c.lookup(id); r != nil {
			dst = append(dst, Peer{ID: id, Addr: r.addr()})
		}
	}
	return dst
}

// Peer names a node and where it listens.
type Peer struct {
	ID   wire.NodeID
	Addr wire.Addr
}

// Health is the cluster state as this node sees it, Redis's rule: the
// cluster is ok when every slot is assigned, no slot is served by a FAIL
// master, and a majority of the masters that serve slots are reachable
// (neither PFAIL nor FAIL here).
type Health struct {
	SlotsAssigned, SlotsOK, SlotsPFail, SlotsFail int
	Size                                          int // masters serving slots
	// Covered: every slot is assigned and none is served by a FAIL master.
	Covered bool
	// Majority: a majority of the masters serving slots is reachable, so
	// this node is not on the minority side of a partition.
	Majority bool
	// OK is Covered && Majority: Redis's cluster_state with
	// cluster-require-full-coverage yes.
	OK bool
}

// StateOK is the cluster state under Redis's cluster-require-full-coverage
// setting: with fullCoverage false, only a majority is required.
func (h Health) StateOK(fullCoverage bool) bool {
	return h.Majority && (h.Covered || !fullCoverage)
}

// ClusterHealth applies the rule to a node table view (Core.Nodes).
func ClusterHealth(views []NodeView) Health {
	var h Health
	unreachable := 0
	for i := range views {
		v := &views[i]
		n := 0
		for _, r := range v.Slots {
			n += r.Len()
		}
		if n == 0 {
			continue
		}
		h.Size++
		h.SlotsAssigned += n
		switch {
		case v.Flags&wire.FlagFail != 0:
			h.SlotsFail += n
			unreachable++
		case v.Flags&wire.FlagPFail != 0:
			h.SlotsPFail += n
			unreachable++
		default:
			h.SlotsOK += n
		}
	}
	h.judge(unreachable)
	return h
}

// judge sets the verdicts from the counts, unreachable being how many of
// the Size masters are PFAIL or FAIL.
func (h *Health) judge(unreachable int) {
	h.Covered = h.SlotsAssigned == ring.Slots && h.SlotsFail == 0
	h.Majority = h.Size-unreachable >= h.Size/2+1
	h.OK = h.Covered && h.Majority
}
