package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hearsay/hearsay/node/admin"
	"github.com/hearsay/hearsay/ring"
)

// weightFlags collects repeated --weight id=w options.
type weightFlags map[string]float64

func (w weightFlags) String() string { return fmt.Sprint(map[string]float64(w)) }

func (w weightFlags) Set(s string) error {
	id, v, ok := strings.Cut(s, "=")
	if !ok || id == "" {
		return fmt.Errorf("%q is not id=weight", s)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return fmt.Errorf("%q: the weight must be a number of 0 or more", s)
	}
	w[id] = f
	return nil
}

// moveOpts are the options of reshard and rebalance.
type moveOpts struct {
	from, to  string
	slots     int
	pipeline  int
	weights   weightFlags
	threshold float64
	useEmpty  bool
}

// runReshard moves slots with the atomic path and prints the outcome.
func runReshard(ctx context.Context, p *printer, tool *admin.Tool, entry string, o moveOpts) int {
	mp := newMoveProgress(p)
	tool.Moved = mp.update
	res, err := tool.Reshard(ctx, entry, o.from, o.to, o.slots, o.pipeline)
	mp.end()
	if err != nil {
		p.errorf("%v", err)
		return 1
	}
	printMoved(p, res)
	return checkAndPrint(ctx, p, tool, entry)
}

// runRebalance evens the slots out over the masters and prints the plan
// and the moves.
func runRebalance(ctx context.Context, p *printer, tool *admin.Tool, entry string, o moveOpts) int {
	mp := newMoveProgress(p)
	tool.Moved = mp.update
	plan, moves, err := tool.Rebalance(ctx, entry, o.weights, o.threshold, o.useEmpty, o.pipeline)
	mp.end()
	if err == nil && !plan.Needed {
		p.okf("No rebalancing needed: every master is within %.2f%% of its share", o.threshold)
		return 0
	}
	for _, r := range moves {
		printMoved(p, r)
	}
	if err != nil {
		p.errorf("%v", err)
		return 1
	}
	return checkAndPrint(ctx, p, tool, entry)
}

// runFix closes open slots and assigns uncovered ones.
func runFix(ctx context.Context, p *printer, tool *admin.Tool, entry string) int {
	did, err := tool.Fix(ctx, entry)
	for _, l := range did {
		p.step(l)
	}
	if err != nil {
		p.errorf("%v", err)
		return 1
	}
	if len(did) == 0 {
		p.okf("Nothing to fix: no open slot, every slot covered")
	}
	return checkAndPrint(ctx, p, tool, entry)
}

func printMoved(p *printer, r *admin.ReshardResult) {
	p.okf("Moved %d slots (%d keys, %s) from %s to %s in %v: %.0f keys/s",
		ring.RangesLen(r.Slots), r.Keys, humanBytes(r.Bytes), r.From.String()[:8], r.To.String()[:8],
		r.Elapsed.Round(time.Millisecond), r.KeysPerSecond())
}

func humanBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// moveProgress draws a move: a bar over the keys (over the slots when
// they hold none) with slots done, keys/s and the time left on a
// terminal, and a plain line a second otherwise.
type moveProgress struct {
	p        *printer
	b        *bar
	lastLine time.Time
	last     admin.MoveProgress
	seen     bool
}

func newMoveProgress(p *printer) *moveProgress { return &moveProgress{p: p} }

func (m *moveProgress) update(mp admin.MoveProgress) {
	m.last, m.seen = mp, true
	done, total := int(mp.KeysDone), int(mp.Keys)
	if total <= 0 {
		done, total = mp.SlotsDone, mp.Slots
	}
	done = min(done, total) // writes during the move can add keys
	rate := 0.0
	if s := mp.Elapsed.Seconds(); s > 0 {
		rate = float64(mp.KeysDone) / s
	}
	desc := fmt.Sprintf("slots %d/%d, %.0f keys/s", mp.SlotsDone, mp.Slots, rate)
	if m.p.mode == modePlain {
		if time.Since(m.lastLine) < time.Second {
			return
		}
		m.lastLine = time.Now()
		eta := "unknown"
		if rate > 0 && total > done {
			eta = (time.Duration(float64(total-done) / rate * float64(time.Second))).Round(time.Second).String()
		} else if total == done {
			eta = "0s"
		}
		fmt.Fprintf(m.p.w, "    moved %d/%d keys, %s, ETA %s\n", mp.KeysDone, mp.Keys, desc, eta)
		return
	}
	if m.b == nil {
		m.b = m.p.startMoveBar(total)
	}
	m.b.pb.Describe("    " + desc)
	m.b.set(done, total)
}

func (m *moveProgress) end() {
	if m.b != nil {
		m.p.endBar()
		m.b = nil
	}
}
