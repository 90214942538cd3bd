package gossip

import "github.com/hearsay/hearsay/gossip/wire"

// At scale a node's failure is judged by its K observers, a majority of
// them. When a rack goes dark, some of a crashed node's observers may have
// crashed with it: with 100 of 1000 nodes down, one crashed master in two
// hundred or so has half of its eight observers down too, and a majority
// of all eight can then never report it. Such a node would never be FAIL
// and its shard never failed over.
//
// So at scale the quorum counts only observers this node does not hold
// FAIL: a majority of the observers still standing, and only their reports.
// FAIL is a cluster verdict (itself a majority of that node's observers),
// not one node's suspicion, so a PFAIL observer still counts against the
// quorum; and the floor of two reports keeps one observer from deciding
// alone. In a small cluster Redis's rule holds unchanged: a majority of all
// slot-owning masters, FAIL ones included.

// failQuorum returns how many of subject's voters' reports (this node's
// own verdict included when it is a voter) make subject FAIL, and how many
// reports it holds from voters that count.
func (c *Core) failQuorum(subject wire.NodeID, p *peer) (have, need int) {
	vs, need := c.voters(subject)
	if c.smallCluster() {
		have = c.validReports(p)
		if c.isVoter(c.cfg.ID, subject) {
			have++
		}
		return have, need
	}
	standing := 0
	for _, v := range vs {
		if v == c.cfg.ID {
			standing++
			have++
			continue
		}
		if r := c.lookup(v); r == nil || r.failed() {
			continue
		}
		standing++
		if c.reportedBy(p, v) {
			have++
		}
	}
	if standing == 0 {
		return have, need
	}
	return have, min(need, max(standing/2+1, min(2, len(vs))))
}

// reportedBy says p holds a valid report from voter.
func (c *Core) reportedBy(p *peer, voter wire.NodeID) bool {
	for _, r := range p.reports {
		if r.from == voter && c.reportValid(r) {
			return true
		}
	}
	return false
}

// recheckFailing re-runs checkFail for every peer this node holds PFAIL
// once node failed became FAIL here: at scale it may have been one of their
// observers, and the quorum that counts only standing observers shrank.
func (c *Core) recheckFailing(failed wire.NodeID) {
	if c.smallCluster() {
		return
	}
	for i := 0; i < len(c.peerList); i++ {
		if p := c.peerList[i]; p.pfail && p.id != failed {
			c.checkFail(p.id)
		}
	}
}
