package failover

import (
	"bytes"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// MigrationDelay is how long a master must have been orphaned (serving
// slots with no working replica) before a spare replica moves to it: long
// enough that a replica that merely restarted comes back first. Redis uses
// the same 5 seconds.
const MigrationDelay = 5 * time.Second

// Shard is one master as the replica-migration rule sees it.
type Shard struct {
	Master wire.NodeID
	// Slots is how many slots the master serves.
	Slots int
	// Failed: the master is FAIL.
	Failed bool
	// OKReplicas are its replicas that are neither PFAIL nor FAIL here.
	OKReplicas []wire.NodeID
	// HadReplicas: the master has had a replica since this node knew it.
	// Only such a master counts as orphaned, so that a master deployed
	// without replicas on purpose does not take one.
	HadReplicas bool
	// OrphanedFor is how long the master has been orphaned, as the caller
	// measured it (zero when not orphaned).
	OrphanedFor time.Duration
}

// Orphaned reports whether s is a master that has lost its last working
// replica: it serves slots, is not FAIL, once had replicas and has none.
func (s *Shard) Orphaned() bool {
	return s.Slots > 0 && !s.Failed && s.HadReplicas && len(s.OKReplicas) == 0
}

// MayDonate reports whether a master with mine working replicas may give
// one away, when the most working replicas of any master is most:
// MigrationTarget's first condition, which a caller can test from counts
// alone before it builds the shard list.
func MayDonate(mine, most, barrier int) bool {
	return mine == most && most >= 2 && mine > barrier
}

// MigrationTarget applies Redis's replica-migration rule for self, a
// replica of master, and returns the orphaned master self should move to,
// if any. self moves only when:
//   - its own master has the most working replicas of any master, at least
//     two, and more than barrier (cluster-migration-barrier);
//   - it has the smallest node ID among the working replicas of every
//     master with that many, so that exactly one replica in the whole
//     cluster moves at a time;
//   - some master has been orphaned for longer than MigrationDelay.
//
// The caller checks that the cluster is healthy first (Redis does not
// migrate replicas while cluster_state is fail). shards must list every
// master. The target is the orphan with the smallest node ID, so every
// node computes the same move.
func MigrationTarget(self, master wire.NodeID, shards []Shard, barrier int) (wire.NodeID, bool) {
	most, mine := 0, -1
	for i := range shards {
		n := len(shards[i].OKReplicas)
		most = max(most, n)
		if shards[i].Master == master {
			mine = n
		}
	}
	if mine < 0 || !MayDonate(mine, most, barrier) {
		return wire.NodeID{}, false
	}
	candidate := self
	var target *Shard
	for i := range shards {
		s := &shards[i]
		if s.Orphaned() && s.OrphanedFor > MigrationDelay && (target == nil || bytes.Compare(s.Master[:], target.Master[:]) < 0) {
			target = s
		}
		if len(s.OKReplicas) == most {
			for _, r := range s.OKReplicas {
				if bytes.Compare(r[:], candidate[:]) < 0 {
					candidate = r
				}
			}
		}
	}
	if target == nil || candidate != self {
		return wire.NodeID{}, false
	}
	return target.Master, true
}
