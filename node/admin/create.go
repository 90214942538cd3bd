package admin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/node/clusterview"
	"github.com/hearsay/hearsay/ring"
)

// MinMasters is the smallest cluster Create builds, as in redis-cli.
const MinMasters = 3

// Plan is the layout Create gives a new cluster.
type Plan struct {
	Masters  []PlanMaster
	Replicas map[string]string // replica address -> master address
}

// PlanMaster is a master of a Plan and the slots it is given.
type PlanMaster struct {
	Addr  string
	Slots ring.Range
}

// MakePlan chooses masters and replicas among addrs and spreads the 16384
// slots evenly over the masters, as redis-cli does. Masters are taken
// round-robin across hosts; each replica is given, in turn, to a master on a
// different host when there is one.
func MakePlan(addrs []string, replicas int) (*Plan, error) {
	if replicas < 0 {
		return nil, fmt.Errorf("--replicas must be 0 or more, not %d", replicas)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if _, _, err := splitAddr(a); err != nil {
			return nil, err
		}
		if seen[a] {
			return nil, fmt.Errorf("%s is listed twice", a)
		}
		seen[a] = true
	}
	nMasters := len(addrs) / (replicas + 1)
	if nMasters < MinMasters {
		return nil, fmt.Errorf("%d nodes with %d replicas per master give %d masters; a cluster needs at least %d (so at least %d nodes)",
			len(addrs), replicas, nMasters, MinMasters, MinMasters*(replicas+1))
	}

	// Interleave hosts: one node of each host in turn.
	var hosts []string
	byHost := map[string][]string{}
	for _, a := range addrs {
		h, _, _ := splitAddr(a)
		if _, ok := byHost[h]; !ok {
			hosts = append(hosts, h)
		}
		byHost[h] = append(byHost[h], a)
	}
	var order []string
	for len(order) < len(addrs) {
		for _, h := range hosts {
			if q := byHost[h]; len(q) > 0 {
				order = append(order, q[0])
				byHost[h] = q[1:]
			}
		}
	}

	p := &Plan{Replicas: map[string]string{}}
	per := float64(ring.Slots) / float64(nMasters)
	first, cursor := 0, 0.0
	for i := 0; i < nMasters; i++ {
		last := int(math.Round(cursor + per - 1))
		if last > ring.Slots-1 || i == nMasters-1 {
			last = ring.Slots - 1
		}
		p.Masters = append(p.Masters, PlanMaster{Addr: order[i], Slots: ring.Range{Start: uint16(first), End: uint16(last)}})
		first = last + 1
		cursor += per
	}

	// Replicas: spare j goes to master (j+off) mod m, with the offset that
	// puts the fewest replicas on their master's host. Nodes beyond
	// masters*(replicas+1) become extra replicas the same way.
	spare := order[nMasters:]
	hostOf := func(a string) string { h, _, _ := splitAddr(a); return h }
	best, bestConflicts := 0, len(spare)+1
	for off := 0; off < nMasters; off++ {
		conflicts := 0
		for j, s := range spare {
			if hostOf(s) == hostOf(p.Masters[(j+off)%nMasters].Addr) {
				conflicts++
			}
		}
		if conflicts < bestConflicts {
			best, bestConflicts = off, conflicts
		}
	}
	for j, s := range spare {
		p.Replicas[s] = p.Masters[(j+best)%nMasters].Addr
	}
	return p, nil
}

// ReplicaAddrs returns the replicas of master in address order.
func (p *Plan) ReplicaAddrs(master string) []string {
	var out []string
	for r, m := range p.Replicas {
		if m == master {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, compareAddr)
	return out
}

// Create builds a new cluster from empty nodes, with redis-cli's sequence:
// check each node is empty (CLUSTER INFO cluster_known_nodes:1, DBSIZE 0),
// ADDSLOTSRANGE on the masters, SET-CONFIG-EPOCH 1..N, CLUSTER MEET every
// node to the first, wait until every node lists every other with no
// handshake, CLUSTER REPLICATE the replicas, and wait until all agree.
func (t *Tool) Create(ctx context.Context, addrs []string, replicas int) (*Plan, error) {
	plan, err := MakePlan(addrs, replicas)
	if err != nil {
		return nil, err
	}
	cs := t.newConnSet()
	defer cs.close()

	// 1. Every node answers and is empty.
	ids := map[string]wire.NodeID{}
	me := map[string]clusterview.NodeLine{}
	for _, a := range addrs {
		c, err := cs.get(ctx, a)
		if err != nil {
			return plan, err
		}
		info, err := c.clusterInfo(ctx)
		if err != nil {
			return plan, err
		}
		if k := info["cluster_known_nodes"]; k != "1" {
			return plan, &NodeError{a, fmt.Errorf("node is not empty: it already knows %s nodes (cluster_known_nodes:%s); reset it with CLUSTER RESET or start it with an empty --dir", k, k)}
		}
		if n, err := c.int(ctx, "DBSIZE"); err != nil {
			return plan, err
		} else if n != 0 {
			return plan, &NodeError{a, fmt.Errorf("node is not empty: it holds %d keys", n)}
		}
		lines, err := c.nodes(ctx)
		if err != nil {
			return plan, err
		}
		l, err := myself(a, lines)
		if err != nil {
			return plan, err
		}
		if len(l.Slots) > 0 {
			return plan, &NodeError{a, fmt.Errorf("node is not empty: it already serves slots %s", ring.FormatRanges(l.Slots))}
		}
		ids[a], me[a] = l.ID, l
	}

	// 2. Slots to the masters.
	for _, m := range plan.Masters {
		c, _ := cs.get(ctx, m.Addr)
		t.progress("%s: assigning slots %s", m.Addr, m.Slots)
		if err := c.call(ctx, "CLUSTER", "ADDSLOTSRANGE", m.Slots.Start, m.Slots.End); err != nil {
			return plan, err
		}
	}

	// 3. Distinct config epochs, so no collision has to be resolved.
	for i, a := range addrs {
		c, _ := cs.get(ctx, a)
		if err := c.call(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1); err != nil {
			return plan, err
		}
	}

	// 4. Everyone meets the first node.
	first := addrs[0]
	host, port, _ := splitAddr(first)
	ip, err := resolveIP(ctx, host)
	if err != nil {
		return plan, &NodeError{first, err}
	}
	bus := me[first].BusPort
	t.progress("sending CLUSTER MEET %s %d to the other %d nodes", ip, port, len(addrs)-1)
	for _, a := range addrs[1:] {
		c, _ := cs.get(ctx, a)
		args := []any{"CLUSTER", "MEET", ip, port}
		if bus != 0 && int(bus) != port+10000 {
			args = append(args, bus)
		}
		if err := c.call(ctx, args...); err != nil {
			return plan, err
		}
	}

	// 5. Wait until everyone knows everyone.
	t.progress("waiting for the %d nodes to join", len(addrs))
	if err := t.waitJoined(ctx, cs, addrs, ids); err != nil {
		return plan, err
	}

	// 6. Replicas.
	for _, r := range sortedKeys(plan.Replicas) {
		m := plan.Replicas[r]
		c, _ := cs.get(ctx, r)
		t.progress("%s: replicating %s (%s)", r, m, ids[m].String()[:8])
		if err := c.call(ctx, "CLUSTER", "REPLICATE", ids[m].String()); err != nil {
			return plan, err
		}
	}

	// 7. Wait for agreement on roles and slots.
	t.progress("waiting for the cluster to agree")
	want := map[wire.NodeID]wire.NodeID{}
	for r, m := range plan.Replicas {
		want[ids[r]] = ids[m]
	}
	return plan, t.waitAgreed(ctx, cs, addrs, want)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareAddr)
	return keys
}

// poll calls check every 100ms until it returns nil, the wait runs out, or
// ctx ends; the error then carries check's last complaint.
func (t *Tool) poll(ctx context.Context, what string, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, t.wait())
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %v waiting for %s: %w", t.wait(), what, err)
		case <-tick.C:
		}
	}
}

// waitJoined waits until every node lists every node of ids, none of them
// in handshake.
func (t *Tool) waitJoined(ctx context.Context, cs *connSet, addrs []string, ids map[string]wire.NodeID) error {
	return t.poll(ctx, "the nodes to join", func() error {
		var problems []string
		for _, a := range addrs {
			lines, err := cs.nodes(ctx, a)
			if err != nil {
				return err
			}
			known := map[wire.NodeID]bool{}
			hs := 0
			for _, l := range lines {
				if l.Flags&wire.FlagHandshake != 0 {
					hs++
					continue
				}
				known[l.ID] = true
			}
			var missing []string
			for _, b := range addrs {
				if !known[ids[b]] {
					missing = append(missing, b)
				}
			}
			if len(missing) > 0 || hs > 0 {
				problems = append(problems, fmt.Sprintf("%s does not know %s yet (%d in handshake)", a, strings.Join(missing, ","), hs))
			}
		}
		t.count("the nodes to join", len(addrs)-len(problems), len(addrs))
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "; "))
		}
		return nil
	})
}

// waitAgreed waits until every node of addrs has the same config signature
// and sees each replica of want replicating its master.
func (t *Tool) waitAgreed(ctx context.Context, cs *connSet, addrs []string, want map[wire.NodeID]wire.NodeID) error {
	return t.poll(ctx, "the nodes to agree", func() error {
		var problems []string
		sig0, agreed := "", 0
		for i, a := range addrs {
			lines, err := cs.nodes(ctx, a)
			if err != nil {
				return err
			}
			sig := Signature(lines)
			before := len(problems)
			if i == 0 {
				sig0 = sig
			} else if sig != sig0 {
				problems = append(problems, fmt.Sprintf("%s sees other slot owners than %s", a, addrs[0]))
			}
			for _, l := range lines {
				if m, ok := want[l.ID]; ok && (l.Master != m || !l.IsReplica()) {
					problems = append(problems, fmt.Sprintf("%s does not see %s as a replica of %s yet", a, l.Addr(), m.String()[:8]))
				}
			}
			if len(problems) == before {
				agreed++
			}
		}
		t.count("the nodes to agree", agreed, len(addrs))
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "; "))
		}
		return nil
	})
}
