package sim

import (
	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// electionLog is what the simulator has seen of elections, to check their
// safety rules on every step rather than only after healing.
type electionLog struct {
	votes   map[voteKey]wire.NodeID // voter and epoch -> candidate
	winners map[uint64]wire.NodeID  // epoch -> the node promoted with it
	won     int
	granted int
}

type voteKey struct {
	voter wire.NodeID
	epoch uint64
}

// checkFailover records node i's votes and promotions and reports a voter
// that granted one epoch twice, or two nodes elected in one epoch. Votes
// are remembered across restarts: the rule must hold for the durable
// voter, not for one run of its process.
func (s *Sim) checkFailover(i int, r *gossip.Ready) {
	if len(r.Failover) == 0 {
		return
	}
	l := &s.elect
	if l.votes == nil {
		l.votes = make(map[voteKey]wire.NodeID)
		l.winners = make(map[uint64]wire.NodeID)
	}
	id := s.nodes[i].id
	for _, e := range r.Failover {
		switch e.Kind {
		case gossip.FailoverVote:
			if !e.Granted {
				continue
			}
			l.granted++
			k := voteKey{id, e.Epoch}
			if prev, ok := l.votes[k]; ok {
				s.violate("node %d voted twice in epoch %d: for %s and for %s", i, e.Epoch, prev, e.Node)
			}
			l.votes[k] = e.Node
		case gossip.FailoverPromoted:
			l.won++
			if prev, ok := l.winners[e.Epoch]; ok && prev != id {
				s.violate("two nodes elected in epoch %d: %s and node %d", e.Epoch, prev, i)
			}
			l.winners[e.Epoch] = id
		}
	}
}

// Elections returns how many votes were granted and how many elections
// were won so far.
func (s *Sim) Elections() (granted, won int) { return s.elect.granted, s.elect.won }

// pauseWrites plays a runtime's part in a manual failover: node i pauses
// its (simulated) writes and reports the offset it paused at.
func (s *Sim) pauseWrites(i int) {
	n := &s.nodes[i]
	r := n.core.WritesPaused(s.CoreNow(), 0)
	s.handle(i, &r)
}
