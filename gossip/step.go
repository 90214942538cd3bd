package gossip

import (
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// Step handles one decoded bus message. m and its slices may alias the
// decoder's buffers; the core copies what it keeps.
func (c *Core) Step(now time.Duration, m *wire.Message) Ready {
	c.begin(now)
	c.stats.Received[m.Type&15]++
	h := &m.Header
	if h.Sender == c.cfg.ID || h.Sender.IsZero() {
		c.stats.Dropped++
		return c.finish()
	}
	n := c.lookup(h.Sender)
	if n == nil {
		// A reset node that knows no other takes a new one only from a
		// MEET or the answer to its own, as Redis takes unknown senders
		// only from MEET: after CLUSTER RESET it must stay alone until
		// an operator meets it, not be pulled back into its old cluster
		// by the PINGs its old peers keep sending to its address. A
		// fresh node still takes a PING's sender: when its own MEET's
		// handshake timed out (a busy seed node while a hundred join),
		// the PINGs of the nodes that learned of it are its way in.
		alone := len(c.records) == 1 && c.resetAlone
		switch m.Type {
		case wire.TypePing:
			if !alone {
				n = c.addFromHeader(h)
			}
		case wire.TypeMeet:
			// Only an operator's CLUSTER MEET sends MEET, and it
			// overrides FORGET's blacklist here, as in Redis, where a
			// MEET from an unknown sender starts a handshake whatever
			// the blacklist holds.
			delete(c.blacklist, h.Sender)
			n = c.addFromHeader(h)
			if n != nil {
				c.noteMet(h.Sender)
				c.resetAlone = false
			}
		case wire.TypePong:
			answer := c.dropHandshake(h.Addr)
			if answer {
				// The answer to our own MEET: taken even from a
				// forgotten ID, as Redis's handshake takes it.
				delete(c.blacklist, h.Sender)
				c.resetAlone = false
			}
			if (answer || !alone) && !c.blacklisted(h.Sender) {
				n = c.addFromHeader(h)
				if n != nil {
					c.startSync(n)
				}
			}
		}
		if n == nil {
			c.stats.Dropped++
			return c.finish()
		}
	}
	if m.Type != wire.TypeMeet {
		c.confirmMet(h.Sender)
	}
	c.observeHeader(h)
	if h.Flags&wire.FlagPaused != 0 && h.Sender == c.self().master {
		c.elect.MasterPaused(h.ReplOffset)
		c.wantTick = true
	}
	if n = c.lookup(h.Sender); n == nil {
		return c.finish()
	}
	switch m.Type {
	case wire.TypePing, wire.TypeMeet:
		c.receiveGossip(h.Sender, m)
		if n = c.lookup(h.Sender); n != nil {
			pong := c.newMessage(wire.TypePong)
			c.fillGossip(pong)
			c.send(n, pong)
		}
	case wire.TypePong:
		c.dropHandshake(h.Addr) // a MEET to a FAIL node's address that the same node answered
		if p := c.peers[h.Sender]; p != nil {
			p.pinged = false
			p.pongRecv = now
			c.heardFrom(p)
		}
		c.receiveGossip(h.Sender, m)
	case wire.TypeFail:
		c.receiveFail(m.Subject, m.SubjectVersion, time.Duration(m.FailAge)*time.Millisecond)
	case wire.TypeFailReport:
		if r := c.lookup(m.Subject); r != nil && m.SubjectVersion >= r.version {
			c.addReport(m.Subject, h.Sender, m.Report)
		}
	case wire.TypeUpdate:
		for i := range m.Claims {
			c.receiveClaim(&m.Claims[i], true)
		}
		// We may already have held that claim while still claiming slots
		// it beats (a SETSLOT NODE at a low epoch): now let them go.
		if len(m.Claims) == 1 {
			if lost := c.ownNotHeld(); !lost.IsEmpty() {
				c.selfLostSlots(m.Claims[0].Owner)
			}
		}
	case wire.TypeSync:
		c.receiveSync(n, m)
	case wire.TypeSyncData:
		c.receiveSyncData(n, m)
	case wire.TypeAuthRequest:
		c.receiveAuthRequest(n, m)
	case wire.TypeAuthAck:
		c.receiveAuthAck(n, m)
	case wire.TypeMFStart:
		c.applyIntents(c.elect.MFStart(now, electionView{c}, h.Sender))
		c.wantTick = true
	default:
		c.stats.Dropped++
	}
	if n = c.lookup(h.Sender); n != nil {
		c.maybeUpdate(n)
	}
	return c.finish()
}

// receiveGossip merges a gossip section and its claims. Entries double as
// failure reports when their sender is a voter for the subject.
func (c *Core) receiveGossip(from wire.NodeID, m *wire.Message) {
	for i := range m.Gossip {
		w := &m.Gossip[i]
		c.mergeRecord(w, true)
		if w.ID == c.cfg.ID || w.ID == from {
			continue
		}
		if r := c.lookup(w.ID); r != nil && w.Version >= r.version {
			failing := w.Flags&(wire.FlagPFail|wire.FlagFail) != 0
			if failing || len(c.peerReports(w.ID)) > 0 {
				c.addReport(w.ID, from, failing)
			}
		}
	}
	for i := range m.Claims {
		c.receiveClaim(&m.Claims[i], true)
	}
}

func (c *Core) peerReports(id wire.NodeID) []report {
	if p := c.peers[id]; p != nil {
		return p.reports
	}
	return nil
}
