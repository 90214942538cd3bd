package migrate

import (
	"testing"
	"time"
)

// TestHappyPath runs one migration without faults and checks the order of
// the states on both sides and the final state.
func TestHappyPath(t *testing.T) {
	w := newWorld(t, nil)
	for i := 0; i < 20; i++ {
		w.write(uint16(i%3), i)
	}
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	var exp, imp []State
	for i := 0; i < 2000 && (w.running() || len(w.net) > 0); i++ {
		if s := w.exportState(); s != 0 && (len(exp) == 0 || exp[len(exp)-1] != s) {
			exp = append(exp, s)
		}
		if s := w.importState(); s != 0 && (len(imp) == 0 || imp[len(imp)-1] != s) {
			imp = append(imp, s)
		}
		w.step()
	}
	wantE := []State{Connecting, Snapshotting, WaitingToPause, Paused, Granted}
	wantI := []State{ReceivingSnapshot, WaitingForPaused, HandoffRequested}
	if !equalStates(exp, wantE) || !equalStates(imp, wantI) {
		t.Fatalf("export states %v, want %v; import states %v, want %v", exp, wantE, imp, wantI)
	}
	if !w.claimed {
		t.Fatal("the target did not claim")
	}
	w.settle()
	st := w.h[src].tab.Status()
	if len(st) != 1 || st[0].State != Success || st[0].Operation != OpExport || st[0].Keys == 0 {
		t.Fatalf("source status %+v", st)
	}
	st = w.h[dst].tab.Status()
	if len(st) != 1 || st[0].State != Success || st[0].Operation != OpImport || st[0].Source != srcID || st[0].Target != dstID {
		t.Fatalf("target status %+v", st)
	}
}

func equalStates(a, b []State) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// runTo runs the lossless schedule until cond holds.
func runTo(t *testing.T, w *world, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 5000 {
			w.fail("condition never held")
		}
		w.step()
	}
}

var exportStates = []State{Connecting, Snapshotting, WaitingToPause, Paused, Granted}
var importStates = []State{ReceivingSnapshot, WaitingForPaused, HandoffRequested}

// TestFaultAtEachState stops one side at every state the other passes
// through, in several ways, and checks that the cluster settles safely:
// a single owner holding every acknowledged write, nothing left behind.
func TestFaultAtEachState(t *testing.T) {
	faults := []struct {
		name string
		do   func(w *world)
	}{
		{"target crashes and restarts", func(w *world) { w.crash(dst) }},
		{"source crashes and restarts", func(w *world) { w.crash(src) }},
		{"both crash", func(w *world) { w.crash(src); w.crash(dst) }},
		{"partition", func(w *world) { w.cutLinks() }},
		{"cancel", func(w *world) {
			out, err := w.h[src].tab.CancelAll(w.now)
			if err != nil {
				w.fail("cancel: %v", err)
			}
			w.do(src, out)
		}},
		{"target down for a long time", func(w *world) {
			w.crash(dst)
			for i := 0; i < 1000; i++ {
				w.step()
			}
		}},
		{"source down for a long time", func(w *world) {
			w.crash(src)
			for i := 0; i < 1000; i++ {
				w.step()
			}
		}},
	}
	type point struct {
		side  string
		state State
	}
	var points []point
	for _, s := range exportStates {
		points = append(points, point{"export", s})
	}
	for _, s := range importStates {
		points = append(points, point{"import", s})
	}
	// After the target claimed, before the source saw the claim.
	points = append(points, point{"import", Success})
	for _, f := range faults {
		for _, p := range points {
			t.Run(f.name+" at "+p.side+" "+p.state.String(), func(t *testing.T) {
				w := newWorld(t, nil)
				for i := 0; i < 10; i++ {
					w.write(uint16(i%3), i)
				}
				if err := w.start(); err != nil {
					t.Fatal(err)
				}
				runTo(t, w, func() bool {
					switch {
					case p.side == "export":
						return w.exportState() == p.state
					case p.state == Success:
						return w.claimed && w.exportState() == Granted
					}
					return w.importState() == p.state
				})
				f.do(w)
				w.settle()
			})
		}
	}
}

// TestGrantedSourceWaitsForTarget: a source that granted and then lost the
// target keeps the slots' writes paused, however long, until the target
// answers; when the target comes back without a claim, the source takes
// the slots back.
func TestGrantedSourceWaitsForTarget(t *testing.T) {
	w := newWorld(t, nil)
	w.write(0, 0)
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	runTo(t, w, func() bool { return w.exportState() == Paused })
	// Let the grant leave but lose it, and crash the target.
	runTo(t, w, func() bool { return w.exportState() == Granted })
	w.net = nil
	w.crash(dst)
	for i := 0; i < 2000; i++ {
		w.step()
		if w.writable(src, 0) {
			w.fail("a granted source resumed writes with the target down")
		}
	}
	if w.exportState() != Granted {
		w.fail("export state %v, want it still granted", w.exportState())
	}
	w.settle()
	if w.claimed {
		t.Fatal("claimed without the grant")
	}
	st := w.h[src].tab.Status()
	if st[0].State != Failed || st[0].Message != ReasonNotClaimed {
		t.Fatalf("source status %+v", st[0])
	}
}

// TestRestartRules checks the restart rule of each record directly.
func TestRestartRules(t *testing.T) {
	cfg := Config{NodeTimeout: time.Second}
	cl := threeMasters(srcID)
	tb := NewTable(cfg)
	h := HardState{Name: "x", Op: OpExport, Peer: dstID, Slots: rng(0, 9), Epoch: 1}
	out := tb.Restore(0, cl, []HardState{h})
	if has(out, PauseWrites) || !has(out, Persist) || len(tb.Exports()) != 0 {
		t.Fatalf("ungranted export: %v, %d running", kinds(out), len(tb.Exports()))
	}
	h.Granted = true
	tb = NewTable(cfg)
	out = tb.Restore(0, cl, []HardState{h})
	if k := kinds(out); len(k) != 1 || k[0] != PauseWrites {
		t.Fatalf("granted export restored with %v, want only PauseWrites", k)
	}
	// The claim shows: delete, resume, forget.
	cl.slots[3] = binding{dstID, 9}
	if has(tb.Tick(time.Millisecond, cl), DeleteSlots) {
		t.Fatal("deleted with one slot claimed of ten")
	}
	for s := uint16(0); s < 10; s++ {
		cl.slots[s] = binding{dstID, 9}
	}
	if k := kinds(tb.Tick(2*time.Millisecond, cl)); len(k) != 3 || k[0] != DeleteSlots || k[1] != ResumeWrites || k[2] != Persist {
		t.Fatalf("claim seen: %v", k)
	}

	tcl := threeMasters(dstID)
	imp := HardState{Name: "y", Op: OpImport, Peer: srcID, Slots: rng(0, 9), Epoch: 1}
	tb = NewTable(cfg)
	if k := kinds(tb.Restore(0, tcl, []HardState{imp})); len(k) != 2 || k[0] != DropImported || k[1] != Persist {
		t.Fatalf("unclaimed import restored with %v", k)
	}
	for s := uint16(0); s < 10; s++ {
		tcl.slots[s] = binding{dstID, 9}
	}
	tb = NewTable(cfg)
	if k := kinds(tb.Restore(0, tcl, []HardState{imp})); len(k) != 1 || k[0] != Persist {
		t.Fatalf("claimed import restored with %v", k)
	}
	// An abort for it is answered CLAIMED, and for an unknown job
	// owned elsewhere ABORTED.
	if k := kinds(tb.AbortRequested(0, tcl, "y", srcID, rng(0, 9), 1)); len(k) != 1 || k[0] != SendClaimed {
		t.Fatalf("abort of a claimed import: %v", k)
	}
	if k := kinds(tb.AbortRequested(0, tcl, "z", srcID, rng(10, 19), 1)); len(k) != 1 || k[0] != SendAborted {
		t.Fatalf("abort of an unknown import: %v", k)
	}
}

// TestPauseTimeout: a target that never requests the handoff cannot keep
// the source's writes paused longer than PauseTimeout.
func TestPauseTimeout(t *testing.T) {
	w := newWorld(t, nil)
	w.write(0, 0)
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	runTo(t, w, func() bool { return w.exportState() == Paused })
	at := w.now
	e := w.h[src].tab.Exports()[0]
	w.h[dst].alive = false // silent, not crashed: no message back
	for w.exportState() == Paused {
		w.now += time.Millisecond
		w.net = nil
		w.do(src, w.h[src].tab.Tick(w.now, w.h[src].view))
	}
	if e.State() != Failed || e.Status().Message != ReasonPauseTimeout || w.now-at > w.cfg.PauseTimeout+2*time.Millisecond {
		t.Fatalf("state %v (%q) after %v", e.State(), e.Status().Message, w.now-at)
	}
	if !w.writable(src, 0) {
		t.Fatal("writes not resumed")
	}
}

// TestLateGrantAfterFailover: the source grants and dies; the grant
// reaches the target only after the source's replica won the election,
// and the target has not heard of that yet (cut off from the bus). The
// claim window makes the target ignore the stale grant, so the replica
// alone owns the slots, with every acknowledged write.
func TestLateGrantAfterFailover(t *testing.T) {
	w := newWorld(t, nil)
	w.withReplica = true
	for i := 0; i < 10; i++ {
		w.write(uint16(i%3), i)
	}
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	runTo(t, w, func() bool { return w.exportState() == Granted })
	grant := -1
	for i, m := range w.net {
		if m.kind == mGrant {
			grant = i
		}
	}
	if grant < 0 {
		t.Fatal("no grant in flight")
	}
	late := w.net[grant]
	late.lk = nil // it reaches the target whatever becomes of the connection
	w.crash(src)
	w.h[dst].deaf = w.now + time.Hour
	for w.now += 10 * time.Millisecond; !w.promoted; w.now += 10 * time.Millisecond {
		w.promoteReplica()
	}
	w.net = append(w.net, late)
	w.deliver(len(w.net) - 1)
	if w.claimed {
		w.fail("the target claimed on a grant %v old, after the source's replica took over", w.now-late.stamp)
	}
	for i := 0; i < 50; i++ {
		w.write(uint16(i%3), i)
		w.check()
	}
	w.settle()
}
