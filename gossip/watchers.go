package gossip

import "github.com/hearsay/hearsay/gossip/wire"

// Watchers appends the peers that monitor this node: those whose Monitored
// holds it. A heartbeat responder answers only the peers it knows (the XDP
// program drops PINGs from unknown senders), so the runtime gives its
// heartbeat transport Monitored ∪ Watchers. In a small cluster everyone
// watches everyone and this equals Monitored. At scale a node monitors
// the K nodes before it on the observer ring and is watched by the K after
// it (its observers), so the two sets differ; the shard (master and
// replicas) watch each other both ways.
func (c *Core) Watchers(dst []Peer) []Peer {
	if c.smallCluster() {
		return c.Monitored(dst)
	}
	ids := c.ringNeighbours(c.cfg.ID, c.cfg.Observers, true, nil)
	s := c.self()
	shardMaster := c.cfg.ID
	if s.master != (wire.NodeID{}) {
		shardMaster = s.master
		ids = append(ids, s.master)
	}
	for i := 1; i < len(c.records); i++ {
		if r := &c.records[i]; r.master == shardMaster && r.id != c.cfg.ID {
			ids = append(ids, r.id)
		}
	}
	for i, id := range ids {
		dup := false
		for _, prev := range ids[:i] {
			dup = dup || prev == id
		}
		if r := c.lookup(id); r != nil && !dup {
			dst = append(dst, Peer{ID: id, Addr: r.addr()})
		}
	}
	return dst
}
