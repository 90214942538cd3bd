package gossip

import (
	"slices"
	"time"

	"github.com/hearsay/hearsay/failover"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// electionView is the read-only view of the core that package failover
// reads.
type electionView struct{ c *Core }

func (v electionView) Self() wire.NodeID    { return v.c.cfg.ID }
func (v electionView) CurrentEpoch() uint64 { return v.c.currentEpoch }
func (v electionView) Voters() int          { return v.c.CountMasters() }

func (v electionView) Lookup(id wire.NodeID) (failover.Node, bool) {
	r := v.c.lookup(id)
	if r == nil {
		return failover.Node{}, false
	}
	return v.c.electionNode(r), true
}

func (c *Core) electionNode(r *record) failover.Node {
	return failover.Node{
		PFail: c.pfail(r.id),
		ID:    r.id, Master: r.master, IsMaster: r.flags&wire.FlagMaster != 0, Failed: r.failed(),
		NoFailover: r.flags&wire.FlagNoFailover != 0, Slots: c.masters[r.id],
		ConfigEpoch: r.configEpoch, ReplOffset: r.replOffset,
	}
}

func (v electionView) Replicas(master wire.NodeID, dst []failover.Node) []failover.Node {
	for i := range v.c.records {
		if r := &v.c.records[i]; r.master == master && r.flags&wire.FlagReplica != 0 {
			dst = append(dst, v.c.electionNode(r))
		}
	}
	return dst
}

func (v electionView) FailedMasters(dst []wire.NodeID) []wire.NodeID {
	start := len(dst)
	for id := range v.c.masters {
		if r := v.c.lookup(id); r != nil && r.failed() && r.flags&wire.FlagMaster != 0 {
			dst = append(dst, id)
		}
	}
	slices.SortFunc(dst[start:], func(a, b wire.NodeID) int { return compareIDs(a, b) })
	return dst
}

func (v electionView) SlotsOf(master wire.NodeID, dst []wire.SlotRange) []wire.SlotRange {
	set := v.c.table.SlotsOf(ring.NodeID(master))
	for _, r := range set.Ranges(nil) {
		dst = append(dst, wire.SlotRange{Start: r.Start, End: r.End})
	}
	return dst
}

func (v electionView) SlotEpoch(slot uint16) uint64 {
	_, e := v.c.table.Owner(slot)
	return e
}

func compareIDs(a, b wire.NodeID) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// FailoverEvent is one election step, vote or manual-failover step, for
// logs and metrics.
type FailoverEvent struct {
	Kind    FailoverKind
	Node    wire.NodeID // the master being replaced, the candidate, or the voter
	Epoch   uint64
	Reason  string
	Granted bool
}

// FailoverKind says what a FailoverEvent reports.
type FailoverKind uint8

// Failover event kinds.
const (
	FailoverNote     FailoverKind = iota + 1 // a step of this node's own election or manual failover (Reason)
	FailoverVote                             // this master answered a vote request (Granted, Reason)
	FailoverAck                              // a vote for this node's election arrived
	FailoverPromoted                         // this node took its master's slots
	FailoverTakeover                         // likewise, without votes
	FailoverMigrated                         // this replica moved to an orphaned master (Node)
)

// ReplicationStatus tells the core about this node's replication, for the
// election: offset is its replication offset and dataAge how long its
// link to its master has been down or silent (0 when current).
func (c *Core) ReplicationStatus(offset uint64, dataAge time.Duration) {
	c.self().replOffset = offset
	c.dataAge = dataAge
}

// Failover starts CLUSTER FAILOVER on this replica.
func (c *Core) Failover(now time.Duration, mode failover.Mode) (Ready, error) {
	c.begin(now)
	in, err := c.elect.StartManual(now, electionView{c}, mode)
	if err != nil {
		return c.finish(), err
	}
	c.applyIntents(in)
	c.wantTick = true
	return c.finish(), nil
}

// WritesPaused tells a master that its writes are paused for a manual
// failover, with every earlier write in the replication stream up to
// offset.
func (c *Core) WritesPaused(now time.Duration, offset uint64) Ready {
	c.begin(now)
	c.self().replOffset = max(c.self().replOffset, offset)
	c.applyIntents(c.elect.WritesPaused(now, offset))
	c.wantTick = true
	return c.finish()
}

// Election returns the state of this node's election: the epoch of the
// last attempt, whether its requests went out, and the votes it holds.
func (c *Core) Election() (epoch uint64, sent bool, votes int) {
	epoch, sent = c.elect.Epoch()
	return epoch, sent, c.elect.Votes()
}

func (c *Core) tickElection() {
	c.applyIntents(c.elect.Tick(c.now, electionView{c}, c.self().replOffset, c.dataAge, c.rng.Uint64()))
}

func (c *Core) failoverEvent(e FailoverEvent) {
	c.ready.Failover = append(c.ready.Failover, e)
}

// applyIntents carries out what the election asked for.
func (c *Core) applyIntents(in []failover.Intent) {
	for i := range in {
		it := &in[i]
		switch it.Kind {
		case failover.RequestVotes:
			c.requestVotes(it.Node, it.Epoch, it.Force)
		case failover.Promote:
			c.promote(it.Node, it.Epoch)
			c.failoverEvent(FailoverEvent{Kind: FailoverPromoted, Node: it.Node, Epoch: it.Epoch})
		case failover.Takeover:
			c.currentEpoch++
			epoch := c.currentEpoch
			c.promote(it.Node, epoch)
			c.failoverEvent(FailoverEvent{Kind: FailoverTakeover, Node: it.Node, Epoch: epoch})
		case failover.SendMFStart:
			if r := c.lookup(it.Node); r != nil {
				c.send(r, c.newMessage(wire.TypeMFStart))
			}
		case failover.PauseWrites:
			c.ready.PauseWrites = it.Until
		case failover.ResumeWrites:
			c.ready.ResumeWrites = true
		case failover.SendPaused:
			if r := c.lookup(it.Node); r != nil {
				m := c.newMessage(wire.TypePing)
				if off, ok := c.elect.PausedOffset(); ok {
					m.Header.Flags |= wire.FlagPaused
					m.Header.ReplOffset = off
				}
				c.send(r, m)
			}
		case failover.Note:
			c.failoverEvent(FailoverEvent{Kind: FailoverNote, Node: it.Node, Epoch: it.Epoch, Reason: it.Reason})
		}
	}
}

// requestVotes raises currentEpoch to epoch, makes it durable before the
// requests leave (Ready.Persist), and asks every master that serves slots
// and has not voted yet.
func (c *Core) requestVotes(master wire.NodeID, epoch uint64, force bool) {
	if epoch > c.currentEpoch {
		c.currentEpoch = epoch
		c.event(EventEpochChanged, c.cfg.ID)
	}
	c.markPersist()
	mr := c.lookup(master)
	if mr == nil {
		return
	}
	var ranges []wire.SlotRange
	ranges = electionView{c}.SlotsOf(master, ranges)
	for i := 1; i < len(c.records); i++ {
		r := &c.records[i]
		if !c.servesSlots(r) || c.elect.HasVoted(r.id) {
			continue
		}
		m := c.newMessage(wire.TypeAuthRequest)
		m.Epoch, m.MasterEpoch = epoch, mr.configEpoch
		if force {
			m.AuthFlags = wire.AuthForceAck
		}
		m.Claims = append(m.Claims, wire.SlotClaim{Owner: master, ConfigEpoch: mr.configEpoch, Version: mr.version, Ranges: ranges})
		c.send(r, m)
	}
}

// promote makes this replica the master of its master's slots at
// configEpoch epoch and tells every node at once. Its old master's other
// replicas follow it when they see the claim (followTaker).
func (c *Core) promote(master wire.NodeID, epoch uint64) {
	s := c.self()
	if s.flags&wire.FlagMaster != 0 {
		return
	}
	slots := c.table.SlotsOf(ring.NodeID(master))
	c.hashIn(s, -1)
	s.flags = s.flags&^wire.FlagReplica | wire.FlagMaster
	s.master = wire.NodeID{}
	c.hashIn(s, +1)
	c.membershipGen++
	c.currentEpoch = max(c.currentEpoch, epoch)
	c.setSelfConfigEpoch(epoch)
	c.own.Union(&slots)
	c.event(EventRoleChanged, c.cfg.ID)
	c.publishSelf(true)
	c.broadcastSelf()
}

// broadcastSelf sends this node's record and claim to every node in a
// small cluster (Redis broadcasts a PONG after a failover); at scale the
// eager push and gossip carry it.
func (c *Core) broadcastSelf() {
	if !c.smallCluster() {
		return
	}
	s := c.self()
	for i := 1; i < len(c.records); i++ {
		m := c.newMessage(wire.TypePong)
		m.Gossip = append(m.Gossip, s.wireRecord())
		if cl := c.claims[s.id]; cl != nil {
			m.Claims = append(m.Claims, cl.wire())
		}
		c.send(&c.records[i], m)
	}
}

// receiveAuthRequest answers a vote request: a granted vote is recorded,
// made durable (Ready.Persist) and only then announced with AUTHACK.
func (c *Core) receiveAuthRequest(from *record, m *wire.Message) {
	req := failover.Request{
		Candidate: m.Header.Sender, Master: m.Header.Master, Epoch: m.Epoch,
		MasterEpoch: m.MasterEpoch, Force: m.AuthFlags&wire.AuthForceAck != 0,
	}
	if len(m.Claims) > 0 {
		req.Slots = m.Claims[0].Ranges
	} else {
		req.Slots = electionView{c}.SlotsOf(req.Master, nil)
	}
	ok, why := false, failover.RefuseWaking
	if c.now >= c.voteHold || c.masters[c.cfg.ID] == 0 {
		ok, why = c.ballot.Decide(c.now, c.elect.Config(), electionView{c}, req)
	}
	c.failoverEvent(FailoverEvent{Kind: FailoverVote, Node: req.Candidate, Epoch: req.Epoch, Granted: ok, Reason: why})
	if !ok {
		return
	}
	c.lastVoteEpoch = c.ballot.LastEpoch()
	c.markPersist()
	ack := c.newMessage(wire.TypeAuthAck)
	ack.Epoch = req.Epoch
	c.send(from, ack)
}

// holdVotes stops this master from voting for two node timeouts after it
// restarts from saved state or wakes from a stall (no tick for over half a
// node timeout). Such a node may still believe it serves slots that a
// replica took in an election it slept through; its vote would then count,
// for a candidate just as unaware, toward a second majority in an epoch
// the real voters already spent. The hold gives the newer claims time to
// arrive (they are pushed to every node at once), without asking.
func (c *Core) holdVotes() {
	c.voteHold = max(c.voteHold, c.now+2*c.cfg.NodeTimeout)
}

// receiveAuthAck counts a vote for this node's election.
func (c *Core) receiveAuthAck(from *record, m *wire.Message) {
	if c.elect.Ack(electionView{c}, from.id, m.Epoch) {
		c.failoverEvent(FailoverEvent{Kind: FailoverAck, Node: from.id, Epoch: m.Epoch})
		c.applyIntents(c.elect.AfterVotes(electionView{c}))
	}
}

// followTaker makes a replica whose master lost its last slots to taker
// follow taker, as Redis's replicas of a failed-over master do.
func (c *Core) followTaker(oldMaster, taker wire.NodeID) {
	s := c.self()
	if s.flags&wire.FlagReplica == 0 || s.master != oldMaster || taker == c.cfg.ID || c.masters[oldMaster] > 0 {
		return
	}
	if r := c.lookup(taker); r == nil || r.flags&wire.FlagMaster == 0 && taker != c.cfg.ID {
		return
	}
	c.becomeReplica(taker)
	c.publishSelf(true)
}

// restoreBallot rebuilds the voting record from saved state.
func (c *Core) restoreBallot(st *State) {
	c.ballot.Floor = st.VoteFloor
	if len(st.Votes) == 0 {
		// A file from before votes were listed: nothing at or below its
		// last vote may be granted again.
		c.ballot.Floor = max(c.ballot.Floor, st.LastVoteEpoch)
	}
	for _, v := range st.Votes {
		c.ballot.Votes = append(c.ballot.Votes, failover.Vote{Epoch: v.Epoch, Candidate: v.Candidate, Master: v.Master, Restored: true})
	}
	slices.SortFunc(c.ballot.Votes, func(a, b failover.Vote) int {
		switch {
		case a.Epoch < b.Epoch:
			return -1
		case a.Epoch > b.Epoch:
			return 1
		}
		return 0
	})
}

// SavedVote is one granted vote in State.
type SavedVote struct {
	Epoch     uint64
	Candidate wire.NodeID
	Master    wire.NodeID
}

func (c *Core) savedVotes() []SavedVote {
	out := make([]SavedVote, 0, len(c.ballot.Votes))
	for _, v := range c.ballot.Votes {
		out = append(out, SavedVote{Epoch: v.Epoch, Candidate: v.Candidate, Master: v.Master})
	}
	return out
}
