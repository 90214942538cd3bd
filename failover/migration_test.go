package failover

import (
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

func TestMigrationTarget(t *testing.T) {
	orphan := Shard{Master: nid(50), Slots: 100, HadReplicas: true, OrphanedFor: MigrationDelay + time.Millisecond}
	rich := Shard{Master: nid(10), Slots: 100, HadReplicas: true, OKReplicas: []wire.NodeID{nid(11), nid(12)}}
	poor := Shard{Master: nid(20), Slots: 100, HadReplicas: true, OKReplicas: []wire.NodeID{nid(21)}}
	tests := []struct {
		name    string
		self    wire.NodeID
		master  wire.NodeID
		shards  []Shard
		barrier int
		want    wire.NodeID // zero: stay
	}{
		{"smallest replica of the richest master moves", nid(11), nid(10), []Shard{rich, poor, orphan}, 1, nid(50)},
		{"its sibling stays", nid(12), nid(10), []Shard{rich, poor, orphan}, 1, wire.NodeID{}},
		{"replica of a poorer master stays", nid(21), nid(20), []Shard{rich, poor, orphan}, 1, wire.NodeID{}},
		{"barrier 2 keeps both", nid(11), nid(10), []Shard{rich, poor, orphan}, 2, wire.NodeID{}},
		{"barrier 0 still leaves one", nid(11), nid(10), []Shard{rich, poor, orphan}, 0, nid(50)},
		{"orphaned too recently", nid(11), nid(10), []Shard{rich, poor, func() Shard { o := orphan; o.OrphanedFor = time.Second; return o }()}, 1, wire.NodeID{}},
		{"never had replicas", nid(11), nid(10), []Shard{rich, poor, func() Shard { o := orphan; o.HadReplicas = false; return o }()}, 1, wire.NodeID{}},
		{"orphan FAIL: its failover is not ours", nid(11), nid(10), []Shard{rich, poor, func() Shard { o := orphan; o.Failed = true; return o }()}, 1, wire.NodeID{}},
		{"orphan without slots", nid(11), nid(10), []Shard{rich, poor, func() Shard { o := orphan; o.Slots = 0; return o }()}, 1, wire.NodeID{}},
		{"one replica each: nobody moves", nid(21), nid(20), []Shard{poor, orphan}, 0, wire.NodeID{}},
		{"tie of richest masters: smallest ID of both", nid(11), nid(10), []Shard{rich, {Master: nid(30), Slots: 1, HadReplicas: true, OKReplicas: []wire.NodeID{nid(5), nid(31)}}, orphan}, 1, wire.NodeID{}},
		{"smallest orphan first", nid(11), nid(10), []Shard{rich, orphan, func() Shard { o := orphan; o.Master = nid(40); return o }()}, 1, nid(40)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := MigrationTarget(tc.self, tc.master, tc.shards, tc.barrier)
			if ok != !tc.want.IsZero() || got != tc.want {
				t.Fatalf("MigrationTarget = %v %v, want %v", got, ok, tc.want)
			}
		})
	}
}
