package migrate

import (
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// Export is the source side of one atomic migration. Its one rule for
// safety: before the grant the source owns the slots and may always cancel
// and resume writes; from the grant on it accepts no write to them again
// unless the target confirms it did not claim them (AbortConfirmed), and it
// deletes its keys only once its own cluster view shows the target's claim.
// A write is therefore never accepted by the source after the claim, and
// the keys exist on one side or the other at every moment.
type Export struct {
	cfg    Config
	name   string
	target wire.NodeID
	self   wire.NodeID
	slots  Slots
	epoch  uint64 // the slots' configEpoch at the start
	state  State

	created, updated, lastHeard time.Duration
	keys, bytes                 uint64
	streamOff, applied          uint64
	pausedAt                    time.Duration
	pausedOff                   uint64
	grantedAt, lastAbort        time.Duration
	lastPing                    time.Duration
	progressAt                  time.Duration // when applied last advanced
	asking                      bool          // sending SendAbort until answered
	cancelReq                   bool          // CANCELSLOTMIGRATIONS after the grant
	message                     string
}

// newExport starts an export that Table.MigrateSlots validated.
func newExport(cfg Config, now time.Duration, self wire.NodeID, req Request, epoch uint64) (*Export, []Intent) {
	e := &Export{cfg: cfg, name: req.Name, target: req.Target, self: self, slots: req.Slots, epoch: epoch,
		state: Connecting, created: now, updated: now, lastHeard: now, lastPing: now}
	return e, []Intent{
		{Kind: Persist, Job: e.name, State: e.hard()},
		{Kind: Connect, Job: e.name, Node: e.target, Slots: e.slots, Epoch: e.epoch},
		e.note(NoteStarted),
	}
}

// restoreExport rebuilds an export from its record after a restart. One
// that had not granted cancels: its pause and its connection died with
// the process, and the target cannot claim without a grant. One that had
// granted pauses the slots' writes again, before the node serves a
// client, and waits for the claim or an abort confirmation as before.
func restoreExport(cfg Config, now time.Duration, self wire.NodeID, h *HardState) (*Export, []Intent) {
	e := &Export{cfg: cfg, name: h.Name, target: h.Peer, self: self, slots: h.Slots, epoch: h.Epoch,
		created: now, updated: now, lastHeard: now}
	if !h.Granted {
		e.state, e.message = Failed, ReasonRestarted
		return e, []Intent{{Kind: Persist, Job: e.name}, e.note(ReasonRestarted)}
	}
	e.state, e.grantedAt = Granted, now
	return e, []Intent{
		{Kind: PauseWrites, Job: e.name, Node: e.target, Slots: e.slots},
		e.note(NoteGranted),
	}
}

func (e *Export) note(reason string) Intent {
	return Intent{Kind: Note, Job: e.name, Node: e.target, Slots: e.slots, Reason: reason}
}

func (e *Export) hard() *HardState {
	return &HardState{Name: e.name, Op: OpExport, Peer: e.target, Slots: e.slots, Epoch: e.epoch, Granted: e.state == Granted}
}

// Name returns the migration's name.
func (e *Export) Name() string { return e.name }

// State returns where the export stands.
func (e *Export) State() State { return e.state }

// Slots returns the slots being exported.
func (e *Export) Slots() Slots { return e.slots }

// WritesPausedNow reports whether the export holds the slots' writes
// paused (from PauseWrites until ResumeWrites).
func (e *Export) WritesPausedNow() bool {
	return e.state == Pausing || e.state == Paused || e.state == Granted
}

// Status returns the export's GETSLOTMIGRATIONS row.
func (e *Export) Status() Status {
	st := Status{Name: e.name, Operation: OpExport, Slots: e.slots, Source: e.self, Target: e.target,
		State: e.state, Created: e.created, Updated: e.updated, LastAck: e.lastHeard,
		Keys: e.keys, Bytes: e.bytes, Message: e.message}
	if e.streamOff > e.applied {
		st.Remaining = e.streamOff - e.applied
	}
	return st
}

// Established handles the target's +OK to ESTABLISH: the snapshot starts.
func (e *Export) Established(now time.Duration) []Intent {
	if e.state != Connecting {
		return nil
	}
	e.state, e.updated, e.lastHeard = Snapshotting, now, now
	return []Intent{{Kind: StartSnapshot, Job: e.name, Node: e.target, Slots: e.slots}}
}

// SnapshotDone reports that the whole snapshot is on the connection:
// keys and bytes it held, and the stream offset at its end (the writes
// captured since the cut come after it).
func (e *Export) SnapshotDone(now time.Duration, keys, bytes, offset uint64) []Intent {
	if e.state != Snapshotting {
		return nil
	}
	e.state, e.updated, e.progressAt = WaitingToPause, now, now
	e.keys, e.bytes, e.streamOff = keys, bytes, max(e.streamOff, offset)
	return []Intent{{Kind: StreamWrites, Job: e.name, Node: e.target, Slots: e.slots}, e.note(NoteSnapshotDone)}
}

// Streamed reports the stream's progress: its offset and the keys and
// bytes sent in all, snapshot included.
func (e *Export) Streamed(offset, keys, bytes uint64) {
	if e.state.Done() {
		return
	}
	e.streamOff = max(e.streamOff, offset)
	e.keys, e.bytes = max(e.keys, keys), max(e.bytes, bytes)
}

// Acked handles SYNCSLOTS ACK: the target applied the stream up to
// applied. Once it trails by at most CatchUpBytes the slots' writes pause.
func (e *Export) Acked(now time.Duration, applied uint64) []Intent {
	if e.state.Done() {
		return nil
	}
	e.lastHeard = now
	if applied > e.applied {
		e.applied, e.progressAt = applied, now
	}
	return e.maybePause(now)
}

func (e *Export) maybePause(now time.Duration) []Intent {
	if e.state != WaitingToPause || e.streamOff > e.applied+e.cfg.CatchUpBytes {
		return nil
	}
	e.state, e.updated, e.pausedAt = Pausing, now, now
	return []Intent{{Kind: PauseWrites, Job: e.name, Node: e.target, Slots: e.slots}, e.note(NotePaused)}
}

// WritesPaused reports that the slots' writes are paused and every write
// accepted before is in the stream, which ends at offset.
func (e *Export) WritesPaused(now time.Duration, offset uint64) []Intent {
	if e.state != Pausing {
		return nil
	}
	e.state, e.updated = Paused, now
	e.pausedOff = max(offset, e.streamOff)
	e.streamOff = e.pausedOff
	return []Intent{{Kind: SendPaused, Job: e.name, Node: e.target, Offset: e.pausedOff}}
}

// HandoffRequested handles SYNCSLOTS REQUEST-FAILOVER: the target says it
// applied everything up to applied; stamp is the request's own, for the
// grant to echo. When that is the whole stream the source grants, after
// making the grant durable.
func (e *Export) HandoffRequested(now time.Duration, applied uint64, stamp time.Duration) []Intent {
	if e.state.Done() {
		return nil
	}
	e.lastHeard = now
	e.applied = max(e.applied, applied)
	switch {
	case e.state == Granted:
		// The grant was lost, late or too old for the target's claim
		// window: repeating it is safe, the target claims at most once.
		return []Intent{{Kind: SendGrant, Job: e.name, Node: e.target, Stamp: stamp}}
	case e.state != Paused || e.applied < e.pausedOff:
		return nil
	}
	e.state, e.updated, e.grantedAt = Granted, now, now
	return []Intent{
		{Kind: Persist, Job: e.name, State: e.hard()},
		{Kind: SendGrant, Job: e.name, Node: e.target, Stamp: stamp},
		e.note(NoteGranted),
	}
}

// AbortConfirmed handles the target's ABORTED answer: it holds no claim
// and can no longer make one, so a granted source may take its slots back.
func (e *Export) AbortConfirmed(now time.Duration, cl Cluster) []Intent {
	if e.state != Granted {
		return nil
	}
	if e.claimSeen(cl) {
		return e.succeed(now)
	}
	st := Failed
	if e.cancelReq {
		st = Cancelled
	}
	return e.end(now, st, ReasonNotClaimed)
}

// PeerLost reports that the migration connection closed. Before the grant
// that ends the export; after it the source keeps waiting, since the
// target may have claimed.
func (e *Export) PeerLost(now time.Duration) []Intent {
	if e.state.Done() || e.state == Granted {
		return nil
	}
	return e.end(now, Failed, ReasonTargetLost)
}

// Cancel handles CANCELSLOTMIGRATIONS. Before the grant the export ends at
// once and writes resume. After it the source cannot know whether the
// target claimed, so it asks the target to abort and ends when the target
// confirms (Cancelled) or the claim shows (Success).
func (e *Export) Cancel(now time.Duration) []Intent {
	switch {
	case e.state.Done():
		return nil
	case e.state == Granted:
		e.cancelReq, e.message = true, NoteCancelDeferred
		e.asking, e.lastAbort = true, now
		return []Intent{{Kind: SendAbort, Job: e.name, Node: e.target, Slots: e.slots, Epoch: e.epoch}, e.note(NoteCancelDeferred)}
	}
	return e.end(now, Cancelled, ReasonCancelled)
}

// Tick checks the export's timeouts and the cluster view.
func (e *Export) Tick(now time.Duration, cl Cluster) []Intent {
	if e.state.Done() {
		return nil
	}
	if e.state == Granted {
		return e.tickGranted(now, cl)
	}
	self, _ := cl.Lookup(e.self)
	if !self.IsMaster {
		return e.end(now, Failed, ReasonDemoted)
	}
	if !e.slots.each(func(s uint16) bool { o, _ := cl.SlotOwner(s); return o == e.self }) {
		return e.end(now, Failed, ReasonNotOwner)
	}
	if t, ok := cl.Lookup(e.target); !ok || t.Failed {
		return e.end(now, Failed, ReasonTargetFailed)
	}
	if now-e.lastHeard > e.cfg.AckTimeout || e.state == Connecting && now-e.created > e.cfg.AckTimeout {
		return e.end(now, Failed, ReasonAckTimeout)
	}
	if e.state == WaitingToPause && e.streamOff > e.applied && now-e.progressAt > e.cfg.AckTimeout {
		// The target answers but applies nothing: it lost part of the
		// stream, or it is too slow to ever catch up.
		return e.end(now, Failed, ReasonNoProgress)
	}
	if (e.state == Pausing || e.state == Paused) && now-e.pausedAt > e.cfg.PauseTimeout {
		return e.end(now, Failed, ReasonPauseTimeout)
	}
	out := e.maybePause(now)
	if e.state != Connecting && now-e.lastPing >= e.cfg.AckEvery {
		e.lastPing = now
		out = append(out, Intent{Kind: SendPing, Job: e.name, Node: e.target})
	}
	return out
}

func (e *Export) tickGranted(now time.Duration, cl Cluster) []Intent {
	if e.claimSeen(cl) {
		return e.succeed(now)
	}
	lost := !e.slots.each(func(s uint16) bool {
		o, ep := cl.SlotOwner(s)
		return o == e.self || o == e.target || ep <= e.epoch
	})
	if lost {
		// A third node bound a slot at a newer epoch (this shard
		// failed over, or an operator forced it). The slots are not
		// ours whatever the target did: lift the pause so waiting
		// writes get MOVED, keep the keys for the runtime's usual rule
		// on lost slots.
		return e.end(now, Failed, ReasonNotOwner)
	}
	if !e.asking && now-e.grantedAt >= e.cfg.HandoffTimeout {
		e.asking, e.lastAbort = true, now
		return []Intent{{Kind: SendAbort, Job: e.name, Node: e.target, Slots: e.slots, Epoch: e.epoch}, e.note(NoteAskAbort)}
	}
	if e.asking && now-e.lastAbort >= e.cfg.resendEvery() {
		e.lastAbort = now
		return []Intent{{Kind: SendAbort, Job: e.name, Node: e.target, Slots: e.slots, Epoch: e.epoch}}
	}
	return nil
}

// claimSeen reports whether this node's view binds every slot to the
// target at an epoch above the one the migration started at.
func (e *Export) claimSeen(cl Cluster) bool {
	return e.slots.each(func(s uint16) bool {
		o, ep := cl.SlotOwner(s)
		return o == e.target && ep > e.epoch
	})
}

func (e *Export) succeed(now time.Duration) []Intent {
	e.state, e.updated, e.message = Success, now, ""
	return []Intent{
		{Kind: DeleteSlots, Job: e.name, Node: e.target, Slots: e.slots},
		{Kind: ResumeWrites, Job: e.name, Node: e.target, Slots: e.slots},
		{Kind: Persist, Job: e.name},
		e.note(NoteClaimSeen),
	}
}

// end finishes an export that did not hand over: writes resume, the
// connection closes, the record goes.
func (e *Export) end(now time.Duration, st State, reason string) []Intent {
	paused := e.WritesPausedNow()
	e.state, e.updated, e.message = st, now, reason
	var out []Intent
	if paused {
		out = append(out, Intent{Kind: ResumeWrites, Job: e.name, Node: e.target, Slots: e.slots})
	}
	return append(out,
		Intent{Kind: CloseLink, Job: e.name, Node: e.target},
		Intent{Kind: Persist, Job: e.name},
		e.note(reason))
}
