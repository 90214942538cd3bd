package ring

import (
	"sync"
	"testing"
)

func TestSnapshotImmutable(t *testing.T) {
	var tb Table
	_, _ = tb.Claim(nodeA, 1, set(t, Range{0, 8191}))
	_ = tb.SetMigrating(10, nodeB)
	snap := tb.Snapshot()
	v := snap.Version()
	if v != tb.Version() {
		t.Fatalf("snapshot version %d, table %d", v, tb.Version())
	}

	// Every kind of change after the snapshot must leave it untouched.
	changes := []struct {
		name string
		do   func()
	}{
		{"claim", func() { _, _ = tb.Claim(nodeB, 2, set(t, Range{0, 16383})) }},
		{"assign", func() { _ = tb.Assign(0, nodeC, 9) }},
		{"unassign", func() { _ = tb.Unassign(1) }},
		{"set epoch", func() { tb.SetEpoch(nodeB, 7) }},
		{"retarget mark", func() { _ = tb.SetMigrating(10, nodeC) }},
		{"import mark", func() { _ = tb.SetImporting(11, nodeC) }},
		{"clear marks", func() { _ = tb.ClearMarks(10) }},
	}
	for _, c := range changes {
		before := tb.Version()
		c.do()
		if tb.Version() == before {
			t.Errorf("%s: table version not bumped", c.name)
		}
		if snap.Version() != v {
			t.Fatalf("%s: snapshot version changed", c.name)
		}
		for _, s := range []uint16{0, 1, 8191} {
			if id, e := snap.Owner(s); id != nodeA || e != 1 {
				t.Fatalf("%s: snapshot Owner(%d) = %v@%d", c.name, s, id, e)
			}
		}
		if id, _ := snap.Owner(8192); !id.IsZero() {
			t.Fatalf("%s: snapshot Owner(8192) = %v", c.name, id)
		}
		if id, ok := snap.Migrating(10); id != nodeB || !ok {
			t.Fatalf("%s: snapshot Migrating(10) = %v %v", c.name, id, ok)
		}
		if _, ok := snap.Importing(11); ok {
			t.Fatalf("%s: snapshot gained an importing mark", c.name)
		}
		if snap.Assigned() != 8192 {
			t.Fatalf("%s: snapshot Assigned = %d", c.name, snap.Assigned())
		}
	}

	now := tb.Snapshot()
	if id, e := now.Owner(0); id != nodeC || e != 9 {
		t.Errorf("new snapshot Owner(0) = %v@%d", id, e)
	}
	if id, e := now.Owner(5); id != nodeB || e != 7 {
		t.Errorf("new snapshot Owner(5) = %v@%d", id, e)
	}
	if id, ok := now.Importing(11); id != nodeC || !ok {
		t.Errorf("new snapshot Importing(11) = %v %v", id, ok)
	}
}

func TestSnapshotReuse(t *testing.T) {
	var tb Table
	a := tb.Snapshot()
	if b := tb.Snapshot(); a != b {
		t.Error("unchanged table gave a new snapshot")
	}
	_ = tb.Assign(1, nodeA, 1)
	if b := tb.Snapshot(); a == b || b.Version() <= a.Version() {
		t.Error("changed table reused the old snapshot")
	}
}

func TestSnapshotNilAndBounds(t *testing.T) {
	var s *Snapshot
	if id, e := s.Owner(1); !id.IsZero() || e != 0 {
		t.Error("nil snapshot has an owner")
	}
	if _, ok := s.Migrating(1); ok {
		t.Error("nil snapshot migrating")
	}
	if _, ok := s.Importing(1); ok {
		t.Error("nil snapshot importing")
	}
	if s.Version() != 0 || s.Assigned() != 0 {
		t.Error("nil snapshot not empty")
	}
	var tb Table
	_ = tb.Assign(0, nodeA, 1)
	_ = tb.SetImporting(0, nodeB)
	snap := tb.Snapshot()
	if id, _ := snap.Owner(Slots); !id.IsZero() {
		t.Error("Owner(Slots) not zero")
	}
	if _, ok := snap.Migrating(Slots); ok {
		t.Error("Migrating(Slots)")
	}
	if _, ok := snap.Importing(Slots); ok {
		t.Error("Importing(Slots)")
	}
}

// TestSnapshotConcurrentReaders publishes snapshots while readers use them;
// run with -race to check that readers never see a write.
func TestSnapshotConcurrentReaders(t *testing.T) {
	var tb Table
	var mu sync.Mutex // stands in for an atomic.Pointer publish
	cur := tb.Snapshot()
	load := func() *Snapshot { mu.Lock(); defer mu.Unlock(); return cur }
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := load()
				id, e := s.Owner(100)
				// A claim always covers all slots, so any two slots agree.
				if id2, e2 := s.Owner(16000); id2 != id || e2 != e {
					t.Errorf("torn snapshot: %v@%d vs %v@%d", id, e, id2, e2)
					return
				}
			}
		})
	}
	all := set(t, Range{0, Slots - 1})
	for i := range 200 {
		_, _ = tb.Claim(nid(byte(i%3+1)), uint64(i+1), all)
		_ = tb.SetMigrating(uint16(i), nodeB)
		s := tb.Snapshot()
		mu.Lock()
		cur = s
		mu.Unlock()
	}
	close(stop)
	wg.Wait()
}

// snapshotTable is a realistic table: 100 masters, one range each.
func snapshotTable(b *testing.B) *Table {
	var tb Table
	per := Slots / 100
	for i := range 100 {
		lo := uint16(i * per)
		hi := lo + uint16(per) - 1
		if i == 99 {
			hi = Slots - 1
		}
		_, _ = tb.Claim(NodeID{0: byte(i), 1: byte(i >> 8), 19: 1}, uint64(i+1), set(b, Range{lo, hi}))
	}
	return &tb
}

func BenchmarkSnapshotOwner(b *testing.B) {
	snap := snapshotTable(b).Snapshot()
	b.ReportAllocs()
	n := 0
	var sink uint64
	for b.Loop() {
		_, e := snap.Owner(uint16(n*7) & slotMask)
		sink += e
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lookups/s")
	_ = sink
}

// BenchmarkRouteKey is the client path: hash a key, then look up its owner.
func BenchmarkRouteKey(b *testing.B) {
	snap := snapshotTable(b).Snapshot()
	b.ReportAllocs()
	n := 0
	var sink uint64
	for b.Loop() {
		_, e := snap.Owner(KeySlot(benchKeys[n&1023]))
		sink += e
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "keys/s")
	_ = sink
}

// BenchmarkSnapshot measures taking a snapshot after a change, with and
// without open (migrating or importing) slots.
func BenchmarkSnapshot(b *testing.B) {
	for _, marked := range []bool{false, true} {
		name := "stable"
		if marked {
			name = "migrating"
		}
		b.Run(name, func(b *testing.B) {
			tb := snapshotTable(b)
			if marked {
				_ = tb.SetMigrating(5, nodeB)
				_ = tb.SetImporting(9000, nodeC)
			}
			b.ReportAllocs()
			n := uint64(1000)
			for b.Loop() {
				n++
				tb.SetEpoch(NodeID{19: 1}, n) // master 0 moves on, so no reuse
				_ = tb.Snapshot()
			}
			b.ReportMetric(float64(n-1000)/b.Elapsed().Seconds(), "snapshots/s")
		})
	}
}
