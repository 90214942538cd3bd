package failover

import (
	"slices"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// maxVotes bounds the grants a Ballot remembers one by one; older ones are
// summarised by Floor.
const maxVotes = 64

// Vote is one granted vote.
type Vote struct {
	Epoch     uint64
	Candidate wire.NodeID
	Master    wire.NodeID // the master the candidate replaces
	// At is when it was granted on this node's clock; restored votes
	// carry Restored instead, since a restart starts a new clock.
	At       time.Duration
	Restored bool
}

// Ballot is a master's voting record: the durable part is Floor and Votes.
// Unlike Redis, which votes only in its own currentEpoch, a Ballot may
// grant an epoch below one it already granted, as long as it never grants
// one epoch twice: shards failing together use distinct epochs, and a
// voter that saw a higher one first must still be able to vote for the
// lower.
type Ballot struct {
	// Floor is the highest epoch that may have been granted and is no
	// longer listed in Votes: nothing at or below it is granted.
	Floor uint64
	// Votes are the grants above Floor, in ascending epoch order.
	Votes []Vote
}

// Request is one AUTHREQUEST as the voter sees it.
type Request struct {
	Candidate wire.NodeID
	Master    wire.NodeID // the candidate's master, from its header
	// Epoch is the election's epoch; MasterEpoch the master's configEpoch
	// as the candidate knows it.
	Epoch, MasterEpoch uint64
	Force              bool // manual failover: the master need not be FAIL
	Slots              []wire.SlotRange
}

// Refusal reasons, for logs and metrics.
const (
	RefuseNotVoter     = "this node serves no slots"
	RefuseEpochUsed    = "already voted in this epoch"
	RefuseNotReplica   = "the candidate is not a replica"
	RefuseUnknownMastr = "the candidate's master is unknown"
	RefuseMasterAlive  = "the master is not FAIL"
	RefuseRecentVote   = "voted for another replica of this master recently"
	RefuseStaleSlots   = "a slot has a newer configEpoch"
	RefuseStaleEpoch   = "the epoch is not newer than the master's"
	RefuseWaking       = "this node just restarted or resumed and may not know the latest slot owners"
)

// LastEpoch returns the highest epoch granted (or summarised by Floor).
func (b *Ballot) LastEpoch() uint64 {
	if n := len(b.Votes); n > 0 {
		return max(b.Floor, b.Votes[n-1].Epoch)
	}
	return b.Floor
}

func (b *Ballot) used(epoch uint64) bool {
	if epoch <= b.Floor {
		return true
	}
	_, found := slices.BinarySearchFunc(b.Votes, epoch, func(v Vote, e uint64) int {
		switch {
		case v.Epoch < e:
			return -1
		case v.Epoch > e:
			return 1
		}
		return 0
	})
	return found
}

// Decide applies the voter's rules to req and records the vote when it is
// granted. The caller must make the Ballot durable before it announces the
// vote. It returns the refusal reason when it refuses.
func (b *Ballot) Decide(now time.Duration, cfg Config, cl Cluster, req Request) (bool, string) {
	cfg = cfg.WithDefaults()
	self, _ := cl.Lookup(cl.Self())
	if !self.IsMaster || self.Slots == 0 {
		return false, RefuseNotVoter
	}
	if b.used(req.Epoch) {
		return false, RefuseEpochUsed
	}
	if cand, ok := cl.Lookup(req.Candidate); ok && cand.IsMaster || req.Master.IsZero() {
		return false, RefuseNotReplica
	}
	master, ok := cl.Lookup(req.Master)
	if !ok {
		return false, RefuseUnknownMastr
	}
	if !master.Failed && !req.Force {
		return false, RefuseMasterAlive
	}
	if req.Epoch <= req.MasterEpoch {
		return false, RefuseStaleEpoch
	}
	for i := len(b.Votes) - 1; i >= 0; i-- {
		v := &b.Votes[i]
		if v.Master == req.Master && v.Candidate != req.Candidate && !v.Restored && now-v.At < 2*cfg.NodeTimeout {
			return false, RefuseRecentVote
		}
	}
	for _, r := range req.Slots {
		for s := int(r.Start); s <= int(r.End); s++ {
			if e := cl.SlotEpoch(uint16(s)); e > req.MasterEpoch || e >= req.Epoch {
				return false, RefuseStaleSlots
			}
		}
	}
	b.grant(Vote{Epoch: req.Epoch, Candidate: req.Candidate, Master: req.Master, At: now})
	return true, ""
}

// grant inserts v in epoch order, folding the oldest grant into Floor when
// the list is full.
func (b *Ballot) grant(v Vote) {
	i, _ := slices.BinarySearchFunc(b.Votes, v.Epoch, func(x Vote, e uint64) int {
		if x.Epoch < e {
			return -1
		}
		return 1
	})
	b.Votes = slices.Insert(b.Votes, i, v)
	if len(b.Votes) > maxVotes {
		b.Floor = max(b.Floor, b.Votes[0].Epoch)
		b.Votes = slices.Delete(b.Votes, 0, 1)
	}
}
