package admin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// Migration is one row of CLUSTER GETSLOTMIGRATIONS.
type Migration struct {
	Name      string
	Operation string // EXPORT or IMPORT
	Slots     string // "0-5 9-9"
	Source    string
	Target    string
	State     string
	Keys      int64
	Bytes     int64
	Message   string
}

// Done reports whether the migration has ended, well or not.
func (m *Migration) Done() bool {
	return m.State == "success" || m.State == "failed" || m.State == "cancelled"
}

// MoveProgress is how far a Reshard is, passed to Tool.Moved on every
// poll.
type MoveProgress struct {
	From, To     wire.NodeID
	SlotsDone    int
	Slots        int
	KeysDone     int64
	Keys         int64 // counted before the move started; writes change it
	Elapsed      time.Duration
	Migrations   int // running
	Finished     int // ended with success
	LastMessages []string
}

// ReshardResult is what a Reshard moved.
type ReshardResult struct {
	From, To wire.NodeID
	Slots    []ring.Range
	Keys     int64 // as the migrations counted them
	Bytes    int64
	Elapsed  time.Duration
}

// KeysPerSecond is the move's rate over its whole duration.
func (r *ReshardResult) KeysPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Keys) / r.Elapsed.Seconds()
}

// Reshard moves count slots from the master from to the master to (IDs,
// unique ID prefixes or host:port) with the atomic path: CLUSTER
// MIGRATESLOTS on the source, split into pipeline migrations that run at
// once (1 when pipeline < 1), then polls CLUSTER GETSLOTMIGRATIONS until
// each has ended and waits until every node sees the target own the slots.
// The lowest-numbered slots of the source move. A migration that fails
// leaves its slots with the source (the node guarantees it); Reshard then
// returns an error naming it, after the others have ended.
func (t *Tool) Reshard(ctx context.Context, entry, from, to string, count, pipeline int) (*ReshardResult, error) {
	cs := t.newConnSet()
	defer cs.close()
	cl, err := t.load(ctx, cs, entry)
	if err != nil {
		return nil, err
	}
	src, dst, err := pickPair(cl, from, to)
	if err != nil {
		return nil, err
	}
	var have ring.SlotSet
	for _, r := range src.Slots {
		_ = have.AddRange(r)
	}
	if count < 1 {
		return nil, fmt.Errorf("the number of slots to move must be at least 1")
	}
	if n := have.Count(); count > n {
		return nil, fmt.Errorf("%s (%s) has %d slots; cannot move %d", src.Addr(), src.ShortID(), n, count)
	}
	slots := firstSlots(&have, count)
	return t.move(ctx, cs, cl, src, dst, slots, pipeline)
}

// pickPair finds the source and target masters of a move.
func pickPair(cl *Cluster, from, to string) (src, dst *Node, err error) {
	if src, err = findMaster(cl, from, "source"); err != nil {
		return nil, nil, err
	}
	if dst, err = findMaster(cl, to, "target"); err != nil {
		return nil, nil, err
	}
	if src.ID == dst.ID {
		return nil, nil, fmt.Errorf("the source and the target are the same node (%s)", src.ShortID())
	}
	return src, dst, nil
}

// findMaster resolves an ID, a unique ID prefix or a host:port to a master
// that can be read.
func findMaster(cl *Cluster, ref, role string) (*Node, error) {
	n, ok := cl.Find(ref)
	if !ok && len(ref) >= 4 {
		for i := range cl.Nodes {
			if strings.HasPrefix(cl.Nodes[i].ID.String(), ref) {
				if n != nil {
					return nil, fmt.Errorf("%s %q: more than one node ID starts with it", role, ref)
				}
				n = &cl.Nodes[i]
			}
		}
		ok = n != nil
	}
	switch {
	case !ok:
		return nil, fmt.Errorf("%s %q: no such node in the cluster", role, ref)
	case !n.IsMaster():
		return nil, fmt.Errorf("%s %s (%s) is not a master", role, n.Addr(), n.ShortID())
	case n.Err != nil:
		return nil, fmt.Errorf("%s: %w", role, n.Err)
	}
	return n, nil
}

// firstSlots returns the count lowest slots of set, as ranges.
func firstSlots(set *ring.SlotSet, count int) []ring.Range {
	var pick ring.SlotSet
	for s := 0; s < ring.Slots && count > 0; s++ {
		if set.Has(uint16(s)) {
			pick.Add(uint16(s))
			count--
		}
	}
	return pick.Ranges(nil)
}

// splitRanges cuts rs into at most k groups of about equal slot counts,
// keeping each group's slots in order.
func splitRanges(rs []ring.Range, k int) [][]ring.Range {
	total := ring.RangesLen(rs)
	k = max(1, min(k, total))
	per := (total + k - 1) / k
	var out [][]ring.Range
	var cur []ring.Range
	n := 0
	for _, r := range rs {
		for s := int(r.Start); s <= int(r.End); {
			take := min(int(r.End)-s+1, per-n)
			cur = append(cur, ring.Range{Start: uint16(s), End: uint16(s + take - 1)})
			n += take
			s += take
			if n == per {
				out = append(out, cur)
				cur, n = nil, 0
			}
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// move runs the migrations of slots from src to dst and waits for them.
func (t *Tool) move(ctx context.Context, cs *connSet, cl *Cluster, src, dst *Node, slots []ring.Range, pipeline int) (*ReshardResult, error) {
	c, err := cs.get(ctx, src.Addr())
	if err != nil {
		return nil, err
	}
	total := ring.RangesLen(slots)
	keys, err := countKeys(ctx, c, slots)
	if err != nil {
		return nil, err
	}
	before, err := c.migrations(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, m := range before {
		seen[m.Name] = true
	}
	groups := splitRanges(slots, pipeline)
	args := []any{"CLUSTER", "MIGRATESLOTS"}
	for _, g := range groups {
		args = append(args, "SLOTSRANGE")
		for _, r := range g {
			args = append(args, int(r.Start), int(r.End))
		}
		args = append(args, "NODE", dst.ID.String())
	}
	t.progress("Moving %d slots (%s, %d keys) from %s (%s) to %s (%s) in %d migration(s)",
		total, abbreviate(slots, 4), keys, src.Addr(), src.ShortID(), dst.Addr(), dst.ShortID(), len(groups))
	start := time.Now()
	if err := c.call(ctx, args...); err != nil {
		return nil, err
	}
	res := &ReshardResult{From: src.ID, To: dst.ID, Slots: slots}
	var failed []string
	lastChange, lastSig := time.Now(), ""
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		rows, err := c.migrations(ctx)
		if err != nil {
			return nil, err
		}
		var ours []Migration
		for _, m := range rows {
			if !seen[m.Name] && strings.EqualFold(m.Operation, "export") && m.Target == dst.ID.String() {
				ours = append(ours, m)
			}
		}
		p := MoveProgress{From: src.ID, To: dst.ID, Slots: total, Keys: keys, Elapsed: time.Since(start)}
		res.Keys, res.Bytes, failed = 0, 0, failed[:0]
		ended := 0
		sig := ""
		for _, m := range ours {
			res.Keys += m.Keys
			res.Bytes += m.Bytes
			sig += m.State + strconv.FormatInt(m.Keys, 10) + ";"
			switch {
			case m.State == "success":
				p.Finished++
				p.SlotsDone += slotCount(m.Slots)
				ended++
			case m.Done():
				failed = append(failed, fmt.Sprintf("migration %s of slots %s ended %s: %s", m.Name, m.Slots, m.State, m.Message))
				ended++
			default:
				p.Migrations++
				if m.Message != "" {
					p.LastMessages = append(p.LastMessages, m.Message)
				}
			}
		}
		p.KeysDone = res.Keys
		if t.Moved != nil {
			t.Moved(p)
		}
		if len(ours) >= len(groups) && ended == len(ours) {
			break
		}
		if sig != lastSig {
			lastSig, lastChange = sig, time.Now()
		} else if time.Since(lastChange) > t.wait() {
			return nil, &NodeError{src.Addr(), fmt.Errorf("the migrations made no progress for %v (%d of %d seen)", t.wait(), len(ours), len(groups))}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("interrupted: the migrations keep running on %s; CLUSTER CANCELSLOTMIGRATIONS there cancels them: %w", src.Addr(), ctx.Err())
		case <-tick.C:
		}
	}
	res.Elapsed = time.Since(start)
	if len(failed) > 0 {
		return res, &NodeError{src.Addr(), errors.New(strings.Join(failed, "; "))}
	}
	if err := t.waitOwned(ctx, cs, cl, dst.ID, slots); err != nil {
		return res, err
	}
	return res, nil
}

// waitOwned waits until every master that answers sees owner hold slots.
func (t *Tool) waitOwned(ctx context.Context, cs *connSet, cl *Cluster, owner wire.NodeID, slots []ring.Range) error {
	var addrs []string
	for _, n := range cl.Nodes {
		if n.Err == nil {
			addrs = append(addrs, n.Addr())
		}
	}
	return t.poll(ctx, "every node to see the new owner", func() error {
		agreed := 0
		var problems []string
		for _, a := range addrs {
			lines, err := cs.nodes(ctx, a)
			if err != nil {
				return err
			}
			var held ring.SlotSet
			for _, l := range lines {
				if l.ID == owner {
					for _, r := range l.Slots {
						_ = held.AddRange(r)
					}
				}
			}
			missing := 0
			for _, r := range slots {
				for s := int(r.Start); s <= int(r.End); s++ {
					if !held.Has(uint16(s)) {
						missing++
					}
				}
			}
			if missing > 0 {
				problems = append(problems, fmt.Sprintf("%s does not see %d of the slots on %s yet", a, missing, owner.String()[:8]))
			} else {
				agreed++
			}
		}
		t.count("every node to see the new owner", agreed, len(addrs))
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "; "))
		}
		return nil
	})
}

func slotCount(s string) int {
	n := 0
	for _, f := range strings.Fields(s) {
		a, b, ok := strings.Cut(f, "-")
		lo, err1 := strconv.Atoi(a)
		hi := lo
		var err2 error
		if ok {
			hi, err2 = strconv.Atoi(b)
		}
		if err1 == nil && err2 == nil && hi >= lo {
			n += hi - lo + 1
		}
	}
	return n
}

// countKeys sums COUNTKEYSINSLOT over slots, pipelined.
func countKeys(ctx context.Context, c *conn, slots []ring.Range) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*c.tool.timeout())
	defer cancel()
	pipe := c.rdb.Pipeline()
	for _, r := range slots {
		for s := int(r.Start); s <= int(r.End); s++ {
			pipe.Do(ctx, "CLUSTER", "COUNTKEYSINSLOT", s)
		}
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		return 0, &NodeError{c.addr, fmt.Errorf("CLUSTER COUNTKEYSINSLOT: %w", err)}
	}
	var n int64
	for _, cmd := range cmds {
		v, err := cmd.(*redis.Cmd).Int64()
		if err != nil {
			return 0, &NodeError{c.addr, fmt.Errorf("CLUSTER COUNTKEYSINSLOT: %w", err)}
		}
		n += v
	}
	return n, nil
}

// migrations reads CLUSTER GETSLOTMIGRATIONS: an array of maps (RESP3) or
// of flat field/value arrays (RESP2).
func (c *conn) migrations(ctx context.Context) ([]Migration, error) {
	v, err := c.do(ctx, "CLUSTER", "GETSLOTMIGRATIONS").Result()
	if err != nil {
		return nil, &NodeError{c.addr, fmt.Errorf("CLUSTER GETSLOTMIGRATIONS: %w", err)}
	}
	return parseMigrations(v)
}

func parseMigrations(v any) ([]Migration, error) {
	rows, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("CLUSTER GETSLOTMIGRATIONS: not an array: %T", v)
	}
	var out []Migration
	for i, row := range rows {
		fields := map[string]any{}
		switch r := row.(type) {
		case []any:
			if len(r)%2 != 0 {
				return nil, fmt.Errorf("CLUSTER GETSLOTMIGRATIONS: row %d has an odd number of elements", i)
			}
			for j := 0; j < len(r); j += 2 {
				fields[fmt.Sprint(r[j])] = r[j+1]
			}
		case map[any]any:
			for k, x := range r {
				fields[fmt.Sprint(k)] = x
			}
		default:
			return nil, fmt.Errorf("CLUSTER GETSLOTMIGRATIONS: row %d is a %T", i, row)
		}
		str := func(k string) string {
			if x, ok := fields[k]; ok && x != nil {
				return fmt.Sprint(x)
			}
			return ""
		}
		num := func(k string) int64 {
			n, _ := strconv.ParseInt(str(k), 10, 64)
			return n
		}
		out = append(out, Migration{
			Name: str("name"), Operation: str("operation"), Slots: str("slot_ranges"),
			Source: str("source_node"), Target: str("target_node"), State: str("state"),
			Keys: num("keys"), Bytes: num("bytes"), Message: str("message"),
		})
	}
	return out, nil
}
