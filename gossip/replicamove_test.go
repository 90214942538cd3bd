package gossip

import (
	"testing"
	"time"

	"github.com/hearsay/hearsay/ring"
)

// layout builds len(masterOf)+masters nodes: nodes 0..masters-1 split the
// slots, and node masters+j replicates masterOf[j].
func layout(t testing.TB, masters int, masterOf []int, mut func(*Config)) *testNet {
	t.Helper()
	tn := newTestNet(t, masters+len(masterOf), mut)
	tn.meetAll()
	tn.run(3 * time.Second)
	per := ring.Slots / masters
	for i := 0; i < masters; i++ {
		end := (i+1)*per - 1
		if i == masters-1 {
			end = ring.Slots - 1
		}
		tn.addSlots(i, uint16(i*per), uint16(end))
	}
	tn.run(time.Second)
	for j, m := range masterOf {
		r, err := tn.cores[masters+j].Replicate(tn.now, tn.cores[m].ID())
		if err != nil {
			t.Fatal(err)
		}
		tn.out(masters+j, r)
	}
	tn.run(3 * time.Second)
	if err := tn.converged(); err != nil {
		t.Fatalf("cluster did not form: %v", err)
	}
	return tn
}

func TestReplicaMigratesToOrphanedMaster(t *testing.T) {
	// Master 0 has replicas 3 and 4, masters 1 and 2 one each (5, 6).
	tn := layout(t, 3, []int{0, 0, 1, 2}, nil)
	tn.down[5] = true // master 1 loses its only replica
	tn.run(3 * time.Second)
	if tn.masterOf(3) != tn.cores[0].ID() || tn.masterOf(4) != tn.cores[0].ID() {
		t.Fatal("a replica moved before the orphan was 5 s old")
	}
	tn.run(5 * time.Second)
	// Node 3 has the smaller ID of master 0's two replicas.
	if got := tn.masterOf(3); got != tn.cores[1].ID() {
		t.Fatalf("node 3 follows %s, want the orphaned master 1", got)
	}
	if got := tn.masterOf(4); got != tn.cores[0].ID() {
		t.Fatalf("node 4 follows %s, want master 0 kept", got)
	}
	migrated := 0
	for _, e := range tn.failover {
		if e.Kind == FailoverMigrated {
			migrated++
		}
	}
	tn.run(10 * time.Second)
	if migrated != 1 {
		t.Fatalf("%d migrations, want 1", migrated)
	}
	for _, i := range tn.live() {
		if v, _ := tn.cores[i].Node(tn.cores[3].ID()); v.Master != tn.cores[1].ID() {
			t.Fatalf("node %d still lists node 3 under %s", i, v.Master)
		}
	}
}

// TestReplicaMigrationRescansOnlyOnChange guards the cost of the rule: an
// idle cluster runs it ten times a second on every node, and a round with
// nothing changed must not read the whole node table again.
func TestReplicaMigrationRescansOnlyOnChange(t *testing.T) {
	tn := layout(t, 3, []int{0, 0, 1, 2}, nil)
	tn.run(2 * time.Second)
	before := make([]int, len(tn.cores))
	for i, c := range tn.cores {
		before[i] = c.migrate.recounts
	}
	tn.run(10 * time.Second) // 100 rounds on each node
	for i, c := range tn.cores {
		if n := c.migrate.recounts - before[i]; n > 5 {
			t.Errorf("node %d recounted replicas %d times in 10 idle seconds", i, n)
		}
	}
	// A replica going silent is a change: every node that marks it PFAIL
	// must see master 1 orphaned, or no replica could ever move to it.
	tn.down[5] = true
	tn.run(3 * time.Second)
	for _, i := range tn.live() {
		if _, ok := tn.cores[i].migrate.orphaned[tn.cores[1].ID()]; !ok {
			t.Errorf("node %d does not count master 1 as orphaned", i)
		}
	}
}

func TestMigrationBarrier(t *testing.T) {
	tests := []struct {
		name    string
		barrier int
	}{{"barrier 2", 2}, {"migration off", -1}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tn := layout(t, 3, []int{0, 0, 1, 2}, func(c *Config) { c.MigrationBarrier = tc.barrier })
			tn.down[5] = true
			tn.run(12 * time.Second)
			for _, i := range []int{3, 4} {
				if got := tn.masterOf(i); got != tn.cores[0].ID() {
					t.Fatalf("node %d moved to %s", i, got)
				}
			}
		})
	}
}
