package ring

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// nid makes a readable test node ID.
func nid(b byte) NodeID { return NodeID{0: b, 19: b} }

var (
	nodeA = nid('a')
	nodeB = nid('b')
	nodeC = nid('c')
)

func set(t testing.TB, rs ...Range) *SlotSet {
	t.Helper()
	s, err := FromRanges(rs)
	if err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestNodeID(t *testing.T) {
	if !(NodeID{}).IsZero() || nodeA.IsZero() {
		t.Error("IsZero wrong")
	}
	if got := nodeA.String(); got != "6100000000000000000000000000000000000061" {
		t.Errorf("String = %q", got)
	}
}

func TestZeroTable(t *testing.T) {
	var tb Table
	if id, e := tb.Owner(0); !id.IsZero() || e != 0 {
		t.Error("zero table has an owner")
	}
	if _, ok := tb.Migrating(0); ok {
		t.Error("zero table has a mark")
	}
	if tb.Assigned() != 0 || len(tb.Owners()) != 0 || tb.Version() != 0 {
		t.Error("zero table not empty")
	}
}

// TestClaimRule is the rebinding rule table.
func TestClaimRule(t *testing.T) {
	tests := []struct {
		name        string
		owner       NodeID // current owner of slot 100; zero = unassigned
		ownerEpoch  uint64
		claimer     NodeID
		claimEpoch  uint64
		wantOwner   NodeID
		wantEpoch   uint64
		wantRebound bool
		wantLoser   bool
	}{
		{"unassigned", NodeID{}, 0, nodeB, 3, nodeB, 3, true, false},
		{"unassigned epoch 0", NodeID{}, 0, nodeB, 0, nodeB, 0, true, false},
		{"higher epoch", nodeA, 5, nodeB, 6, nodeB, 6, true, true},
		{"equal epoch", nodeA, 5, nodeB, 5, nodeA, 5, false, false},
		{"lower epoch", nodeA, 5, nodeB, 4, nodeA, 5, false, false},
		{"self higher epoch", nodeA, 5, nodeA, 7, nodeA, 7, false, false},
		{"self equal epoch", nodeA, 5, nodeA, 5, nodeA, 5, false, false},
		{"self lower epoch", nodeA, 5, nodeA, 2, nodeA, 5, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tb Table
			if !tt.owner.IsZero() {
				if err := tb.Assign(100, tt.owner, tt.ownerEpoch); err != nil {
					t.Fatal(err)
				}
			}
			rebound, losers := tb.Claim(tt.claimer, tt.claimEpoch, set(t, Range{100, 100}))
			id, e := tb.Owner(100)
			if id != tt.wantOwner || e != tt.wantEpoch {
				t.Errorf("owner = %v@%d, want %v@%d", id, e, tt.wantOwner, tt.wantEpoch)
			}
			if got := len(rebound) > 0; got != tt.wantRebound {
				t.Errorf("rebound = %v, want rebound %v", rebound, tt.wantRebound)
			}
			if tt.wantRebound && !slices.Equal(rebound, []Range{{100, 100}}) {
				t.Errorf("rebound = %v", rebound)
			}
			if got := len(losers) > 0; got != tt.wantLoser {
				t.Errorf("losers = %v, want loser %v", losers, tt.wantLoser)
			}
			if tt.wantLoser && !slices.Equal(losers, []NodeID{tt.owner}) {
				t.Errorf("losers = %v", losers)
			}
			checkInvariants(t, &tb)
		})
	}
}

func TestClaimMixed(t *testing.T) {
	var tb Table
	// A owns 0-99 at epoch 1, B owns 100-199 at epoch 5, 200-299 unassigned,
	// C owns 300-399 at epoch 3.
	for s := uint16(0); s < 400; s++ {
		switch {
		case s < 100:
			_ = tb.Assign(s, nodeA, 1)
		case s < 200:
			_ = tb.Assign(s, nodeB, 5)
		case s >= 300:
			_ = tb.Assign(s, nodeC, 3)
		}
	}
	v := tb.Version()
	d := nid('d')
	rebound, losers := tb.Claim(d, 3, set(t, Range{50, 350}))
	// 50-99 (A@1 < 3) and 200-299 (unassigned) move; B@5 and C@3 hold.
	if want := []Range{{50, 99}, {200, 299}}; !slices.Equal(rebound, want) {
		t.Errorf("rebound = %v, want %v", rebound, want)
	}
	if want := []NodeID{nodeA}; !slices.Equal(losers, want) {
		t.Errorf("losers = %v, want %v", losers, want)
	}
	if tb.Version() == v {
		t.Error("version not bumped")
	}
	if got := tb.Assigned(); got != 400 {
		t.Errorf("Assigned = %d, want 400", got)
	}
	// A higher claim takes everything; losers are sorted and unique.
	rebound, losers = tb.Claim(nid('e'), 9, set(t, Range{0, 16383}))
	if want := []Range{{0, 16383}}; !slices.Equal(rebound, want) {
		t.Errorf("rebound = %v", rebound)
	}
	if want := []NodeID{nodeA, nodeB, nodeC, d}; !slices.Equal(losers, want) {
		t.Errorf("losers = %v, want %v", losers, want)
	}
	if got := tb.Owners(); !slices.Equal(got, []NodeID{nid('e')}) {
		t.Errorf("Owners = %v", got)
	}
	checkInvariants(t, &tb)

	v = tb.Version()
	if r, l := tb.Claim(nodeA, 9, set(t, Range{0, 16383})); r != nil || l != nil {
		t.Errorf("equal-epoch claim reported %v %v", r, l)
	}
	if r, l := tb.Claim(NodeID{}, 99, set(t, Range{0, 16383})); r != nil || l != nil {
		t.Errorf("zero claimer reported %v %v", r, l)
	}
	if r, l := tb.Claim(nodeA, 99, nil); r != nil || l != nil {
		t.Errorf("nil set reported %v %v", r, l)
	}
	if tb.Version() != v {
		t.Error("no-op claims bumped the version")
	}
}

func TestLoserWithSeveralEpochs(t *testing.T) {
	var tb Table
	_ = tb.Assign(1, nodeA, 1)
	_ = tb.Assign(2, nodeA, 2)
	_, losers := tb.Claim(nodeB, 5, set(t, Range{1, 2}))
	if !slices.Equal(losers, []NodeID{nodeA}) {
		t.Errorf("losers = %v, want one A", losers)
	}
}

func TestAssignUnassign(t *testing.T) {
	var tb Table
	tests := []struct {
		name    string
		do      func() error
		wantErr error
	}{
		{"assign", func() error { return tb.Assign(5, nodeA, 1) }, nil},
		{"assign bad slot", func() error { return tb.Assign(Slots, nodeA, 1) }, ErrSlotOutOfRange},
		{"assign zero node", func() error { return tb.Assign(5, NodeID{}, 1) }, ErrZeroNode},
		{"unassign bad slot", func() error { return tb.Unassign(Slots) }, ErrSlotOutOfRange},
		{"migrating bad slot", func() error { return tb.SetMigrating(Slots, nodeB) }, ErrSlotOutOfRange},
		{"migrating zero", func() error { return tb.SetMigrating(5, NodeID{}) }, ErrZeroNode},
		{"importing bad slot", func() error { return tb.SetImporting(Slots, nodeB) }, ErrSlotOutOfRange},
		{"importing zero", func() error { return tb.SetImporting(5, NodeID{}) }, ErrZeroNode},
		{"clear bad slot", func() error { return tb.ClearMarks(Slots) }, ErrSlotOutOfRange},
	}
	for _, tt := range tests {
		if err := tt.do(); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.wantErr)
		}
	}
	if id, e := tb.Owner(5); id != nodeA || e != 1 {
		t.Fatalf("Owner(5) = %v@%d", id, e)
	}
	if id, _ := tb.Owner(Slots); !id.IsZero() {
		t.Error("Owner(Slots) not zero")
	}
	v := tb.Version()
	_ = tb.Assign(5, nodeA, 1) // same binding: no change
	if tb.Version() != v {
		t.Error("no-op Assign bumped version")
	}
	_ = tb.Assign(5, nodeB, 0) // unconditional, even to a lower epoch
	if id, e := tb.Owner(5); id != nodeB || e != 0 {
		t.Errorf("Owner(5) = %v@%d after reassign", id, e)
	}
	_ = tb.Unassign(5)
	_ = tb.Unassign(5)
	if id, _ := tb.Owner(5); !id.IsZero() || tb.Assigned() != 0 || len(tb.Owners()) != 0 {
		t.Error("Unassign left an owner")
	}
	checkInvariants(t, &tb)
}

func TestSetEpoch(t *testing.T) {
	var tb Table
	_ = tb.Assign(1, nodeA, 1)
	_ = tb.Assign(2, nodeA, 3) // A now holds two epochs
	_ = tb.Assign(3, nodeB, 1)
	tests := []struct {
		epoch uint64
	}{{5}, {5}, {2}, {0}}
	for _, tt := range tests {
		tb.SetEpoch(nodeA, tt.epoch)
		for _, s := range []uint16{1, 2} {
			if id, e := tb.Owner(s); id != nodeA || e != tt.epoch {
				t.Errorf("SetEpoch(%d): Owner(%d) = %v@%d", tt.epoch, s, id, e)
			}
		}
		if id, e := tb.Owner(3); id != nodeB || e != 1 {
			t.Errorf("SetEpoch touched B: %v@%d", id, e)
		}
		checkInvariants(t, &tb)
	}
	// Merge into an entry that already exists.
	_ = tb.Assign(4, nodeA, 7)
	tb.SetEpoch(nodeA, 7)
	for _, s := range []uint16{1, 2, 4} {
		if _, e := tb.Owner(s); e != 7 {
			t.Errorf("merge: Owner(%d) epoch %d", s, e)
		}
	}
	checkInvariants(t, &tb)
	v := tb.Version()
	tb.SetEpoch(nodeA, 7)
	tb.SetEpoch(nodeC, 9) // owns nothing
	tb.SetEpoch(NodeID{}, 9)
	if tb.Version() != v {
		t.Error("no-op SetEpoch bumped version")
	}
	// The stored epoch now guards the slots: a claim at 7 fails, 8 wins.
	if r, _ := tb.Claim(nodeB, 7, set(t, Range{1, 1})); r != nil {
		t.Error("claim at equal epoch rebound")
	}
	if r, _ := tb.Claim(nodeB, 8, set(t, Range{1, 1})); r == nil {
		t.Error("claim at higher epoch not rebound")
	}
}

func TestSlotsOfAndOwners(t *testing.T) {
	var tb Table
	_, _ = tb.Claim(nodeB, 2, set(t, Range{0, 5460}))
	_, _ = tb.Claim(nodeA, 1, set(t, Range{5461, 10922}))
	_ = tb.Assign(16383, nodeB, 9)
	got := tb.SlotsOf(nodeB)
	if want := []Range{{0, 5460}, {16383, 16383}}; !slices.Equal(got.Ranges(nil), want) {
		t.Errorf("SlotsOf(B) = %v, want %v", got.Ranges(nil), want)
	}
	if s := tb.SlotsOf(nodeC); !s.IsEmpty() {
		t.Error("SlotsOf(C) not empty")
	}
	if s := tb.SlotsOf(NodeID{}); !s.IsEmpty() {
		t.Error("SlotsOf(zero) not empty")
	}
	if got := tb.Owners(); !slices.Equal(got, []NodeID{nodeA, nodeB}) {
		t.Errorf("Owners = %v", got)
	}
	if got := tb.Assigned(); got != 10923+1 {
		t.Errorf("Assigned = %d", got)
	}
}

func TestMarks(t *testing.T) {
	var tb Table
	_ = tb.Assign(7, nodeA, 1)
	steps := []struct {
		name    string
		do      func()
		wantMig NodeID
		wantImp NodeID
	}{
		{"migrate", func() { _ = tb.SetMigrating(7, nodeB) }, nodeB, NodeID{}},
		{"retarget", func() { _ = tb.SetMigrating(7, nodeC) }, nodeC, NodeID{}},
		{"import too", func() { _ = tb.SetImporting(7, nodeB) }, nodeC, nodeB},
		{"ownership change keeps marks", func() { _, _ = tb.Claim(nodeB, 5, set(t, Range{7, 7})) }, nodeC, nodeB},
		{"clear", func() { _ = tb.ClearMarks(7) }, NodeID{}, NodeID{}},
		{"clear again", func() { _ = tb.ClearMarks(7) }, NodeID{}, NodeID{}},
	}
	for _, st := range steps {
		st.do()
		mig, ok := tb.Migrating(7)
		if mig != st.wantMig || ok == st.wantMig.IsZero() {
			t.Errorf("%s: Migrating = %v %v, want %v", st.name, mig, ok, st.wantMig)
		}
		imp, ok := tb.Importing(7)
		if imp != st.wantImp || ok == st.wantImp.IsZero() {
			t.Errorf("%s: Importing = %v %v, want %v", st.name, imp, ok, st.wantImp)
		}
		checkInvariants(t, &tb)
	}
	if _, ok := tb.Migrating(Slots); ok {
		t.Error("Migrating(Slots) marked")
	}
	if _, ok := tb.Importing(Slots); ok {
		t.Error("Importing(Slots) marked")
	}
}

func TestOwnerAllocs(t *testing.T) {
	var tb Table
	_, _ = tb.Claim(nodeA, 1, set(t, Range{0, 16383}))
	if n := testing.AllocsPerRun(100, func() { tb.Owner(1234) }); n != 0 {
		t.Errorf("Table.Owner allocs = %v", n)
	}
}

// checkInvariants verifies the interned bookkeeping against a recount.
func checkInvariants(t *testing.T, tb *Table) {
	t.Helper()
	refs := make([]int32, len(tb.owners.vals))
	assigned := 0
	for _, i := range tb.slot {
		if i != 0 {
			refs[i]++
			assigned++
		}
	}
	if assigned != tb.assigned {
		t.Fatalf("assigned = %d, recount %d", tb.assigned, assigned)
	}
	for i := 1; i < len(refs); i++ {
		if refs[i] != tb.owners.refs[i] {
			t.Fatalf("owner %d refs = %d, recount %d", i, tb.owners.refs[i], refs[i])
		}
		if refs[i] > 0 && tb.owners.index[tb.owners.vals[i]] != uint16(i) {
			t.Fatalf("owner %d missing from index", i)
		}
	}
	if len(tb.owners.index)+len(tb.owners.free) != max(len(tb.owners.vals)-1, 0) {
		t.Fatalf("owner index %d + free %d != entries %d", len(tb.owners.index), len(tb.owners.free), len(tb.owners.vals)-1)
	}
	prefs := make([]int32, len(tb.peers.vals))
	marked := 0
	for s := range Slots {
		m, i := tb.marks.migrating[s], tb.marks.importing[s]
		if m != 0 {
			prefs[m]++
		}
		if i != 0 {
			prefs[i]++
		}
		if m != 0 || i != 0 {
			marked++
		}
		if (m != 0 || i != 0) != tb.marked.Has(uint16(s)) {
			t.Fatalf("slot %d: marks %d/%d but the marked set says %v", s, m, i, tb.marked.Has(uint16(s)))
		}
	}
	if marked != tb.marked.Count() {
		t.Fatalf("marked = %d, recount %d", tb.marked.Count(), marked)
	}
	for i := 1; i < len(prefs); i++ {
		if prefs[i] != tb.peers.refs[i] {
			t.Fatalf("peer %d refs = %d, recount %d", i, tb.peers.refs[i], prefs[i])
		}
	}
}

// TestTableModel drives a Table and a naive per-slot model with the same
// random operations and compares them after every step.
func TestTableModel(t *testing.T) {
	type slotState struct {
		owner    NodeID
		epoch    uint64
		mig, imp NodeID
	}
	rng := rand.New(rand.NewPCG(1, 2))
	nodes := []NodeID{nid(1), nid(2), nid(3), nid(4), nid(5)}
	const span = 300 // a small slot window so operations collide
	var tb Table
	model := make([]slotState, Slots)
	for step := range 3000 {
		n := nodes[rng.IntN(len(nodes))]
		slot := uint16(rng.IntN(span))
		epoch := uint64(rng.IntN(8))
		before := tb.Version()
		changed := false
		switch op := rng.IntN(7); op {
		case 0:
			_ = tb.Assign(slot, n, epoch)
			changed = model[slot].owner != n || model[slot].epoch != epoch
			model[slot].owner, model[slot].epoch = n, epoch
		case 1:
			_ = tb.Unassign(slot)
			changed = !model[slot].owner.IsZero()
			model[slot].owner, model[slot].epoch = NodeID{}, 0
		case 2:
			lo := uint16(rng.IntN(span))
			r := Range{lo, lo + uint16(rng.IntN(40))}
			rebound, _ := tb.Claim(n, epoch, set(t, r))
			var want SlotSet
			for s := r.Start; s <= r.End; s++ {
				m := &model[s]
				switch {
				case m.owner.IsZero() || m.owner != n && epoch > m.epoch:
					m.owner, m.epoch = n, epoch
					want.Add(s)
					changed = true
				case m.owner == n && epoch > m.epoch:
					m.epoch = epoch
					changed = true
				}
			}
			if !slices.Equal(rebound, want.Ranges(nil)) {
				t.Fatalf("step %d: rebound %v, want %v", step, rebound, want.Ranges(nil))
			}
		case 3:
			tb.SetEpoch(n, epoch)
			for s := range model {
				if model[s].owner == n && model[s].epoch != epoch {
					model[s].epoch = epoch
					changed = true
				}
			}
		case 4:
			_ = tb.SetMigrating(slot, n)
			changed = model[slot].mig != n
			model[slot].mig = n
		case 5:
			_ = tb.SetImporting(slot, n)
			changed = model[slot].imp != n
			model[slot].imp = n
		case 6:
			_ = tb.ClearMarks(slot)
			changed = !model[slot].mig.IsZero() || !model[slot].imp.IsZero()
			model[slot].mig, model[slot].imp = NodeID{}, NodeID{}
		}
		if got := tb.Version() != before; got != changed {
			t.Fatalf("step %d: version bumped %v, model changed %v", step, got, changed)
		}
		snap := tb.Snapshot()
		for s := range uint16(span) {
			m := model[s]
			id, e := tb.Owner(s)
			sid, se := snap.Owner(s)
			if id != m.owner || e != m.epoch || sid != id || se != e {
				t.Fatalf("step %d slot %d: owner %v@%d snap %v@%d, model %v@%d", step, s, id, e, sid, se, m.owner, m.epoch)
			}
			mig, _ := tb.Migrating(s)
			smig, _ := snap.Migrating(s)
			imp, _ := tb.Importing(s)
			simp, _ := snap.Importing(s)
			if mig != m.mig || smig != m.mig || imp != m.imp || simp != m.imp {
				t.Fatalf("step %d slot %d: marks differ from model", step, s)
			}
		}
		checkInvariants(t, &tb)
	}
}

func BenchmarkTableOwner(b *testing.B) {
	var tb Table
	for i := range 16 {
		lo := uint16(i * 1024)
		_, _ = tb.Claim(nid(byte(i+1)), uint64(i), set(b, Range{lo, lo + 1023}))
	}
	b.ReportAllocs()
	n := 0
	var sink uint64
	for b.Loop() {
		_, e := tb.Owner(uint16(n) & slotMask)
		sink += e
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lookups/s")
	_ = sink
}

// BenchmarkClaimAll measures a full-table takeover, the largest Claim.
func BenchmarkClaimAll(b *testing.B) {
	all := set(b, Range{0, Slots - 1})
	var tb Table
	epoch := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		epoch++
		_, _ = tb.Claim(nid(byte(epoch%2+1)), epoch, all)
	}
	b.ReportMetric(float64(Slots)*float64(epoch)/b.Elapsed().Seconds(), "slots/s")
}

func TestMarksListsEveryMark(t *testing.T) {
	var tb Table
	want := map[Mark]bool{}
	for _, s := range []uint16{0, 63, 64, 5000, Slots - 1} {
		_ = tb.SetMigrating(s, nodeB)
		want[Mark{Slot: s, Node: nodeB}] = true
		if s%2 == 0 {
			_ = tb.SetImporting(s, nodeC)
			want[Mark{Slot: s, Importing: true, Node: nodeC}] = true
		}
	}
	_ = tb.ClearMarks(63)
	delete(want, Mark{Slot: 63, Node: nodeB})
	got := tb.Marks()
	if len(got) != len(want) {
		t.Fatalf("Marks = %v, want %d marks", got, len(want))
	}
	for i, m := range got {
		if !want[m] {
			t.Fatalf("unexpected mark %+v", m)
		}
		if i > 0 && got[i-1].Slot > m.Slot {
			t.Fatalf("marks out of slot order: %v", got)
		}
	}
	checkInvariants(t, &tb)
}

// RangesByOwner joins the slots an owner holds at two configEpochs into
// the ranges SlotsOf gives.
func TestRangesByOwnerEpochs(t *testing.T) {
	var tb Table
	_, _ = tb.Claim(nodeA, 1, set(t, Range{0, 99}, Range{200, 299}))
	_, _ = tb.Claim(nodeB, 2, set(t, Range{100, 199}, Range{16383, 16383}))
	_ = tb.Assign(300, nodeA, 7) // nodeA at a second epoch, adjacent
	_ = tb.Assign(5000, nodeA, 7)
	got := tb.RangesByOwner()
	if len(got) != 2 {
		t.Fatalf("RangesByOwner has %d owners: %v", len(got), got)
	}
	for _, id := range []NodeID{nodeA, nodeB} {
		s := tb.SlotsOf(id)
		want := s.Ranges(nil)
		if !slices.Equal(got[id], want) {
			t.Errorf("%v: RangesByOwner %v, SlotsOf %v", id, got[id], want)
		}
	}
	if want := []Range{{0, 99}, {200, 300}, {5000, 5000}}; !slices.Equal(got[nodeA], want) {
		t.Errorf("nodeA: %v, want %v", got[nodeA], want)
	}
	var empty Table
	if len(empty.RangesByOwner()) != 0 {
		t.Error("an empty table has owners")
	}
}

// RangesByOwner is SlotsOf(id).Ranges for every owner, from one pass,
// on tables where owners hold scattered slots at several epochs.
func TestRangesByOwnerMatchesSlotsOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 20 {
		var tb Table
		owners := []NodeID{nid('a'), nid('b'), nid('c'), nid('d'), nid('e')}
		for range 3000 {
			slot := uint16(rng.IntN(Slots))
			if rng.IntN(10) == 0 {
				_ = tb.Unassign(slot)
				continue
			}
			if err := tb.Assign(slot, owners[rng.IntN(len(owners))], uint64(rng.IntN(3))); err != nil {
				t.Fatal(err)
			}
		}
		got := tb.RangesByOwner()
		for _, id := range append(owners, nid('z')) {
			set := tb.SlotsOf(id)
			if want := set.Ranges(nil); !slices.Equal(got[id], want) {
				t.Fatalf("round %d, owner %v: RangesByOwner %v, SlotsOf %v", round, id, got[id], want)
			}
		}
		if len(got) > len(owners) {
			t.Fatalf("round %d: %d owners listed, at most %d exist", round, len(got), len(owners))
		}
	}
}

// BenchmarkRangesByOwner200 lists the slots of 200 masters with about 82
// slots each, as CLUSTER NODES and the node's client views do.
func BenchmarkRangesByOwner200(b *testing.B) {
	var tb Table
	for slot := range Slots {
		id := NodeID{byte(slot * 200 / Slots), 1}
		if err := tb.Assign(uint16(slot), id, 1); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		_ = tb.RangesByOwner()
	}
}
