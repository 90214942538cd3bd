package failover

import (
	"bytes"
	"slices"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// Election is the failover state of one node: as a replica, its candidacy
// and its side of a manual failover; as a master, its side of a replica's
// manual failover. The zero value is idle.
type Election struct {
	cfg Config

	// candidacy
	scheduled bool          // an attempt is scheduled or running
	startAt   time.Duration // when the attempt began
	sendAt    time.Duration // when the requests may leave
	sent      bool
	lastSend  time.Duration
	epoch     uint64
	rank      int
	votes     []wire.NodeID
	need      int           // the majority when the round's requests went out
	retryAt   time.Duration // when a stalled round moves to a fresh epoch
	retries   int           // such moves in this attempt
	won       bool
	stale     bool // data too old; reported once per attempt

	// manual failover, replica side
	mfMode     Mode
	mfEnd      time.Duration // 0: no manual failover
	mfCanStart bool
	mfOffset   uint64
	mfOffKnown bool

	// manual failover, master side
	mfReplica  wire.NodeID
	pausedEnd  time.Duration // 0: writes not paused
	pausedAt   uint64
	pausedSeen bool // the runtime reported the offset it paused at
	lastPaused time.Duration

	scratch []Node
	fails   []wire.NodeID
	out     []Intent
}

// NewElection returns an idle election.
func NewElection(cfg Config) *Election { return &Election{cfg: cfg.WithDefaults()} }

// Config returns the configuration in force.
func (e *Election) Config() Config { return e.cfg }

// Epoch returns the epoch of the current or last attempt and whether its
// requests went out.
func (e *Election) Epoch() (uint64, bool) { return e.epoch, e.sent }

// Votes returns how many votes the current attempt holds.
func (e *Election) Votes() int { return len(e.votes) }

// Manual reports whether a manual failover is in progress on this replica.
func (e *Election) Manual() (Mode, bool) { return e.mfMode, e.mfEnd != 0 }

// Paused reports whether this master's writes are paused for a manual
// failover, and until when.
func (e *Election) Paused() (time.Duration, bool) { return e.pausedEnd, e.pausedEnd != 0 }

func (e *Election) emit(k IntentKind, id wire.NodeID, epoch uint64) {
	e.out = append(e.out, Intent{Kind: k, Node: id, Epoch: epoch})
}

func (e *Election) note(reason string, id wire.NodeID, epoch uint64) {
	e.out = append(e.out, Intent{Kind: Note, Node: id, Epoch: epoch, Reason: reason})
}

// reset forgets the candidacy.
func (e *Election) reset() {
	e.scheduled, e.sent, e.won, e.stale = false, false, false, false
	e.retries, e.need = 0, 0
	e.votes = e.votes[:0]
}

// resetManual ends a manual failover on either side; a paused master
// resumes its writes.
func (e *Election) resetManual() {
	if e.pausedEnd != 0 {
		e.out = append(e.out, Intent{Kind: ResumeWrites, Node: e.mfReplica})
	}
	e.mfMode, e.mfEnd, e.mfCanStart, e.mfOffset, e.mfOffKnown = ModeAuto, 0, false, 0, false
	e.mfReplica, e.pausedEnd, e.pausedAt, e.pausedSeen = wire.NodeID{}, 0, 0, false
}

// StartManual begins CLUSTER FAILOVER on this replica. TAKEOVER returns a
// Takeover intent at once; FORCE starts an election with no delay and no
// catch-up; the default mode asks the master to pause first.
func (e *Election) StartManual(now time.Duration, cl Cluster, mode Mode) ([]Intent, error) {
	e.out = e.out[:0]
	self, _ := cl.Lookup(cl.Self())
	if self.IsMaster || self.Master.IsZero() {
		return nil, ErrNotReplica
	}
	master, ok := cl.Lookup(self.Master)
	if !ok {
		return nil, ErrMasterUnknown
	}
	if mode == ModeDefault && (master.Failed || master.PFail) {
		return nil, ErrMasterDown
	}
	e.resetManual()
	e.reset()
	e.mfMode = mode
	switch mode {
	case ModeTakeover:
		e.note(NoteManualStarted, master.ID, 0)
		e.emit(Takeover, master.ID, 0)
		e.mfMode = ModeAuto
		return e.out, nil
	case ModeForce:
		e.mfEnd = now + e.cfg.ManualTimeout
		e.mfCanStart = true
		e.note(NoteManualStarted, master.ID, 0)
		e.tick(now, cl, self.ReplOffset, 0, 0)
	default:
		e.mfEnd = now + e.cfg.ManualTimeout
		e.note(NoteManualStarted, master.ID, 0)
		e.emit(SendMFStart, master.ID, 0)
	}
	return e.out, nil
}

// MFStart handles a replica's request to pause for its manual failover.
// It is ignored unless from is a replica of this master.
func (e *Election) MFStart(now time.Duration, cl Cluster, from wire.NodeID) []Intent {
	e.out = e.out[:0]
	self, _ := cl.Lookup(cl.Self())
	r, ok := cl.Lookup(from)
	if !self.IsMaster || !ok || r.Master != self.ID {
		return nil
	}
	e.resetManual()
	e.mfReplica = from
	e.mfEnd = now + e.cfg.ManualTimeout
	e.pausedEnd = now + 2*e.cfg.ManualTimeout
	e.out = append(e.out, Intent{Kind: PauseWrites, Node: from, Until: e.pausedEnd})
	e.note(NoteManualStarted, from, 0)
	return e.out
}

// WritesPaused tells a master that its writes are paused and every write
// before the pause is in the replication stream up to offset.
func (e *Election) WritesPaused(now time.Duration, offset uint64) []Intent {
	e.out = e.out[:0]
	if e.pausedEnd == 0 {
		return nil
	}
	e.pausedAt, e.pausedSeen = offset, true
	e.lastPaused = now
	e.emit(SendPaused, e.mfReplica, 0)
	return e.out
}

// PausedOffset returns the offset a paused master reports, and whether it
// is paused and knows it.
func (e *Election) PausedOffset() (uint64, bool) { return e.pausedAt, e.pausedEnd != 0 && e.pausedSeen }

// MasterPaused handles a header from this replica's master with FlagPaused
// during a manual failover: offset is what the replica must reach.
func (e *Election) MasterPaused(offset uint64) {
	if e.mfEnd != 0 && e.mfMode == ModeDefault && !e.mfOffKnown {
		e.mfOffset, e.mfOffKnown = offset, true
	}
}

// Ack counts a vote for epoch from voter. It reports whether it counted.
func (e *Election) Ack(cl Cluster, voter wire.NodeID, epoch uint64) bool {
	if !e.sent || epoch != e.epoch || slices.Contains(e.votes, voter) {
		return false
	}
	if v, ok := cl.Lookup(voter); !ok || !v.IsMaster || v.Slots == 0 {
		return false
	}
	e.votes = append(e.votes, voter)
	return true
}

// HasVoted reports whether voter already voted in the current attempt.
func (e *Election) HasVoted(voter wire.NodeID) bool { return slices.Contains(e.votes, voter) }

// Tick advances the election. offset is this node's replication offset,
// dataAge how long ago it last heard from its master's replication link
// (0 when the link is up and current), and rnd a random number from the
// caller's seeded source for the delay's jitter.
func (e *Election) Tick(now time.Duration, cl Cluster, offset uint64, dataAge time.Duration, rnd uint64) []Intent {
	e.out = e.out[:0]
	e.tickMaster(now, cl)
	e.tick(now, cl, offset, dataAge, rnd)
	return e.out
}

// tickMaster runs the master's side of a manual failover: it resends the
// paused offset and gives up when the failover takes too long.
func (e *Election) tickMaster(now time.Duration, cl Cluster) {
	if e.pausedEnd == 0 {
		return
	}
	self, _ := cl.Lookup(cl.Self())
	if !self.IsMaster || now >= e.mfEnd {
		if self.IsMaster {
			e.note(NoteManualAborted, e.mfReplica, 0)
		}
		e.resetManual()
		return
	}
	if e.pausedSeen && now-e.lastPaused >= e.cfg.resendEvery() {
		e.lastPaused = now
		e.emit(SendPaused, e.mfReplica, 0)
	}
}

func (e *Election) tick(now time.Duration, cl Cluster, offset uint64, dataAge time.Duration, rnd uint64) {
	if e.mfEnd != 0 && e.pausedEnd == 0 && now >= e.mfEnd {
		e.note(NoteManualAborted, cl.Self(), e.epoch)
		e.resetManual()
		if !e.won {
			e.reset()
		}
	}
	self, _ := cl.Lookup(cl.Self())
	if self.IsMaster || self.Master.IsZero() {
		e.reset()
		if e.mfEnd != 0 && e.pausedEnd == 0 {
			e.resetManual()
		}
		return
	}
	master, ok := cl.Lookup(self.Master)
	manual := e.mfEnd != 0
	if manual && !e.mfCanStart && e.mfOffKnown && offset >= e.mfOffset {
		e.mfCanStart = true
		e.note(NoteManualReady, master.ID, 0)
	}
	if !ok || master.Slots == 0 || !(master.Failed || manual && e.mfCanStart) {
		return
	}
	if self.NoFailover && !manual {
		return
	}
	cfg := &e.cfg
	if !manual && dataAge > cfg.NodeTimeout {
		if lim := cfg.maxDataAge(); lim >= 0 && dataAge-cfg.NodeTimeout > lim {
			if !e.stale {
				e.stale = true
				e.note(NoteDataTooOld, master.ID, 0)
			}
			return
		}
	}
	if !e.scheduled || now-e.startAt > cfg.retryAfter() {
		e.reset()
		e.scheduled, e.startAt = true, now
		e.rank = e.rankOf(cl, self, offset)
		e.sendAt = now
		if !manual {
			e.sendAt += time.Duration(e.rank) * cfg.rankDelay()
			if e.rank > 0 {
				e.sendAt += time.Duration(rnd % uint64(cfg.rankDelay()/2+1))
			}
		}
	}
	if e.won {
		return
	}
	if !e.sent && !manual {
		if r := e.rankOf(cl, self, offset); r > e.rank {
			e.sendAt += time.Duration(r-e.rank) * cfg.rankDelay()
			e.rank = r
		}
	}
	if now < e.sendAt {
		return
	}
	if now-e.sendAt > cfg.authTimeout() {
		if e.sent {
			e.note(NoteElectionExpired, master.ID, e.epoch)
			e.sent = false
			e.votes = e.votes[:0]
		}
		return
	}
	need := e.majority(cl)
	if e.sent && !manual && len(e.votes) < need && now >= e.retryAt && e.retries < maxQuickRetries {
		// The round stalled: most likely another shard's candidate took
		// the same epoch (their views of the FAIL masters or of
		// currentEpoch differed) and the voters split. Ask again in a
		// fresh epoch now rather than after the auth timeout: the voters
		// that granted this candidate may grant it again, and a sibling
		// with a worse rank is still waiting.
		e.retries++
		e.note(NoteElectionRetried, master.ID, e.epoch)
		e.sent = false
	}
	switch {
	case !e.sent:
		e.epoch = cl.CurrentEpoch() + 1
		if !manual {
			// Shards failing together take different epochs, in the
			// order of their failed masters' IDs, so that their
			// elections do not collide on one epoch and starve.
			e.fails = cl.FailedMasters(e.fails[:0])
			if i := slices.Index(e.fails, master.ID); i > 0 {
				e.epoch += uint64(i)
			}
		}
		e.sent, e.lastSend = true, now
		e.need = cl.Voters()/2 + 1
		need = e.need
		e.retryAt = now + cfg.quickRetry() + time.Duration((rnd>>32)%uint64(cfg.quickRetry()/2+1))
		e.votes = e.votes[:0]
		e.note(NoteElectionStarted, master.ID, e.epoch)
		e.out = append(e.out, Intent{Kind: RequestVotes, Node: master.ID, Epoch: e.epoch, Force: manual})
	case now-e.lastSend >= cfg.resendEvery():
		e.lastSend = now
		e.out = append(e.out, Intent{Kind: RequestVotes, Node: master.ID, Epoch: e.epoch, Force: manual})
	}
	if len(e.votes) >= need {
		e.won = true
		e.note(NoteElectionWon, master.ID, e.epoch)
		e.emit(Promote, master.ID, e.epoch)
		e.resetManual()
	}
}

// rankOf counts the siblings that should go first: those with more data,
// and those with as much and a smaller ID.
func (e *Election) rankOf(cl Cluster, self Node, offset uint64) int {
	e.scratch = cl.Replicas(self.Master, e.scratch[:0])
	rank := 0
	for _, r := range e.scratch {
		if r.ID == self.ID || r.NoFailover {
			continue
		}
		if r.ReplOffset > offset || r.ReplOffset == offset && bytes.Compare(r.ID[:], self.ID[:]) < 0 {
			rank++
		}
	}
	return rank
}

// majority is how many votes win the current round: a majority of the
// masters that serve slots, never fewer than when the round's requests went
// out. A view caught between a promotion's claim and the new master's role
// (the old master no longer serves slots, the new one is not yet a master)
// counts one voter short; a round that started with the full count must
// not win on that transient.
func (e *Election) majority(cl Cluster) int { return max(e.need, cl.Voters()/2+1) }

// AfterVotes re-checks for a majority right after an Ack, so the winner
// does not wait for its next tick.
func (e *Election) AfterVotes(cl Cluster) []Intent {
	e.out = e.out[:0]
	if e.sent && !e.won && len(e.votes) >= e.majority(cl) {
		self, _ := cl.Lookup(cl.Self())
		e.won = true
		e.note(NoteElectionWon, self.Master, e.epoch)
		e.emit(Promote, self.Master, e.epoch)
		e.resetManual()
	}
	return e.out
}
