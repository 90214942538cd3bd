package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// migrateBatch is how many keys one MIGRATE carries during a fix.
const migrateBatch = 100

// openSlot is what the masters say about one slot left open by the
// key-by-key path.
type openSlot struct {
	slot      uint16
	owner     *Node   // the master whose own table holds the slot; nil if none
	migrating []*Node // masters with slot MIGRATING, and to whom
	migTo     []wire.NodeID
	importing []*Node // masters with slot IMPORTING
}

// Fix closes the slots that an interrupted key-by-key migration (SETSLOT
// MIGRATING / IMPORTING, MIGRATE) left open, and assigns slots no master
// holds, as redis-cli --cluster fix does:
//   - an owner MIGRATING to a master that is IMPORTING: the move is
//     finished (the keys still on the owner are migrated, then SETSLOT
//     NODE on the target, the owner and every other master);
//   - any other open mark: the keys that reached the other side go back to
//     the owner and the marks are cleared (SETSLOT STABLE);
//   - a slot no master holds: it goes to the master that has keys in it
//     (the most, if several), or else to the master with the fewest slots,
//     with ADDSLOTS and an epoch bump.
//
// No key is overwritten: a key that exists on both sides stays where it is
// and is reported, and its slot is left open for the operator. It returns
// one line per action taken.
func (t *Tool) Fix(ctx context.Context, entry string) ([]string, error) {
	cs := t.newConnSet()
	defer cs.close()
	cl, err := t.load(ctx, cs, entry)
	if err != nil {
		return nil, err
	}
	var masters []*Node
	for i := range cl.Nodes {
		n := &cl.Nodes[i]
		if !n.IsMaster() || n.Flags&wire.FlagHandshake != 0 {
			continue
		}
		if n.Err != nil {
			return nil, fmt.Errorf("cannot fix while a master cannot be read: %w", n.Err)
		}
		masters = append(masters, n)
	}
	if len(masters) == 0 {
		return nil, fmt.Errorf("%s: no master can be read", entry)
	}
	open := map[uint16]*openSlot{}
	get := func(s uint16) *openSlot {
		if o, ok := open[s]; ok {
			return o
		}
		o := &openSlot{slot: s}
		open[s] = o
		return o
	}
	owners := [ring.Slots]*Node{}
	for _, m := range masters {
		for _, r := range m.Slots {
			for s := int(r.Start); s <= int(r.End); s++ {
				owners[s] = m
			}
		}
		for _, o := range m.Open {
			so := get(o.Slot)
			if o.Migrating {
				so.migrating = append(so.migrating, m)
				so.migTo = append(so.migTo, o.Peer)
			} else {
				so.importing = append(so.importing, m)
			}
		}
	}
	var did []string
	var problems []string
	slots := make([]uint16, 0, len(open))
	for s := range open {
		slots = append(slots, s)
	}
	slices.Sort(slots)
	// Coverage first: while a slot has no owner the cluster is down and
	// refuses the MIGRATEs below.
	assigned := 0
	for s := range ring.Slots {
		if owners[s] != nil || open[uint16(s)] != nil {
			continue
		}
		line, err := t.assignSlot(ctx, cs, masters, uint16(s))
		if line != "" {
			did = append(did, line)
			assigned++
		}
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	if assigned > 0 && len(slots) > 0 {
		if err := t.waitClusterOK(ctx, cs, masters); err != nil {
			t.progress("the cluster is not ok yet; fixing the open slots anyway: %v", err)
		}
	}
	for _, s := range slots {
		o := open[s]
		o.owner = owners[s]
		lines, err := t.fixOpen(ctx, cs, masters, o)
		did = append(did, lines...)
		if err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return did, errors.New(strings.Join(problems, "; "))
	}
	return did, nil
}

// waitClusterOK waits until every master reports cluster_state:ok.
func (t *Tool) waitClusterOK(ctx context.Context, cs *connSet, masters []*Node) error {
	return t.poll(ctx, "cluster_state:ok on every master", func() error {
		for _, m := range masters {
			c, err := cs.get(ctx, m.Addr())
			if err != nil {
				return err
			}
			info, err := c.clusterInfo(ctx)
			if err != nil {
				return err
			}
			if info["cluster_state"] != "ok" {
				return fmt.Errorf("%s: cluster_state:%s", m.Addr(), info["cluster_state"])
			}
		}
		return nil
	})
}

// fixOpen closes one open slot.
func (t *Tool) fixOpen(ctx context.Context, cs *connSet, masters []*Node, o *openSlot) ([]string, error) {
	s := o.slot
	var did []string
	if o.owner == nil {
		// Marks on a slot nobody holds: clear them, then assign it.
		for _, m := range append(slices.Clone(o.migrating), o.importing...) {
			if err := t.setSlot(ctx, cs, m, s, "STABLE"); err != nil {
				return did, err
			}
		}
		did = append(did, fmt.Sprintf("slot %d: marks cleared on a slot no master holds", s))
		line, err := t.assignSlot(ctx, cs, masters, s)
		if line != "" {
			did = append(did, line)
		}
		return did, err
	}
	// Finish the move if the owner migrates to a master that imports.
	for i, m := range o.migrating {
		if m.ID != o.owner.ID {
			continue
		}
		for _, im := range o.importing {
			if im.ID != o.migTo[i] {
				continue
			}
			n, busy, err := t.moveSlotKeys(ctx, cs, o.owner, im, s)
			if err != nil || len(busy) > 0 {
				return did, slotKeyError(s, o.owner, im, busy, err)
			}
			if err := t.settle(ctx, cs, masters, s, im, o.owner); err != nil {
				return did, err
			}
			return append(did, fmt.Sprintf("slot %d: finished the move from %s to %s (%d keys moved)", s, o.owner.ShortID(), im.ShortID(), n)), nil
		}
	}
	// Otherwise the owner keeps the slot: bring back what reached others.
	for _, m := range append(slices.Clone(o.importing), o.migrating...) {
		if m.ID == o.owner.ID {
			continue
		}
		n, busy, err := t.moveSlotKeys(ctx, cs, m, o.owner, s)
		if err != nil || len(busy) > 0 {
			return did, slotKeyError(s, m, o.owner, busy, err)
		}
		if n > 0 {
			did = append(did, fmt.Sprintf("slot %d: %d keys moved back from %s to its owner %s", s, n, m.ShortID(), o.owner.ShortID()))
		}
	}
	for _, m := range append(slices.Clone(o.importing), o.migrating...) {
		if err := t.setSlot(ctx, cs, m, s, "STABLE"); err != nil {
			return did, err
		}
	}
	return append(did, fmt.Sprintf("slot %d: left with its owner %s, marks cleared", s, o.owner.ShortID())), nil
}

func slotKeyError(s uint16, from, to *Node, busy []string, err error) error {
	if err != nil {
		return fmt.Errorf("slot %d: moving keys from %s to %s: %w", s, from.ShortID(), to.ShortID(), err)
	}
	if len(busy) > 5 {
		busy = append(busy[:5:5], fmt.Sprintf("and %d more", len(busy)-5))
	}
	return fmt.Errorf("slot %d left open: keys exist on both %s and %s (%s); decide which copy stays, delete the other, and run fix again",
		s, from.ShortID(), to.ShortID(), strings.Join(busy, ", "))
}

// settle ends a finished move as redis-cli does: SETSLOT NODE on the new
// owner first (it bumps its epoch), then the old one, then the rest.
func (t *Tool) settle(ctx context.Context, cs *connSet, masters []*Node, s uint16, to, from *Node) error {
	order := []*Node{to, from}
	for _, m := range masters {
		if m.ID != to.ID && m.ID != from.ID {
			order = append(order, m)
		}
	}
	for _, m := range order {
		if err := t.setSlot(ctx, cs, m, s, "NODE", to.ID.String()); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tool) setSlot(ctx context.Context, cs *connSet, m *Node, s uint16, args ...string) error {
	c, err := cs.get(ctx, m.Addr())
	if err != nil {
		return err
	}
	cmd := []any{"CLUSTER", "SETSLOT", int(s)}
	for _, a := range args {
		cmd = append(cmd, a)
	}
	return c.call(ctx, cmd...)
}

// assignSlot gives slot s, which no master holds, to the master holding
// most of its keys, or else to the one with the fewest slots.
func (t *Tool) assignSlot(ctx context.Context, cs *connSet, masters []*Node, s uint16) (string, error) {
	var best *Node
	var bestKeys int64
	holders := map[*Node]int64{}
	for _, m := range masters {
		c, err := cs.get(ctx, m.Addr())
		if err != nil {
			return "", err
		}
		n, err := c.int(ctx, "CLUSTER", "COUNTKEYSINSLOT", int(s))
		if err != nil {
			return "", err
		}
		if n > 0 {
			holders[m] = n
		}
		if n > bestKeys {
			best, bestKeys = m, n
		}
	}
	if best == nil {
		fewest := -1
		for _, m := range masters {
			have := ring.RangesLen(m.Slots)
			if fewest < 0 || have < fewest {
				best, fewest = m, have
			}
		}
	}
	c, err := cs.get(ctx, best.Addr())
	if err != nil {
		return "", err
	}
	if err := c.call(ctx, "CLUSTER", "ADDSLOTS", int(s)); err != nil {
		return "", err
	}
	if err := c.call(ctx, "CLUSTER", "BUMPEPOCH"); err != nil {
		return "", err
	}
	for m := range holders {
		if m == best {
			continue
		}
		if _, busy, err := t.moveSlotKeys(ctx, cs, m, best, s); err != nil || len(busy) > 0 {
			return fmt.Sprintf("slot %d: assigned to %s", s, best.ShortID()), slotKeyError(s, m, best, busy, err)
		}
	}
	return fmt.Sprintf("slot %d: assigned to %s (%d keys were there)", s, best.ShortID(), bestKeys), nil
}

// moveSlotKeys migrates every key of slot s from one master to another,
// migrateBatch at a time, never replacing a key the target has: those are
// returned as busy and stay where they are.
func (t *Tool) moveSlotKeys(ctx context.Context, cs *connSet, from, to *Node, s uint16) (int, []string, error) {
	c, err := cs.get(ctx, from.Addr())
	if err != nil {
		return 0, nil, err
	}
	host, port, err := splitAddr(to.Addr())
	if err != nil {
		return 0, nil, err
	}
	timeoutMS := strconv.Itoa(int(t.timeout().Milliseconds()))
	busy := map[string]bool{}
	moved := 0
	for {
		v, err := c.do(ctx, "CLUSTER", "GETKEYSINSLOT", int(s), migrateBatch+len(busy)).StringSlice()
		if err != nil {
			return moved, nil, &NodeError{from.Addr(), fmt.Errorf("CLUSTER GETKEYSINSLOT: %w", err)}
		}
		var keys []string
		for _, k := range v {
			if !busy[k] {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			break
		}
		if err := t.migrate(ctx, c, host, port, timeoutMS, keys); err == nil {
			moved += len(keys)
			continue
		} else if !strings.Contains(err.Error(), "BUSYKEY") {
			return moved, nil, err
		}
		// Find the keys the target already has, one at a time.
		for _, k := range keys {
			err := t.migrate(ctx, c, host, port, timeoutMS, []string{k})
			switch {
			case err == nil:
				moved++
			case strings.Contains(err.Error(), "BUSYKEY"):
				busy[k] = true
			default:
				return moved, nil, err
			}
		}
	}
	out := make([]string, 0, len(busy))
	for k := range busy {
		out = append(out, k)
	}
	slices.Sort(out)
	return moved, out, nil
}

func (t *Tool) migrate(ctx context.Context, c *conn, host string, port int, timeoutMS string, keys []string) error {
	args := []any{"MIGRATE", host, port, "", 0, timeoutMS}
	if t.Password != "" {
		args = append(args, "AUTH", t.Password)
	}
	args = append(args, "KEYS")
	for _, k := range keys {
		args = append(args, k)
	}
	return c.call(ctx, args...)
}
