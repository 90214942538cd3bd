package gossip

import "github.com/hearsay/hearsay/gossip/wire"

// Watchers appends the peers that monitor this node: those whose Monitored
// holds it. A heartbeat responder answers only the peers it knows (the XDP
// program drops PINGs from unknown senders), so HeartbeatPlan gives the
// heartbeat transport Monitored ∪ Watchers. In a small cluster everyone
// watches everyone and this equals Monitored. At scale a node monitors
// the K nodes before it on the observer ring and is watched by the K after
// it (its observers), so the two sets differ; the shard (master and
// replicas) watch each other both ways.
func (c *Core) Watchers(dst []Peer) []Peer {
	if c.smallCluster() {
		return c.Monitored(dst)
	}
	return c.appendPeers(dst, c.watcherIDs(nil))
}

// watcherIDs appends the IDs of the watchers at scale: the K nodes after
// this one on the observer ring and its shard, without repeats.
func (c *Core) watcherIDs(dst []wire.NodeID) []wire.NodeID {
	return dedupe(c.appendShard(c.ringNeighbours(c.cfg.ID, c.cfg.Observers, true, dst)))
}
