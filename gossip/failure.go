package gossip

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// peer is this node's liveness view of one other node. Only nodes it talks
// to, watches or holds reports about have one, so memory stays O(K) per node
// for liveness even when the table holds thousands of records.
type peer struct {
	id wire.NodeID

	pinged   bool          // a ping is outstanding
	pingSent time.Duration // when the oldest outstanding ping left
	lastPing time.Duration // when the last ping left
	pongRecv time.Duration
	heard    bool
	lastSeen time.Duration // any bus message from it

	hbProgress uint64
	hbSeen     bool
	hbAlive    time.Duration // last heartbeat that showed progress

	monitored bool
	monSince  time.Duration
	pfail     bool

	reports []report

	updated    bool
	lastUpdate time.Duration
	lastFail   time.Duration // last time we told it that it is FAIL

	votersMembers uint64 // membershipGen the cached voters were computed at
	votersTable   uint64 // slot table version likewise
	voters        []wire.NodeID
}

// report is one voter's claim that the node is PFAIL or FAIL.
type report struct {
	from wire.NodeID
	at   time.Duration
}

func (c *Core) peer(id wire.NodeID) *peer {
	if p := c.peers[id]; p != nil {
		return p
	}
	p := &peer{id: id}
	c.peers[id] = p
	c.peerList = append(c.peerList, p)
	return p
}

// alive is the last time we know the peer's process was running.
func (p *peer) alive() (time.Duration, bool) {
	switch {
	case p.heard && p.hbSeen:
		return max(p.lastSeen, p.hbAlive), true
	case p.heard:
		return p.lastSeen, true
	case p.hbSeen:
		return p.hbAlive, true
	}
	return 0, false
}

// smallCluster says Redis's rules apply: every node watches every other and
// the masters with slots vote.
func (c *Core) smallCluster() bool { return len(c.records)-1 <= c.cfg.SmallCluster }

// ringPos is a node's place on the observer hash ring.
func ringPos(id wire.NodeID) uint64 { return mixID(0x6f6273, &id) }

// refreshMonitors recomputes which peers this node watches: everyone in a
// small cluster; otherwise the K nodes before it on the hash ring (it is one
// of their observers), its master and the master's replicas.
func (c *Core) refreshMonitors() {
	if c.monitorGen == c.membershipGen {
		return
	}
	c.monitorGen = c.membershipGen
	want := c.monitored[:0]
	if c.smallCluster() {
		for i := 1; i < len(c.records); i++ {
			want = append(want, c.records[i].id)
		}
	} else {
		want = c.ringNeighbours(c.cfg.ID, c.cfg.Observers, false, want)
		want = dedupe(c.appendShard(want))
	}
	c.monitored = want
	for _, p := range c.peerList {
		p.monitored = false
	}
	for _, id := range want {
		if c.lookup(id) == nil {
			continue
		}
		p := c.peer(id)
		if !p.monitored {
			p.monitored = true
			if p.monSince == 0 {
				p.monSince = c.now
			}
		}
	}
	for _, p := range c.peerList {
		if !p.monitored {
			p.monSince = 0
		}
	}
}

// appendShard appends this node's master (if it is a replica) and the
// master's other replicas: a shard watches itself both ways.
func (c *Core) appendShard(ids []wire.NodeID) []wire.NodeID {
	shardMaster := c.cfg.ID
	if m := c.self().master; !m.IsZero() {
		shardMaster = m
		ids = append(ids, m)
	}
	for i := 1; i < len(c.records); i++ {
		if r := &c.records[i]; r.master == shardMaster && r.id != c.cfg.ID {
			ids = append(ids, r.id)
		}
	}
	return ids
}

// dedupe drops repeated IDs in place, keeping the first of each.
func dedupe(ids []wire.NodeID) []wire.NodeID {
	out := ids[:0]
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// ringNeighbours appends the k nodes nearest to id on the hash ring: after
// it (successors: the nodes that observe id) or before it (predecessors: the
// nodes id observes). One pass, O(N log k), and no sorted ring to keep.
func (c *Core) ringNeighbours(id wire.NodeID, k int, successors bool, dst []wire.NodeID) []wire.NodeID {
	type cand struct {
		d  uint64
		id wire.NodeID
	}
	pos := ringPos(id)
	best := make([]cand, 0, k+1)
	for i := range c.records {
		r := &c.records[i]
		if r.id == id {
			continue
		}
		var d uint64
		if successors {
			d = ringPos(r.id) - pos
		} else {
			d = pos - ringPos(r.id)
		}
		if len(best) == k && d >= best[k-1].d {
			continue
		}
		j := sort.Search(len(best), func(j int) bool { return best[j].d > d })
		best = append(best, cand{})
		copy(best[j+1:], best[j:])
		best[j] = cand{d, r.id}
		if len(best) > k {
			best = best[:k]
		}
	}
	for _, b := range best {
		dst = append(dst, b.id)
	}
	return dst
}

// voters returns the nodes whose reports about subject count, and how many
// of them make a majority.
func (c *Core) voters(subject wire.NodeID) ([]wire.NodeID, int) {
	p := c.peer(subject)
	if p.voters != nil && p.votersMembers == c.membershipGen && p.votersTable == c.table.Version() {
		return p.voters, len(p.voters)/2 + 1
	}
	p.voters = p.voters[:0]
	if c.smallCluster() {
		for i := range c.records {
			r := &c.records[i]
			if c.servesSlots(r) {
				p.voters = append(p.voters, r.id)
			}
		}
	} else {
		p.voters = c.ringNeighbours(subject, c.cfg.Observers, true, p.voters)
	}
	if p.voters == nil {
		p.voters = []wire.NodeID{}
	}
	p.votersMembers, p.votersTable = c.membershipGen, c.table.Version()
	return p.voters, len(p.voters)/2 + 1
}

func (c *Core) isVoter(from, subject wire.NodeID) bool {
	vs, _ := c.voters(subject)
	return slices.Contains(vs, from)
}

// checkLiveness marks watched peers PFAIL after node-timeout of silence, and
// any peer whose ping has gone unanswered that long.
func (c *Core) checkLiveness() {
	timeout := c.cfg.NodeTimeout
	for _, p := range c.peerList {
		if c.lookup(p.id) == nil {
			continue
		}
		silent := false
		if p.monitored && c.now-p.monSince > timeout {
			if at, ok := p.alive(); !ok || c.now-at > timeout {
				silent = true
			}
		}
		if p.pinged && c.now-p.pingSent > timeout {
			if at, ok := p.alive(); !ok || at < p.pingSent {
				silent = true
			}
		}
		if silent && !p.pfail {
			p.pfail = true
			c.shardGen++
			c.event(EventNodePFail, p.id)
			c.sendReports(p.id, true)
			c.pingSiblings(p.id)
			c.checkFail(p.id)
		}
	}
}

// pingSiblings pings the other replicas of master when master stops
// answering this replica, so that the PINGs and their PONGs carry every
// sibling's replication offset in their headers before an election ranks
// by it. Heartbeats on the XDP path carry no offset, and random gossip may
// take seconds to bring it in a large cluster.
func (c *Core) pingSiblings(master wire.NodeID) {
	if s := c.self(); s.master != master || s.flags&wire.FlagReplica == 0 {
		return
	}
	for i := 1; i < len(c.records); i++ {
		if r := &c.records[i]; r.master == master && r.flags&wire.FlagReplica != 0 && !r.failed() {
			c.ping(r)
		}
	}
}

// pfail reports whether this node holds id PFAIL.
func (c *Core) pfail(id wire.NodeID) bool {
	p := c.peers[id]
	return p != nil && p.pfail
}

// heardFrom records proof of life from a peer.
func (c *Core) heardFrom(p *peer) {
	p.heard = true
	p.lastSeen = c.now
	c.alive(p)
}

func (c *Core) alive(p *peer) {
	if p.pfail {
		p.pfail = false
		c.shardGen++
		c.liveCache.valid = false
		c.event(EventNodeAlive, p.id)
		c.sendReports(p.id, false)
	}
}

// sendReports pushes this node's verdict on subject to the voters at once,
// rather than waiting for gossip sections to carry it.
func (c *Core) sendReports(subject wire.NodeID, failing bool) {
	r := c.lookup(subject)
	if r == nil {
		return
	}
	vs, _ := c.voters(subject)
	for _, v := range vs {
		if v == c.cfg.ID || v == subject {
			continue
		}
		to := c.lookup(v)
		if to == nil {
			continue
		}
		m := c.newMessage(wire.TypeFailReport)
		m.Subject = subject
		m.SubjectVersion = r.version
		m.Report = failing
		c.send(to, m)
	}
}

// addReport records that voter from sees subject failing (or not).
func (c *Core) addReport(subject, from wire.NodeID, failing bool) {
	if !c.isVoter(from, subject) {
		return
	}
	p := c.peer(subject)
	i := slices.IndexFunc(p.reports, func(r report) bool { return r.from == from })
	switch {
	case !failing:
		if i >= 0 {
			p.reports = append(p.reports[:i], p.reports[i+1:]...)
		}
		return
	case i >= 0:
		p.reports[i].at = c.now
	default:
		p.reports = append(p.reports, report{from: from, at: c.now})
	}
	c.checkFail(subject)
}

// reportValid says a failure report still counts: it is at most
// 2×node-timeout old.
func (c *Core) reportValid(r report) bool { return c.now-r.at <= 2*c.cfg.NodeTimeout }

// validReports counts p's reports that still count. Between Ticks, which
// expire old reports, some held ones may have aged out.
func (c *Core) validReports(p *peer) int {
	n := 0
	for _, r := range p.reports {
		if c.reportValid(r) {
			n++
		}
	}
	return n
}

// expireReports drops reports older than 2×node-timeout.
func (c *Core) expireReports() {
	for _, p := range c.peerList {
		kept := p.reports[:0]
		for _, r := range p.reports {
			if c.reportValid(r) {
				kept = append(kept, r)
			}
		}
		p.reports = kept
	}
}

// FailureReports returns how many valid failure reports this node holds
// about id (CLUSTER COUNT-FAILURE-REPORTS).
func (c *Core) FailureReports(id wire.NodeID) int {
	p := c.peers[id]
	if p == nil {
		return 0
	}
	return c.validReports(p)
}

// checkFail declares subject FAIL when this node sees it PFAIL and a
// majority of its voters agree, counting this node if it is a voter.
func (c *Core) checkFail(subject wire.NodeID) {
	r := c.lookup(subject)
	p := c.peers[subject]
	if r == nil || p == nil || r.failed() || !p.pfail {
		return
	}
	if n, need := c.failQuorum(subject, p); n < need {
		return
	}
	c.markFail(r, r.version, c.now)
	c.broadcastFail(r)
}

// markFail sets FAIL on r for versions up to v, declared at time at.
func (c *Core) markFail(r *record, v uint64, at time.Duration) {
	c.hashIn(r, -1)
	r.flags |= wire.FlagFail
	r.failVersion = max(r.failVersion, v)
	r.failAt = at
	c.hashIn(r, +1)
	c.recordQ.Add(r.id)
	c.eager = true
	c.event(EventNodeFail, r.id)
	c.dirty = true
	c.recheckFailing(r.id)
	if s := c.self(); s.flags&wire.FlagReplica != 0 && s.master == r.id {
		c.wantTick = true // the election starts on the next Tick
	}
}

// broadcastFail sends FAIL with top priority: to every node in a small
// cluster, as Redis does, and to Fanout random peers at scale, each of which
// forwards it once on first receipt.
func (c *Core) broadcastFail(r *record) {
	if c.smallCluster() {
		// The subject gets it too: if it is alive after all, it learns
		// that it must refute.
		for i := 1; i < len(c.records); i++ {
			c.sendFail(&c.records[i], r)
		}
		return
	}
	c.fanoutFail(r)
}

// fanoutFail sends FAIL about r to Fanout random peers other than r.
func (c *Core) fanoutFail(r *record) {
	for _, i := range c.randomPeers(c.cfg.Fanout, r.id) {
		c.sendFail(&c.records[i], r)
	}
}

func (c *Core) sendFail(to, subject *record) {
	m := c.newMessage(wire.TypeFail)
	m.Subject = subject.id
	m.SubjectVersion = subject.failVersion
	m.FailAge = failAge(c.now - subject.failAt)
	c.send(to, m)
}

// failAge renders an age for the wire: whole milliseconds, rounded down,
// saturating.
func failAge(d time.Duration) uint32 {
	return uint32(min(max(d.Milliseconds(), 0), math.MaxUint32))
}

// receiveFail handles a FAIL verdict about subject at version v, declared
// age ago.
func (c *Core) receiveFail(subject wire.NodeID, v uint64, age time.Duration) {
	if subject == c.cfg.ID {
		c.learnSelfFailed(v, age)
		return
	}
	r := c.lookup(subject)
	if r == nil || v < r.version {
		return
	}
	if r.failed() {
		if v == r.failVersion {
			// Every estimate is no earlier than the declaration, so
			// the earliest is the best.
			r.failAt = min(r.failAt, c.now-age)
		}
		return
	}
	c.markFail(r, v, c.now-age)
	if !c.smallCluster() {
		c.fanoutFail(r)
	}
}

// learnSelfFailed notes that others hold this node FAIL at version v, a
// verdict declared age ago (0 when the news carries no age).
func (c *Core) learnSelfFailed(v uint64, age time.Duration) {
	if v < c.self().version {
		return
	}
	if c.selfFailed {
		c.failedSelf = min(c.failedSelf, c.now-age)
		return
	}
	c.selfFailed = true
	c.failedSelf = c.now - age
	c.event(EventSelfFailed, c.cfg.ID)
	c.wantTick = true // maybeRefute may clear it at once
}

// HeldFailed reports whether this node knows that the cluster holds it
// FAIL and has not yet refuted it: a master then serves nothing, since a
// replica may be taking its slots over.
func (c *Core) HeldFailed() bool { return c.selfFailed }

// maybeRefute publishes a newer record once Redis's undo rule allows: at once
// for a replica or a master without slots; for a master that still serves
// slots, once the FAIL is 2×node-timeout old, counted from its declaration
// (FAIL messages carry its age), not from when this node heard of it. A
// replica that took the slots meanwhile holds them at a higher configEpoch,
// so the newer record wins the node back but not the slots: the UPDATE that
// follows turns it into that replica's replica.
func (c *Core) maybeRefute() {
	if !c.selfFailed {
		return
	}
	if c.servesSlots(c.self()) && c.now-c.failedSelf < 2*c.cfg.NodeTimeout {
		return
	}
	c.selfFailed = false
	c.publishSelf(true)
}

// randomPeers picks up to k distinct random record indexes, skipping this
// node and except.
func (c *Core) randomPeers(k int, except wire.NodeID) []int {
	n := len(c.records) - 1
	out := c.pick[:0]
	defer func() { c.pick = out[:0] }()
	if n <= 0 {
		return out
	}
	for tries := 0; len(out) < k && tries < 4*k; tries++ {
		i := 1 + c.rng.IntN(n)
		if c.records[i].id != except && !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	return out
}
