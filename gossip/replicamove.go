package gossip

import (
	"time"

	"github.com/hearsay/hearsay/failover"
	"github.com/hearsay/hearsay/gossip/wire"
)

// replicaMigrationEvery is how often a replica looks for an orphaned
// master, as often as Redis's cluster cron.
const replicaMigrationEvery = 100 * time.Millisecond

// replicaTally is a master record's part of the replica-migration rule:
// whether it has had a replica since this node knew it (the top bit), and
// how many of its replicas are neither PFAIL nor FAIL here. It lives in
// the record's padding, so a table of 10,000 records pays nothing for it,
// and it is never sent or saved: as in Redis, after a restart a master
// must be seen with a replica again before it counts as orphaned.
type replicaTally uint16

const (
	tallyHad     replicaTally = 1 << 15
	tallyWorking replicaTally = tallyHad - 1
)

func (t replicaTally) had() bool    { return t&tallyHad != 0 }
func (t replicaTally) working() int { return int(t & tallyWorking) }

// replicaMigration is the state of Redis's replica-migration rule beyond
// the per-record tallies: since when each orphaned master has been
// orphaned, and the health of the cluster.
//
// Every node runs the rule 10 times a second, so a steady cluster must not
// pay O(N) per round for it (the simulator runs 10,000 nodes in one
// process). The tallies are recounted only when Core.shardGen moved, and the shard list that failover.MigrationTarget reads
// is built only when this replica could be the one to move.
type replicaMigration struct {
	last     time.Duration
	orphaned map[wire.NodeID]time.Duration // orphaned master -> since
	most     int                           // the most working replicas of any master
	health   Health                        // at the last recount
	gen      uint64                        // Core.shardGen at the last recount
	recounts int                           // 0 until the first

	shards   []failover.Shard
	shardsAt int // recounts when shards was built
}

// tickReplicaMigration moves this replica to an orphaned master when
// failover.MigrationTarget says so.
func (c *Core) tickReplicaMigration() {
	m := &c.migrate
	if c.cfg.MigrationBarrier < 0 || c.now-m.last < replicaMigrationEvery {
		return
	}
	m.last = c.now
	if m.recounts == 0 || m.gen != c.shardGen {
		c.countReplicas()
	}
	self := c.self()
	// Redis moves replicas only while the cluster is ok, and only from a
	// master with the most working replicas.
	if len(m.orphaned) == 0 || self.flags&wire.FlagReplica == 0 || !m.health.OK {
		return
	}
	mr := c.masterRecord(self.master)
	if mr == nil {
		return
	}
	if !failover.MayDonate(mr.tally.working(), m.most, c.cfg.MigrationBarrier) {
		return
	}
	due := false
	for _, since := range m.orphaned {
		due = due || c.now-since > failover.MigrationDelay
	}
	if !due {
		return
	}
	if m.shardsAt != m.recounts {
		c.buildShards()
	}
	for k := range m.shards {
		s := &m.shards[k]
		if since, ok := m.orphaned[s.Master]; ok {
			s.OrphanedFor = c.now - since
		}
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

// masterRecord returns the record of id if it is a master.
func (c *Core) masterRecord(id wire.NodeID) *record {
	r := c.lookup(id)
	if r == nil || r.flags&wire.FlagMaster == 0 {
		return nil
	}
	return r
}

// countReplicas recounts every master's working replicas, starts the
// orphan clock of each master that just lost its last working one, and
// judges the cluster's health.
func (c *Core) countReplicas() {
	m := &c.migrate
	m.gen = c.shardGen
	m.recounts++
	if m.orphaned == nil {
		m.orphaned = map[wire.NodeID]time.Duration{}
	}
	m.most = 0
	var h Health
	unreachable := 0
	for i := range c.records {
		r := &c.records[i]
		if r.flags&wire.FlagMaster == 0 {
			r.tally = 0 // a master that became a replica forgets its history
			continue
		}
		r.tally &= tallyHad
		slots := c.masters[r.id]
		if slots == 0 {
			continue
		}
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
	h.judge(unreachable)
	m.health = h
	for i := range c.records {
		r := &c.records[i]
		if r.flags&wire.FlagReplica == 0 || r.master.IsZero() {
			continue
		}
		mr := c.masterRecord(r.master)
		if mr == nil {
			continue
		}
		mr.tally |= tallyHad
		if !r.failed() && !c.pfail(r.id) && mr.tally.working() < int(tallyWorking) {
			mr.tally++
			m.most = max(m.most, mr.tally.working())
		}
	}
	for i := range c.records {
		r := &c.records[i]
		if !r.tally.had() {
			continue
		}
		if c.masters[r.id] == 0 || r.failed() || r.tally.working() > 0 {
			delete(m.orphaned, r.id)
		} else if _, ok := m.orphaned[r.id]; !ok {
			m.orphaned[r.id] = c.now
		}
	}
	for id := range m.orphaned {
		if r := c.masterRecord(id); r == nil || !r.tally.had() {
			delete(m.orphaned, id)
		}
	}
}

// buildShards lists, for failover.MigrationTarget, every master that has
// or had replicas, with its working replicas. A master that never had one
// can neither be a target nor have the most working replicas, so leaving
// it out does not change the answer.
func (c *Core) buildShards() {
	m := &c.migrate
	m.shardsAt = m.recounts
	at := make(map[wire.NodeID]int)
	m.shards = m.shards[:0]
	for i := range c.records {
		r := &c.records[i]
		if r.flags&wire.FlagMaster != 0 && r.tally.had() {
			at[r.id] = len(m.shards)
			m.shards = append(m.shards, failover.Shard{Master: r.id, Slots: c.masters[r.id], Failed: r.failed(), HadReplicas: true})
		}
	}
	for i := range c.records {
		r := &c.records[i]
		if r.flags&wire.FlagReplica == 0 || r.failed() || c.pfail(r.id) {
			continue
		}
		if k, ok := at[r.master]; ok {
			m.shards[k].OKReplicas = append(m.shards[k].OKReplicas, r.id)
		}
	}
}
