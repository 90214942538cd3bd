package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// AddNode adds the empty node newAddr to the cluster that existingAddr
// belongs to, with redis-cli's sequence: CLUSTER MEET from the new node to
// the existing one, then, when asReplicaOf is set, CLUSTER REPLICATE once the
// new node knows its master. asReplicaOf is a master's node ID or host:port;
// empty adds the node as a slotless master. It returns the new node's ID.
func (t *Tool) AddNode(ctx context.Context, newAddr, existingAddr, asReplicaOf string) (wire.NodeID, error) {
	cs := t.newConnSet()
	defer cs.close()
	cl, err := t.load(ctx, cs, existingAddr)
	if err != nil {
		return wire.NodeID{}, err
	}
	var master *Node
	if asReplicaOf != "" {
		m, ok := cl.Find(asReplicaOf)
		if !ok {
			return wire.NodeID{}, &NodeError{existingAddr, fmt.Errorf("no node %s in this cluster to replicate", asReplicaOf)}
		}
		if !m.IsMaster() {
			return wire.NodeID{}, &NodeError{m.Addr(), fmt.Errorf("node %s is a replica, not a master; a replica must replicate a master", m.ShortID())}
		}
		master = m
	}

	nc, err := cs.get(ctx, newAddr)
	if err != nil {
		return wire.NodeID{}, err
	}
	info, err := nc.clusterInfo(ctx)
	if err != nil {
		return wire.NodeID{}, err
	}
	if k := info["cluster_known_nodes"]; k != "1" {
		return wire.NodeID{}, &NodeError{newAddr, fmt.Errorf("node is not empty: it already knows %s nodes (cluster_known_nodes:%s)", k, k)}
	}
	if n, err := nc.int(ctx, "DBSIZE"); err != nil {
		return wire.NodeID{}, err
	} else if n != 0 {
		return wire.NodeID{}, &NodeError{newAddr, fmt.Errorf("node is not empty: it holds %d keys", n)}
	}
	lines, err := nc.nodes(ctx)
	if err != nil {
		return wire.NodeID{}, err
	}
	me, err := myself(newAddr, lines)
	if err != nil {
		return wire.NodeID{}, err
	}

	// MEET the existing node, at the address it announces.
	var entry *Node
	for i := range cl.Nodes {
		if cl.Nodes[i].Myself {
			entry = &cl.Nodes[i]
		}
	}
	if entry == nil {
		return me.ID, &NodeError{existingAddr, errors.New("CLUSTER NODES has no myself line")}
	}
	host, port, _ := splitAddr(existingAddr)
	ip, err := resolveIP(ctx, host)
	if err != nil {
		return me.ID, &NodeError{existingAddr, err}
	}
	args := []any{"CLUSTER", "MEET", ip, port}
	if entry.BusPort != 0 && int(entry.BusPort) != port+10000 {
		args = append(args, entry.BusPort)
	}
	t.progress("%s: sending CLUSTER MEET %s %d", newAddr, ip, port)
	if err := nc.call(ctx, args...); err != nil {
		return me.ID, err
	}

	// Wait until the new node and the entry node know each other (and the
	// new node its master). The rest of the cluster learns of it by gossip;
	// a member that still holds it on a FORGET blacklist learns of it only
	// when that entry expires, so waiting for everyone could take 60 s.
	ec, _ := cs.get(ctx, existingAddr)
	wantNew := map[string]wire.NodeID{existingAddr: entry.ID}
	if master != nil {
		wantNew["master"] = master.ID
	}
	t.progress("waiting for %s to join", newAddr)
	err = t.poll(ctx, newAddr+" to join", func() error {
		if err := knowsAll(ctx, nc, wantNew); err != nil {
			return err
		}
		return knowsAll(ctx, ec, map[string]wire.NodeID{newAddr: me.ID})
	})
	if err != nil || master == nil {
		return me.ID, err
	}
	t.progress("%s: replicating %s (%s)", newAddr, master.Addr(), master.ShortID())
	if err := nc.call(ctx, "CLUSTER", "REPLICATE", master.ID.String()); err != nil {
		return me.ID, err
	}
	return me.ID, t.poll(ctx, newAddr+" to become a replica", func() error {
		lines, err := ec.nodes(ctx)
		if err != nil {
			return err
		}
		for _, l := range lines {
			if l.ID == me.ID && l.IsReplica() && l.Master == master.ID {
				return nil
			}
		}
		return &NodeError{existingAddr, fmt.Errorf("does not see %s as a replica of %s yet", newAddr, master.ShortID())}
	})
}

// DelNode removes node id (an ID or host:port) from the cluster that
// existingAddr belongs to, with redis-cli's sequence: replicas of the node
// are moved to the master with the fewest replicas, every other node is sent
// CLUSTER FORGET, and the removed node, if it answers, CLUSTER RESET SOFT. A
// master that still serves slots is refused: reshard them away first.
func (t *Tool) DelNode(ctx context.Context, existingAddr, id string) error {
	cs := t.newConnSet()
	defer cs.close()
	cl, err := t.load(ctx, cs, existingAddr)
	if err != nil {
		return err
	}
	del, ok := cl.Find(id)
	if !ok {
		return &NodeError{existingAddr, fmt.Errorf("no node %s in this cluster", id)}
	}
	if n := del.SlotCount(); n > 0 {
		return &NodeError{del.Addr(), fmt.Errorf("node %s still serves %d slots (%s); reshard them away before removing it", del.ShortID(), n, ring.FormatRanges(del.Slots))}
	}

	// Its replicas go to the master with the fewest replicas.
	var orphans []*Node
	for i := range cl.Nodes {
		if n := &cl.Nodes[i]; n.IsReplica() && n.Master == del.ID {
			orphans = append(orphans, n)
		}
	}
	if len(orphans) > 0 {
		var best *Node
		bestN := 0
		for i := range cl.Nodes {
			m := &cl.Nodes[i]
			if m.ID == del.ID || !m.IsMaster() || m.Flags&(wire.FlagFail|wire.FlagPFail|wire.FlagHandshake) != 0 {
				continue
			}
			n := 0
			for _, r := range cl.Nodes {
				if r.IsReplica() && r.Master == m.ID {
					n++
				}
			}
			if best == nil || n < bestN {
				best, bestN = m, n
			}
		}
		if best == nil {
			return &NodeError{del.Addr(), errors.New("its replicas have no other master to move to")}
		}
		for _, r := range orphans {
			c, err := cs.get(ctx, r.Addr())
			if err != nil {
				return err
			}
			t.progress("%s: moving replica to %s (%s)", r.Addr(), best.Addr(), best.ShortID())
			if err := c.call(ctx, "CLUSTER", "REPLICATE", best.ID.String()); err != nil {
				return err
			}
		}
	}

	// FORGET everywhere else, then RESET SOFT the node itself.
	var errs []error
	for i := range cl.Nodes {
		n := &cl.Nodes[i]
		if n.ID == del.ID {
			continue
		}
		addr := n.Addr()
		if n.Myself {
			addr = existingAddr
		}
		c, err := cs.get(ctx, addr)
		if err == nil {
			t.progress("%s: CLUSTER FORGET %s", addr, del.ShortID())
			err = c.call(ctx, "CLUSTER", "FORGET", del.ID.String())
			// A node that never learned of the removed one has nothing to forget.
			var re redis.Error
			if errors.As(err, &re) && strings.HasPrefix(re.Error(), "ERR Unknown node") {
				t.progress("%s: did not know %s; nothing to forget", addr, del.ShortID())
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c, err := cs.get(ctx, del.Addr()); err == nil {
		t.progress("%s: CLUSTER RESET SOFT", del.Addr())
		if err := c.call(ctx, "CLUSTER", "RESET", "SOFT"); err != nil {
			errs = append(errs, err)
		}
	} else {
		t.progress("%s: not reachable, so not reset: %v", del.Addr(), err)
	}
	return errors.Join(errs...)
}

// knowsAll reports an error naming the first of want that c's CLUSTER NODES
// does not list as a known (handshake-complete) node.
func knowsAll(ctx context.Context, c *conn, want map[string]wire.NodeID) error {
	lines, err := c.nodes(ctx)
	if err != nil {
		return err
	}
	known := map[wire.NodeID]bool{}
	for _, l := range lines {
		if l.Flags&wire.FlagHandshake == 0 {
			known[l.ID] = true
		}
	}
	for what, id := range want {
		if !known[id] {
			return &NodeError{c.addr, fmt.Errorf("does not know %s (%s) yet", what, id.String()[:8])}
		}
	}
	return nil
}
