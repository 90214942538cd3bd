package migrate

import (
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/internal/earliest"
)

// Request is one SLOTSRANGE … NODE group of CLUSTER MIGRATESLOTS.
type Request struct {
	// Name is the migration's unique name, chosen by the caller (Valkey
	// uses 40 random hex characters; the runtime draws them from its
	// seeded source, since this package has no randomness).
	Name   string
	Target wire.NodeID
	Slots  Slots
}

// Table is every atomic migration of one node, both sides, and the log of
// finished ones. It validates new migrations against the running ones and
// serves GETSLOTMIGRATIONS and CANCELSLOTMIGRATIONS. The zero value is not
// usable; use NewTable.
type Table struct {
	cfg     Config
	exports []*Export
	imports []*Import
	log     []Status
	used    map[string]bool // names seen since start, to refuse a reuse
}

// NewTable returns an empty table.
func NewTable(cfg Config) *Table {
	return &Table{cfg: cfg.WithDefaults(), used: map[string]bool{}}
}

// Config returns the configuration in force.
func (t *Table) Config() Config { return t.cfg }

// Export returns the running export called name, or nil.
func (t *Table) Export(name string) *Export {
	for _, e := range t.exports {
		if e.name == name {
			return e
		}
	}
	return nil
}

// Import returns the running import called name, or nil.
func (t *Table) Import(name string) *Import {
	for _, m := range t.imports {
		if m.name == name {
			return m
		}
	}
	return nil
}

// Exports returns the running exports.
func (t *Table) Exports() []*Export { return t.exports }

// Imports returns the running imports.
func (t *Table) Imports() []*Import { return t.imports }

// MigrateSlots validates CLUSTER MIGRATESLOTS and starts one export per
// request, all or none, returning the intents of all.
func (t *Table) MigrateSlots(now time.Duration, cl Cluster, reqs []Request) ([]Intent, error) {
	selfID := cl.Self()
	self, _ := cl.Lookup(selfID)
	if !self.IsMaster {
		return nil, ErrNotPrimary
	}
	if len(reqs) == 0 {
		return nil, ErrNoRanges
	}
	if mig, imp := cl.LegacyMarks(); mig {
		return nil, ErrManualMigrating
	} else if imp {
		return nil, ErrManualImporting
	}
	epochs := make([]uint64, len(reqs))
	for i, r := range reqs {
		if err := checkRanges(r.Slots); err != nil {
			return nil, err
		}
		owner, epoch, err := soleOwner(cl, r.Slots)
		if err != nil {
			return nil, err
		}
		if owner != selfID {
			return nil, ErrNotServed
		}
		epochs[i] = epoch
		if r.Target == selfID {
			return nil, ErrTargetSelf
		}
		tn, ok := cl.Lookup(r.Target)
		switch {
		case !ok:
			return nil, ErrUnknownNode
		case !tn.IsMaster:
			return nil, ErrTargetReplica
		case tn.Failed:
			return nil, ErrTargetFailed
		}
		for _, o := range reqs[:i] {
			if _, ov := r.Slots.Overlaps(o.Slots); ov {
				return nil, ErrGroupsOverlap
			}
		}
		for _, e := range t.exports {
			if s, ov := r.Slots.Overlaps(e.slots); ov {
				return nil, errAlreadyMigrating(s)
			}
		}
		if !t.freshName(r.Name) {
			return nil, ErrBadName
		}
		for _, o := range reqs[:i] {
			if o.Name == r.Name {
				return nil, ErrBadName
			}
		}
	}
	var out []Intent
	for i, r := range reqs {
		e, in := newExport(t.cfg, now, selfID, r, epochs[i])
		t.exports = append(t.exports, e)
		t.used[r.Name] = true
		out = append(out, in...)
	}
	return out, nil
}

func (t *Table) freshName(n string) bool { return n != "" && len(n) <= maxName && !t.used[n] }

// checkRanges applies Valkey's rules to one group's ranges.
func checkRanges(s Slots) error {
	if len(s) == 0 {
		return ErrNoRanges
	}
	for i, r := range s {
		if r.End >= wire.NumSlots {
			return ErrBadSlot
		}
		if r.Start > r.End {
			return errStartAfterEnd(int(r.Start), int(r.End))
		}
		for _, p := range s[:i] {
			if r.Start <= p.End && p.Start <= r.End {
				return errRangeOverlap(r, p)
			}
		}
	}
	return nil
}

// soleOwner returns the one node all of s is bound to, and the highest
// configEpoch among those bindings.
func soleOwner(cl Cluster, s Slots) (wire.NodeID, uint64, error) {
	var owner wire.NodeID
	var epoch uint64
	var err error
	first := true
	s.each(func(x uint16) bool {
		o, ep := cl.SlotOwner(x)
		switch {
		case o.IsZero():
			err = errNoOwner(x)
		case first:
			owner, first = o, false
		case o != owner:
			err = ErrSpanShards
		}
		epoch = max(epoch, ep)
		return err == nil
	})
	return owner, epoch, err
}

// Establish handles SYNCSLOTS ESTABLISH on the target: it validates and
// starts the import. The runtime answers +OK after the Persist intent.
func (t *Table) Establish(now time.Duration, cl Cluster, name string, source wire.NodeID, slots Slots, epoch uint64) ([]Intent, error) {
	selfID := cl.Self()
	if self, _ := cl.Lookup(selfID); !self.IsMaster {
		return nil, ErrNotPrimary
	}
	if err := checkRanges(slots); err != nil {
		return nil, err
	}
	if _, ok := cl.Lookup(source); !ok || source == selfID {
		return nil, ErrUnknownSource
	}
	if !slots.each(func(s uint16) bool { o, _ := cl.SlotOwner(s); return o == source }) {
		return nil, ErrOwnership
	}
	if _, imp := cl.LegacyMarks(); imp {
		return nil, ErrManualImporting
	}
	for _, m := range t.imports {
		if _, ov := slots.Overlaps(m.slots); ov {
			return nil, ErrAlreadyImported
		}
	}
	if !t.freshName(name) {
		return nil, ErrBadName
	}
	m, out := newImport(t.cfg, now, selfID, name, source, slots, epoch)
	t.imports = append(t.imports, m)
	t.used[name] = true
	return out, nil
}

// AbortRequested answers SYNCSLOTS ABORT for name, including a name this
// node no longer holds (it dropped it, or restarted): then it answers
// from its view, CLAIMED if it owns every slot above epoch and ABORTED
// otherwise. A name it does not hold can never be claimed, which is what
// ABORTED promises.
func (t *Table) AbortRequested(now time.Duration, cl Cluster, name string, source wire.NodeID, slots Slots, epoch uint64) []Intent {
	if m := t.Import(name); m != nil {
		return m.AbortRequested(now, cl)
	}
	probe := &Import{name: name, source: source, self: cl.Self(), slots: slots, epoch: epoch, state: Failed}
	return probe.AbortRequested(now, cl)
}

// CancelAll handles CLUSTER CANCELSLOTMIGRATIONS: as in Valkey it cancels
// every running export of this node (imports are cancelled from their
// source), and fails with "No migrations ongoing" when there is none.
func (t *Table) CancelAll(now time.Duration) ([]Intent, error) {
	var out []Intent
	n := 0
	for _, e := range t.exports {
		if e.state.Done() {
			continue
		}
		n++
		out = append(out, e.Cancel(now)...)
	}
	if n == 0 {
		return nil, ErrNoMigrations
	}
	return out, nil
}

// Tick ticks every migration and moves finished ones to the log.
func (t *Table) Tick(now time.Duration, cl Cluster) []Intent {
	var out []Intent
	for _, e := range t.exports {
		out = append(out, e.Tick(now, cl)...)
	}
	for _, m := range t.imports {
		out = append(out, m.Tick(now, cl)...)
	}
	t.Reap()
	return out
}

// Reap moves finished migrations to the log, keeping at most LogLen.
func (t *Table) Reap() {
	t.exports = reap(t, t.exports)
	t.imports = reap(t, t.imports)
}

// job is what Reap needs of an Export or an Import.
type job interface {
	State() State
	Status() Status
}

func reap[J job](t *Table, jobs []J) []J {
	keep := jobs[:0]
	for _, j := range jobs {
		if j.State().Done() {
			t.record(j.Status())
		} else {
			keep = append(keep, j)
		}
	}
	clear(jobs[len(keep):])
	return keep
}

func (t *Table) record(s Status) {
	t.log = append(t.log, s)
	if over := len(t.log) - t.cfg.LogLen; over > 0 {
		t.log = append(t.log[:0], t.log[over:]...)
	}
}

// Status returns the GETSLOTMIGRATIONS rows: the finished migrations in
// the order they ended, then the running exports and imports.
func (t *Table) Status() []Status {
	out := append([]Status(nil), t.log...)
	for _, e := range t.exports {
		out = append(out, e.Status())
	}
	for _, m := range t.imports {
		out = append(out, m.Status())
	}
	return out
}

// HardStates returns the records of the running migrations, as the
// Persist intents left them: what a full rewrite of the file holds.
func (t *Table) HardStates() []HardState {
	var out []HardState
	for _, e := range t.exports {
		if !e.state.Done() {
			out = append(out, *e.hard())
		}
	}
	for _, m := range t.imports {
		if !m.state.Done() {
			out = append(out, *m.hard())
		}
	}
	return out
}

// Restore settles the records found at start, before the node serves a
// client or joins the bus: see restoreExport and restoreImport. Its
// intents must be carried out before any other.
func (t *Table) Restore(now time.Duration, cl Cluster, states []HardState) []Intent {
	var out []Intent
	for i := range states {
		h := &states[i]
		t.used[h.Name] = true
		switch h.Op {
		case OpExport:
			e, in := restoreExport(t.cfg, now, cl.Self(), h)
			t.exports = append(t.exports, e)
			out = append(out, in...)
		case OpImport:
			m, in := restoreImport(t.cfg, now, cl, h)
			t.imports = append(t.imports, m)
			out = append(out, in...)
		}
	}
	t.Reap()
	return out
}

// NextDeadline returns the earliest time at which Tick has something to do
// by the clock (a PING or ACK to send, a request or abort to repeat, a
// timeout to fire), and false when no migration runs. It changes nothing.
// A runtime that sleeps between ticks must tick by then, and also when its
// slot table or a node's FAIL flag changes, since those end or complete a
// migration too.
func (t *Table) NextDeadline() (time.Duration, bool) {
	var d earliest.Deadline
	cfg := &t.cfg
	for _, e := range t.exports {
		switch e.state {
		case Connecting:
			d.Add(e.created + cfg.AckTimeout)
		case Snapshotting, WaitingToPause, Pausing, Paused:
			d.Add(e.lastPing + cfg.AckEvery)
			d.Add(e.lastHeard + cfg.AckTimeout)
			if e.state == WaitingToPause {
				d.Add(e.progressAt + cfg.AckTimeout)
			} else if e.state != Snapshotting {
				d.Add(e.pausedAt + cfg.PauseTimeout)
			}
		case Granted:
			if e.asking {
				d.Add(e.lastAbort + cfg.resendEvery())
			} else {
				d.Add(e.grantedAt + cfg.HandoffTimeout)
			}
		}
	}
	for _, m := range t.imports {
		if m.state.Done() {
			continue
		}
		d.Add(m.lastAck + cfg.AckEvery)
		d.Add(m.lastHeard + cfg.AckTimeout)
		if m.state == HandoffRequested {
			d.Add(m.lastReq + cfg.resendEvery())
		}
	}
	return d.Get()
}
