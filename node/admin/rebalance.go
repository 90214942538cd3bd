package admin

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// Share is one master's part in a rebalance.
type Share struct {
	ID     wire.NodeID
	Addr   string
	Weight float64
	Have   int // slots it holds
	Want   int // slots it should hold
}

// Move is one step of a rebalance: Slots slots from From to To.
type Move struct {
	From, To wire.NodeID
	Slots    int
}

// RebalancePlan is what Rebalance will do, or did.
type RebalancePlan struct {
	Shares []Share
	Moves  []Move
	// Needed is false when every master is within the threshold; Moves is
	// then empty.
	Needed bool
}

// PlanRebalance works out how to spread the 16384 slots over the masters
// in proportion to their weights (1 when a master has none in weights).
// A master with weight 0 gives all its slots away. Masters without slots
// take part only with useEmpty (as redis-cli's --cluster-use-empty-masters)
// or when weights names them. Nothing moves unless some master is more
// than threshold percent away from its share, which is redis-cli's rule.
// The wanted counts add up to what the masters hold together; the largest
// remainders round up.
func PlanRebalance(shares []Share, threshold float64, useEmpty bool, weighted map[wire.NodeID]bool) (*RebalancePlan, error) {
	var in []Share
	held := 0
	wsum := 0.0
	for _, s := range shares {
		if s.Weight < 0 || math.IsNaN(s.Weight) || math.IsInf(s.Weight, 0) {
			return nil, fmt.Errorf("weight of %s must be a number of 0 or more", s.ID.String()[:8])
		}
		if s.Have == 0 && !useEmpty && !weighted[s.ID] {
			continue
		}
		in = append(in, s)
		held += s.Have
		wsum += s.Weight
	}
	if len(in) < 2 {
		return &RebalancePlan{Shares: in}, nil
	}
	if wsum == 0 {
		return nil, fmt.Errorf("every master has weight 0: the slots would have nowhere to go")
	}
	type rem struct {
		i    int
		frac float64
	}
	var rems []rem
	given := 0
	for i := range in {
		exact := float64(held) * in[i].Weight / wsum
		in[i].Want = int(math.Floor(exact))
		given += in[i].Want
		rems = append(rems, rem{i, exact - math.Floor(exact)})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		return cmp.Or(cmp.Compare(b.frac, a.frac), bytes.Compare(in[a.i].ID[:], in[b.i].ID[:]))
	})
	for k := 0; given < held; k++ {
		in[rems[k%len(rems)].i].Want++
		given++
	}
	plan := &RebalancePlan{Shares: in}
	for _, s := range in {
		if s.Weight == 0 && s.Have > 0 {
			plan.Needed = true
			continue
		}
		if s.Want == 0 {
			continue
		}
		if off := math.Abs(float64(s.Have-s.Want)) / float64(s.Want) * 100; off > threshold {
			plan.Needed = true
		}
	}
	if !plan.Needed {
		return plan, nil
	}
	// Pair the most overfull master with the most underfull one until
	// every master holds its share.
	bal := make([]int, len(in))
	for i, s := range in {
		bal[i] = s.Have - s.Want
	}
	for {
		hi, lo := 0, 0
		for i := range bal {
			if bal[i] > bal[hi] {
				hi = i
			}
			if bal[i] < bal[lo] {
				lo = i
			}
		}
		if bal[hi] <= 0 || bal[lo] >= 0 {
			break
		}
		n := min(bal[hi], -bal[lo])
		plan.Moves = append(plan.Moves, Move{From: in[hi].ID, To: in[lo].ID, Slots: n})
		bal[hi] -= n
		bal[lo] += n
	}
	return plan, nil
}

// Rebalance plans with PlanRebalance over the masters of the cluster and
// carries out the moves one after another with the atomic path (as
// Reshard, pipeline migrations per move). weights maps node IDs, ID
// prefixes or host:port to weights. It returns the plan and the result of
// every move made; on an error the moves made so far stand.
func (t *Tool) Rebalance(ctx context.Context, entry string, weights map[string]float64, threshold float64, useEmpty bool, pipeline int) (*RebalancePlan, []*ReshardResult, error) {
	cs := t.newConnSet()
	defer cs.close()
	cl, err := t.load(ctx, cs, entry)
	if err != nil {
		return nil, nil, err
	}
	weighted := map[wire.NodeID]bool{}
	byID := map[wire.NodeID]float64{}
	for ref, w := range weights {
		n, err := findMaster(cl, ref, "--weight")
		if err != nil {
			return nil, nil, err
		}
		weighted[n.ID] = true
		byID[n.ID] = w
	}
	var shares []Share
	for _, sh := range cl.Shards() {
		m := sh.Master
		if m.Err != nil {
			return nil, nil, fmt.Errorf("cannot rebalance while a master cannot be read: %w", m.Err)
		}
		w, ok := byID[m.ID]
		if !ok {
			w = 1
		}
		have := ring.RangesLen(m.Slots)
		shares = append(shares, Share{ID: m.ID, Addr: m.Addr(), Weight: w, Have: have})
	}
	plan, err := PlanRebalance(shares, threshold, useEmpty, weighted)
	if err != nil {
		return nil, nil, err
	}
	if !plan.Needed {
		return plan, nil, nil
	}
	var done []*ReshardResult
	for _, mv := range plan.Moves {
		// Each move reads the cluster again: the previous one changed it.
		cl, err := t.load(ctx, cs, entry)
		if err != nil {
			return plan, done, err
		}
		src, dst, err := pickPair(cl, mv.From.String(), mv.To.String())
		if err != nil {
			return plan, done, err
		}
		var have ring.SlotSet
		for _, r := range src.Slots {
			_ = have.AddRange(r)
		}
		if have.Count() < mv.Slots {
			return plan, done, fmt.Errorf("%s holds %d slots now, fewer than the %d the plan moves from it", src.ShortID(), have.Count(), mv.Slots)
		}
		res, err := t.move(ctx, cs, cl, src, dst, firstSlots(&have, mv.Slots), pipeline)
		if res != nil {
			done = append(done, res)
		}
		if err != nil {
			return plan, done, err
		}
	}
	return plan, done, nil
}
