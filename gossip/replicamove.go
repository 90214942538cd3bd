package gossip

import (
	"time"

	"github.com/hearsay/hearsay/failover"
	"github.com/hearsay/hearsay/gossip/wire"
)

// replicaMigrationEvery is how often a replica looks for an orphaned
// master, as often as Redis's cluster cron.
const replicaMigrationEvery = 100 * time.Millisecond

// replicaMigration is the state of Redis's replica-migration rule: which
// masters have had replicas, and since when each orphaned one has been
// orphaned. Both are in memory only, as in Redis: after a restart a
// master must be seen with a replica again before it counts as orphaned.
type replicaMigration struct {
	last     time.Duration
	had      map[wire.NodeID]bool
	orphaned map[wire.NodeID]time.Duration
	shards   []failover.Shard
	at       map[wire.NodeID]int // master -> index in shards
}

// tickReplicaMigration moves this replica to an orphaned master when
// failover.MigrationTarget says so.
func (c *Core) tickReplicaMigration() {
	m := &c.migrate
	if c.cfg.MigrationBarrier < 0 || c.now-m.last < replicaMigrationEvery {
		return
	}
	m.last = c.now
	if m.had == nil {
		m.had, m.orphaned, m.at = map[wire.NodeID]bool{}, map[wire.NodeID]time.Duration{}, map[wire.NodeID]int{}
	}
	// Every master, then every working replica under its master.
	m.shards = m.shards[:0]
	clear(m.at)
	var h Health
	unreachable := 0
	for i := range c.records {
		r := &c.records[i]
		if r.flags&wire.FlagMaster == 0 {
			continue
		}
		slots := c.masters[r.id]
		k := len(m.shards)
		m.at[r.id] = k
		var keep []wire.NodeID // reuse the last round's replica list
		if k < cap(m.shards) {
			keep = m.shards[:k+1][k].OKReplicas[:0]
		}
		m.shards = append(m.shards, failover.Shard{Master: r.id, Slots: slots, Failed: r.failed(), OKReplicas: keep})
		if slots > 0 {
			h.Size++
			h.SlotsAssigned += slots
			switch {
			case r.failed():
				h.SlotsFail += slots
				unreachable++
			case c.pfail(r.id):
				unreachable++
			}
		}
	}
	for i := range c.records {
		r := &c.records[i]
		if r.flags&wire.FlagReplica == 0 || r.master.IsZero() {
			continue
		}
		k, ok := m.at[r.master]
		if !ok {
			continue
		}
		m.had[r.master] = true
		if !r.failed() && !c.pfail(r.id) {
			m.shards[k].OKReplicas = append(m.shards[k].OKReplicas, r.id)
		}
	}
	for id := range m.orphaned {
		if _, ok := m.at[id]; !ok {
			delete(m.orphaned, id)
		}
	}
	for id := range m.had {
		if _, ok := m.at[id]; !ok {
			delete(m.had, id)
		}
	}
	for k := range m.shards {
		s := &m.shards[k]
		s.HadReplicas = m.had[s.Master]
		if !s.Orphaned() {
			delete(m.orphaned, s.Master)
			continue
		}
		since, ok := m.orphaned[s.Master]
		if !ok {
			since = c.now
			m.orphaned[s.Master] = since
		}
		s.OrphanedFor = c.now - since
	}
	self := c.self()
	h.judge(unreachable)
	// Redis moves replicas only while the cluster is ok.
	if self.flags&wire.FlagReplica == 0 || !h.OK {
		return
	}
	target, ok := failover.MigrationTarget(c.cfg.ID, self.master, m.shards, c.cfg.MigrationBarrier)
	if !ok {
		return
	}
	delete(m.orphaned, target)
	c.becomeReplica(target)
	c.publishSelf(true)
	c.ready.Failover = append(c.ready.Failover, FailoverEvent{Kind: FailoverMigrated, Node: target})
}
