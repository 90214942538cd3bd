package admin

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/node/clusterview"
	"github.com/hearsay/hearsay/ring"
)

// Node is one cluster member as read from the node itself when it answered,
// or as the entry node sees it when it did not.
type Node struct {
	clusterview.NodeLine
	// View is the node's own CLUSTER NODES; nil when the node could not be read.
	View []clusterview.NodeLine
	// Keys is the node's DBSIZE, or -1 when unknown.
	Keys int64
	// Err says why the node could not be read; nil when it was.
	Err error
}

// ShortID returns the first 8 characters of the node ID.
func (n *Node) ShortID() string { return n.ID.String()[:8] }

// Cluster is a cluster as read from every node an entry node knows.
type Cluster struct {
	Entry string // the address the cluster was read from
	Nodes []Node // sorted by address
}

// Shard is a master and its replicas.
type Shard struct {
	Master   Node
	Replicas []Node
}

// Shards groups the nodes by master: masters ordered by first slot (slotless
// masters last), replicas by address. Replicas of unknown masters are left out.
func (c *Cluster) Shards() []Shard {
	var shards []Shard
	idx := map[wire.NodeID]int{}
	for _, n := range c.Nodes {
		if n.IsMaster() && n.Flags&wire.FlagHandshake == 0 {
			idx[n.ID] = len(shards)
			shards = append(shards, Shard{Master: n})
		}
	}
	for _, n := range c.Nodes {
		if i, ok := idx[n.Master]; ok && n.IsReplica() {
			shards[i].Replicas = append(shards[i].Replicas, n)
		}
	}
	slices.SortStableFunc(shards, func(a, b Shard) int {
		as, bs := a.Master.Slots, b.Master.Slots
		switch {
		case len(as) == 0 && len(bs) == 0:
			return cmp.Compare(a.Master.Addr(), b.Master.Addr())
		case len(as) == 0:
			return 1
		case len(bs) == 0:
			return -1
		}
		return cmp.Compare(as[0].Start, bs[0].Start)
	})
	return shards
}

// Find returns the node with the given ID, or with the given host:port.
func (c *Cluster) Find(idOrAddr string) (*Node, bool) {
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.ID.String() == idOrAddr || n.Addr() == idOrAddr {
			return n, true
		}
	}
	return nil, false
}

// Load reads CLUSTER NODES from entry, then CLUSTER NODES and DBSIZE from
// every node it lists. Nodes that cannot be read are kept with Err set; only
// a failure to read entry itself is an error.
func (t *Tool) Load(ctx context.Context, entry string) (*Cluster, error) {
	cs := t.newConnSet()
	defer cs.close()
	return t.load(ctx, cs, entry)
}

func (t *Tool) load(ctx context.Context, cs *connSet, entry string) (*Cluster, error) {
	lines, err := cs.nodes(ctx, entry)
	if err != nil {
		return nil, err
	}
	cl := &Cluster{Entry: entry}
	for _, l := range lines {
		n := Node{NodeLine: l, Keys: -1}
		addr := l.Addr()
		switch {
		case l.Myself:
			addr = entry
			if n.IP == "" { // a node that has met no one does not know its IP
				n.IP, _, _ = splitAddr(entry)
			}
		case l.Flags&(wire.FlagHandshake|wire.FlagNoAddr) != 0 || l.IP == "":
			n.Err = &NodeError{addr, fmt.Errorf("node %s has no known address yet (%s)", l.ID.String()[:8], flagText(l))}
			cl.Nodes = append(cl.Nodes, n)
			continue
		}
		c, err := cs.get(ctx, addr)
		if err == nil {
			n.View, err = c.nodes(ctx)
		}
		if err == nil {
			var me clusterview.NodeLine
			if me, err = myself(addr, n.View); err == nil && me.ID != l.ID {
				err = &NodeError{addr, fmt.Errorf("answers as node %s, but %s lists %s there", me.ID.String()[:8], entry, l.ID.String()[:8])}
			}
			if err == nil {
				n.NodeLine = merge(l, me)
			}
		}
		if err == nil {
			n.Keys, err = c.int(ctx, "DBSIZE")
		}
		n.Err = err
		cl.Nodes = append(cl.Nodes, n)
	}
	slices.SortFunc(cl.Nodes, func(a, b Node) int { return compareAddr(a.Addr(), b.Addr()) })
	return cl, nil
}

// merge combines what the entry node says about a node (seen) with the
// node's own myself line (own). The node is the truth about its role,
// master, slots and open slots; the entry about the address it reaches it
// at, its health and its links.
func merge(seen, own clusterview.NodeLine) clusterview.NodeLine {
	const health = wire.FlagPFail | wire.FlagFail
	out := own
	out.IP, out.Port, out.Myself = seen.IP, seen.Port, seen.Myself
	out.Flags = own.Flags&^health | seen.Flags&health
	out.PingSent, out.PongRecv, out.Connected = seen.PingSent, seen.PongRecv, seen.Connected
	return out
}

// compareAddr orders host:port by host, then numerically by port.
func compareAddr(a, b string) int {
	ah, ap, _ := splitAddr(a)
	bh, bp, _ := splitAddr(b)
	if c := cmp.Compare(ah, bh); c != 0 {
		return c
	}
	if c := cmp.Compare(ap, bp); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

func flagText(l clusterview.NodeLine) string {
	return string(clusterview.AppendFlags(nil, l.Myself, l.Flags))
}

// Report is the result of Check.
type Report struct {
	Cluster  *Cluster
	Covered  int      // slots served by some master
	Errors   []string // problems that make the cluster unhealthy
	Warnings []string // things worth knowing that do not
}

// OK reports whether Check found no errors.
func (r *Report) OK() bool { return len(r.Errors) == 0 }

// Signature returns a node's config signature, as redis-cli computes it from
// its CLUSTER NODES: every slot-serving master as id:ranges, sorted, joined
// with "|".
func Signature(view []clusterview.NodeLine) string {
	var parts []string
	for _, l := range view {
		if len(l.Slots) == 0 {
			continue
		}
		rs := slices.Clone(l.Slots)
		slices.SortFunc(rs, func(a, b ring.Range) int { return cmp.Compare(a.Start, b.Start) })
		parts = append(parts, l.ID.String()+":"+ring.FormatRanges(rs))
	}
	slices.Sort(parts)
	return strings.Join(parts, "|")
}

// Check reads the cluster through entry and checks it the way
// redis-cli --cluster check does: every node reachable, every node's config
// signature the same, no open slots, and all 16384 slots covered.
func (t *Tool) Check(ctx context.Context, entry string) (*Report, error) {
	cl, err := t.Load(ctx, entry)
	if err != nil {
		return nil, err
	}
	return CheckCluster(cl), nil
}

// CheckCluster runs Check's tests on an already loaded cluster.
func CheckCluster(cl *Cluster) *Report {
	r := &Report{Cluster: cl}
	sigs := map[string][]string{} // signature -> addresses
	var covered ring.SlotSet
	var open []string
	for _, n := range cl.Nodes {
		addr := n.Addr()
		if n.Err != nil {
			r.Errors = append(r.Errors, n.Err.Error())
		}
		switch {
		case n.Flags&wire.FlagFail != 0:
			r.Errors = append(r.Errors, fmt.Sprintf("%s: node %s is marked fail", addr, n.ShortID()))
		case n.Flags&wire.FlagPFail != 0:
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: node %s is marked fail? (not reachable from %s)", addr, n.ShortID(), cl.Entry))
		}
		if n.IsReplica() {
			if _, ok := cl.Find(n.Master.String()); !ok {
				r.Warnings = append(r.Warnings, fmt.Sprintf("%s: replica of unknown master %s", addr, n.Master.String()[:8]))
			}
		}
		for _, s := range n.Slots {
			_ = covered.AddRange(s)
		}
		for _, o := range n.Open {
			dir, word := "migrating to", "migrating"
			if !o.Migrating {
				dir, word = "importing from", "importing"
			}
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: slot %d is %s %s (open slot, %s)", addr, o.Slot, dir, o.Peer.String()[:8], word))
			open = append(open, fmt.Sprint(o.Slot))
		}
		if n.View != nil {
			sig := Signature(n.View)
			sigs[sig] = append(sigs[sig], addr)
			for _, l := range n.View {
				if l.Flags&wire.FlagHandshake != 0 {
					r.Warnings = append(r.Warnings, fmt.Sprintf("%s: still in handshake with %s", addr, l.Addr()))
				}
			}
		}
	}
	if len(sigs) > 1 {
		var groups []string
		for _, addrs := range sigs {
			groups = append(groups, "["+strings.Join(addrs, " ")+"]")
		}
		slices.Sort(groups)
		r.Errors = append(r.Errors, fmt.Sprintf("nodes don't agree about the slot configuration: %d different views: %s", len(sigs), strings.Join(groups, " vs ")))
	}
	if len(open) > 0 {
		r.Warnings = append(r.Warnings, "open slots: "+strings.Join(open, ", "))
	}
	r.Covered = covered.Count()
	if r.Covered < ring.Slots {
		var missing ring.SlotSet
		_ = missing.AddRange(ring.Range{Start: 0, End: ring.Slots - 1})
		missing.Difference(&covered)
		r.Errors = append(r.Errors, fmt.Sprintf("not all %d slots are covered: %d covered, unassigned: %s", ring.Slots, r.Covered, abbreviate(missing.Ranges(nil), 8)))
	}
	return r
}

// abbreviate formats at most max ranges and says how many more there are.
func abbreviate(rs []ring.Range, max int) string {
	if len(rs) <= max {
		return ring.FormatRanges(rs)
	}
	return fmt.Sprintf("%s ... (%d more ranges)", ring.FormatRanges(rs[:max]), len(rs)-max)
}

// Info reads the cluster through entry, with per-node key counts; its
// Shards method gives the per-master summary.
func (t *Tool) Info(ctx context.Context, entry string) (*Cluster, error) { return t.Load(ctx, entry) }

// Nodes returns addr's CLUSTER NODES, parsed.
func (t *Tool) Nodes(ctx context.Context, addr string) ([]clusterview.NodeLine, error) {
	c, err := t.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer c.close()
	return c.nodes(ctx)
}
