package migrate

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestRandomized interleaves the two sides through a channel that loses,
// reorders and sometimes holds back control messages, with crashes,
// restarts, partitions, cancels, lagging gossip, views cut off from the bus,
// the source's replica taking over when the source stays down (every other
// seed), and a client writing whenever a node says the slot is writable. After every step: never two owners of a slot at one
// configEpoch (world.claim), never two nodes accepting writes to a slot,
// no write accepted by the source after the claim (world.write). After
// healing: one owner per slot in both views, every acknowledged write on
// it, nothing left on the other node, no pause and no record left.
func TestRandomized(t *testing.T) {
	seeds := 400
	if testing.Short() {
		seeds = 50
	}
	claims, aborts, promotions := 0, 0, 0
	hit := map[State]int{}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := runRandom(t, uint64(seed))
			for st, n := range w.faultAt {
				hit[st] += n
			}
			if w.promoted {
				promotions++
			}
			if w.claimed {
				claims++
			} else {
				aborts++
			}
		})
	}
	// The mix must exercise both outcomes, or it tests little.
	t.Logf("%d runs ended with the claim, %d without, %d with the source's replica promoted; faults by state %v", claims, aborts, promotions, hit)
	if promotions < seeds/20 {
		t.Errorf("the source's replica took over in only %d runs", promotions)
	}
	for _, st := range append(append([]State(nil), exportStates...), importStates...) {
		if hit[st] == 0 {
			t.Errorf("no fault hit a migration in state %v", st)
		}
	}
	if claims < seeds/10 || aborts < seeds/10 {
		t.Fatalf("%d runs ended with the claim and %d without: the fault mix is lopsided", claims, aborts)
	}
}

func runRandom(t *testing.T, seed uint64) *world {
	r := rand.New(rand.NewPCG(seed, 0x6d696772617465))
	w := newWorld(t, r)
	w.withReplica = seed%2 == 1
	w.loss = 0.05 + 0.15*r.Float64()
	w.snapSteps = r.IntN(20)
	faults := r.Float64() // how hostile this run is
	for i := 0; i < 10; i++ {
		w.write(uint16(i%3), i)
	}
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	for step := 0; step < 3000; step++ {
		w.now += time.Duration(r.IntN(20)) * time.Millisecond
		w.steps++
		g := len(w.gossip)
		for n := r.IntN(4); n > 0 && len(w.net) > 0; n-- {
			w.deliver(r.IntN(len(w.net)))
		}
		w.applyStream(r.IntN(4))
		w.snapshotDone()
		if r.IntN(2) == 0 {
			s := w.slots[r.IntN(len(w.slots))]
			w.write(s.Start+uint16(r.IntN(int(s.End-s.Start)+1)), r.IntN(5))
		}
		if g > 0 && r.IntN(3) == 0 {
			w.spreadGossip(r.IntN(g + 1))
		}
		if r.IntN(200) == 0 {
			w.h[r.IntN(3)].deaf = w.now + time.Duration(r.IntN(2000))*time.Millisecond
		}
		if r.IntN(3) > 0 {
			w.tick()
		}
		w.promoteReplica()
		p := r.Float64()
		if p < 0.045*faults {
			w.faultAt[w.exportState()]++
			w.faultAt[w.importState()]++
		}
		switch {
		case p < 0.02*faults:
			w.crash(r.IntN(2))
		case p < 0.04*faults:
			w.cutLinks()
		case p < 0.045*faults:
			if s := w.h[src]; s.alive {
				if out, err := s.tab.CancelAll(w.now); err == nil {
					w.logf("cancel")
					w.do(src, out)
				}
			}
		case p < 0.1:
			for i, h := range w.h {
				if !h.alive && w.now-h.downAt > time.Duration(r.IntN(3000))*time.Millisecond {
					w.restart(i)
				}
			}
		case p < 0.102:
			if s := w.h[src]; s.alive && !w.running() {
				_ = w.start() // refused once the slots moved
			}
		}
		w.check()
	}
	w.settle()
	return w
}
