package migrate

import (
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// Import is the target side of one atomic migration. Its one rule for
// safety: it claims the slots only on a grant from the source, only after
// it applied the whole stream up to the paused offset, and only while it
// still holds the job; once it drops the job (timeout, lost connection,
// abort, restart) it can never claim for it again, and that is what its
// ABORTED answer promises the source.
type Import struct {
	cfg    Config
	name   string
	source wire.NodeID
	self   wire.NodeID
	slots  Slots
	epoch  uint64
	state  State

	created, updated, lastHeard time.Duration
	lastAck, lastReq            time.Duration
	keys, bytes, applied        uint64
	pausedOff                   uint64
	pauseKnown                  bool
	message                     string
}

func newImport(cfg Config, now time.Duration, self wire.NodeID, name string, source wire.NodeID, slots Slots, epoch uint64) (*Import, []Intent) {
	m := &Import{cfg: cfg, name: name, source: source, self: self, slots: slots, epoch: epoch,
		state: ReceivingSnapshot, created: now, updated: now, lastHeard: now, lastAck: now}
	return m, []Intent{
		{Kind: Persist, Job: name, State: m.hard()},
		m.note(NoteStarted),
	}
}

// restoreImport settles an import found in the record at a restart. The
// claim is made durable before the record is removed, so a record whose
// slots this node owns above the start epoch is a finished import;
// anything else is dropped: the target never claims after a restart.
func restoreImport(cfg Config, now time.Duration, cl Cluster, h *HardState) (*Import, []Intent) {
	m := &Import{cfg: cfg, name: h.Name, source: h.Peer, self: cl.Self(), slots: h.Slots, epoch: h.Epoch,
		created: now, updated: now, lastHeard: now}
	if m.claimed(cl) {
		m.state = Success
		return m, []Intent{{Kind: Persist, Job: m.name}, m.note(NoteFinished)}
	}
	m.state, m.message = Failed, ReasonRestarted
	return m, []Intent{
		{Kind: DropImported, Job: m.name, Node: m.source, Slots: m.slots},
		{Kind: Persist, Job: m.name},
		m.note(ReasonRestarted),
	}
}

func (m *Import) note(reason string) Intent {
	return Intent{Kind: Note, Job: m.name, Node: m.source, Slots: m.slots, Reason: reason}
}

func (m *Import) hard() *HardState {
	return &HardState{Name: m.name, Op: OpImport, Peer: m.source, Slots: m.slots, Epoch: m.epoch}
}

// claimed reports whether this node's view binds every slot to itself at
// an epoch above the start epoch.
func (m *Import) claimed(cl Cluster) bool {
	return m.slots.each(func(s uint16) bool {
		o, ep := cl.SlotOwner(s)
		return o == m.self && ep > m.epoch
	})
}

// Name returns the migration's name.
func (m *Import) Name() string { return m.name }

// State returns where the import stands.
func (m *Import) State() State { return m.state }

// Slots returns the slots being imported.
func (m *Import) Slots() Slots { return m.slots }

// Applied returns the stream offset applied so far.
func (m *Import) Applied() uint64 { return m.applied }

// Status returns the import's GETSLOTMIGRATIONS row.
func (m *Import) Status() Status {
	return Status{Name: m.name, Operation: OpImport, Slots: m.slots, Source: m.source, Target: m.self,
		State: m.state, Created: m.created, Updated: m.updated, LastAck: m.lastHeard,
		Keys: m.keys, Bytes: m.bytes, Message: m.message}
}

// Heard reports traffic from the source (a PING, a record, a control
// command): the source is alive.
func (m *Import) Heard(now time.Duration) {
	if !m.state.Done() {
		m.lastHeard = now
	}
}

// SnapshotEOF handles SYNCSLOTS SNAPSHOT-EOF: the writes follow.
func (m *Import) SnapshotEOF(now time.Duration) []Intent {
	if m.state != ReceivingSnapshot {
		return nil
	}
	m.state, m.updated, m.lastHeard = WaitingForPaused, now, now
	return m.maybeRequest(now)
}

// Apply reports that the stream is applied up to offset, with keys and
// bytes applied in all.
func (m *Import) Apply(now time.Duration, offset, keys, bytes uint64) []Intent {
	if m.state.Done() {
		return nil
	}
	m.lastHeard = now
	m.applied = max(m.applied, offset)
	m.keys, m.bytes = max(m.keys, keys), max(m.bytes, bytes)
	return m.maybeRequest(now)
}

// SourcePaused handles SYNCSLOTS PAUSED: the stream ends at offset.
func (m *Import) SourcePaused(now time.Duration, offset uint64) []Intent {
	if m.state.Done() {
		return nil
	}
	m.lastHeard = now
	m.pausedOff, m.pauseKnown = offset, true
	return m.maybeRequest(now)
}

func (m *Import) maybeRequest(now time.Duration) []Intent {
	if m.state != WaitingForPaused || !m.pauseKnown || m.applied < m.pausedOff {
		return nil
	}
	m.state, m.updated, m.lastReq = HandoffRequested, now, now
	return []Intent{{Kind: RequestHandoff, Job: m.name, Node: m.source, Offset: m.applied, Stamp: now}}
}

// Granted handles SYNCSLOTS FAILOVER-GRANTED: the target claims the slots
// if it still may (it requested, it applied everything, it is a primary,
// the source still owns the slots in its view) and the request the grant
// answers (stamp, echoed) is within Config.ClaimWindow. An older grant is
// ignored: the request goes on repeating and a fresher grant follows.
func (m *Import) Granted(now time.Duration, cl Cluster, stamp time.Duration) []Intent {
	if m.state != HandoffRequested || m.applied < m.pausedOff || stamp > now || now-stamp > m.cfg.ClaimWindow {
		return nil
	}
	if out := m.check(now, cl); out != nil {
		return out
	}
	m.state, m.updated, m.lastHeard = Success, now, now
	return []Intent{
		{Kind: ClaimSlots, Job: m.name, Node: m.source, Slots: m.slots},
		{Kind: Persist, Job: m.name},
		m.note(NoteClaimed),
	}
}

// AbortRequested handles SYNCSLOTS ABORT from the source. Unless it
// already claimed, the import ends and answers ABORTED; the job is gone,
// so a late grant finds nothing to claim.
func (m *Import) AbortRequested(now time.Duration, cl Cluster) []Intent {
	switch {
	case m.state == Success:
		return []Intent{{Kind: SendClaimed, Job: m.name, Node: m.source}}
	case m.state.Done():
		if m.claimed(cl) { // restored as finished
			return []Intent{{Kind: SendClaimed, Job: m.name, Node: m.source}}
		}
		return []Intent{{Kind: SendAborted, Job: m.name, Node: m.source}}
	}
	out := m.end(now, Failed, ReasonAborted)
	return append(out, Intent{Kind: SendAborted, Job: m.name, Node: m.source})
}

// PeerLost reports that the migration connection closed: the import ends
// unless it already claimed.
func (m *Import) PeerLost(now time.Duration) []Intent {
	if m.state.Done() {
		return nil
	}
	return m.end(now, Failed, ReasonSourceLost)
}

// Tick checks the import's timeouts and the cluster view, and sends the
// periodic ACK and the repeated handoff request.
func (m *Import) Tick(now time.Duration, cl Cluster) []Intent {
	if m.state.Done() {
		return nil
	}
	if out := m.check(now, cl); out != nil {
		return out
	}
	var out []Intent
	if now-m.lastAck >= m.cfg.AckEvery {
		m.lastAck = now
		out = append(out, Intent{Kind: SendAck, Job: m.name, Node: m.source, Offset: m.applied})
	}
	if m.state == HandoffRequested && now-m.lastReq >= m.cfg.resendEvery() {
		m.lastReq = now
		out = append(out, Intent{Kind: RequestHandoff, Job: m.name, Node: m.source, Offset: m.applied, Stamp: now})
	}
	return out
}

// check ends the import when it may no longer claim: this node is not a
// primary any more, the source failed or lost the slots, or it has been
// silent too long.
func (m *Import) check(now time.Duration, cl Cluster) []Intent {
	self, _ := cl.Lookup(m.self)
	if !self.IsMaster {
		return m.end(now, Failed, ReasonFailover)
	}
	if src, ok := cl.Lookup(m.source); !ok || src.Failed {
		return m.end(now, Failed, ReasonSourceFailed)
	}
	if !m.slots.each(func(s uint16) bool { o, _ := cl.SlotOwner(s); return o == m.source }) {
		return m.end(now, Failed, ReasonSourceNotOwner)
	}
	if now-m.lastHeard > m.cfg.AckTimeout {
		return m.end(now, Failed, ReasonAckTimeout)
	}
	return nil
}

// end drops what the import received.
func (m *Import) end(now time.Duration, st State, reason string) []Intent {
	m.state, m.updated, m.message = st, now, reason
	return []Intent{
		{Kind: DropImported, Job: m.name, Node: m.source, Slots: m.slots},
		{Kind: CloseLink, Job: m.name, Node: m.source},
		{Kind: Persist, Job: m.name},
		m.note(reason),
	}
}
