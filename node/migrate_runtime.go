package node

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/migrate"
	"github.com/hearsay/hearsay/ring"
)

// The runtime of atomic slot migration (package migrate): the Table lives
// on the bus loop next to the gossip core it reads, and every intent it
// returns is carried out there, in order. Network work runs on the
// goroutines of migrate_source.go and migrate_target.go, which post what
// they learn back to the loop with post; the loop hands them work over
// channels and never waits on a socket.

// migrator is a node's atomic slot migrations. Every field is owned by
// the bus loop (or by New before the loop starts).
type migrator struct {
	n     *Node
	table *migrate.Table
	// hard is what the record file holds: one record per running
	// migration, by name.
	hard    map[string]migrate.HardState
	exports map[string]*exportLink
	imports map[string]*importLink
	rng     *rand.ChaCha8

	// deleting holds the slots whose keys a goroutine is deleting after
	// an export succeeded; an import of them waits until it is done.
	deleting map[*migrate.Slots]struct{}

	running bool // carrying out intents: a nested tick waits for it
	again   bool // a tick was asked for while running
	// abortReply collects SendAborted/SendClaimed while a SYNCSLOTS ABORT
	// handler runs the table.
	abortReply *string
}

func newMigrator(n *Node) *migrator {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	return &migrator{
		n:        n,
		table:    migrate.NewTable(migrate.Config{NodeTimeout: n.cfg.NodeTimeout}),
		hard:     map[string]migrate.HardState{},
		exports:  map[string]*exportLink{},
		imports:  map[string]*importLink{},
		deleting: map[*migrate.Slots]struct{}{},
		rng:      rand.NewChaCha8(seed),
	}
}

// newName draws a migration name: 40 hex digits, as Valkey's.
func (m *migrator) newName() string {
	var b [20]byte
	binary.LittleEndian.PutUint64(b[0:], m.rng.Uint64())
	binary.LittleEndian.PutUint64(b[8:], m.rng.Uint64())
	binary.LittleEndian.PutUint32(b[16:], uint32(m.rng.Uint64()))
	return hex.EncodeToString(b[:])
}

// coreCluster is migrate.Cluster over the gossip core; it is only used on
// the loop that owns the core.
type coreCluster struct{ c *gossip.Core }

func (cc coreCluster) Self() wire.NodeID { return cc.c.ID() }

func (cc coreCluster) Lookup(id wire.NodeID) (migrate.Node, bool) {
	v, ok := cc.c.Node(id)
	if !ok || v.Flags&wire.FlagHandshake != 0 {
		return migrate.Node{}, false
	}
	return migrate.Node{ID: v.ID, IsMaster: v.Flags&wire.FlagMaster != 0, Master: v.Master,
		Failed: v.Flags&wire.FlagFail != 0}, true
}

func (cc coreCluster) SlotOwner(slot uint16) (wire.NodeID, uint64) { return cc.c.SlotOwner(slot) }

func (cc coreCluster) LegacyMarks() (migrating, importing bool) {
	snap := cc.c.Snapshot()
	for s := range uint16(wire.NumSlots) {
		if _, ok := snap.Migrating(s); ok {
			migrating = true
		}
		if _, ok := snap.Importing(s); ok {
			importing = true
		}
		if migrating && importing {
			break
		}
	}
	return migrating, importing
}

func (m *migrator) cluster() coreCluster { return coreCluster{m.n.core} }

// post runs fn on the bus loop without waiting: how the migration
// goroutines report back. Nothing runs once the node is stopping.
func (n *Node) post(fn func(now time.Duration)) {
	loop := n.bus.loop.Load()
	if loop == nil || n.stopping.Load() {
		return
	}
	_ = (*loop).Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		n.bus.flush()
		fn(n.now())
		return nil
	}))
}

// active reports whether any migration runs.
func (m *migrator) active() bool { return len(m.table.Exports())+len(m.table.Imports()) > 0 }

// deadline is when the table next needs a tick, never sooner than a few
// milliseconds from now: a deadline the table cannot act on yet (a
// target that trails but answers) must not spin the loop.
func (m *migrator) deadline(now time.Duration) (time.Duration, bool) {
	at, ok := m.table.NextDeadline()
	if !ok {
		return 0, false
	}
	return max(at, now+5*time.Millisecond), true
}

// tick runs the table's clock and view checks, on the bus timer and after
// every change of the slot table or of a node's flags.
func (m *migrator) tick(now time.Duration) {
	if m.running {
		m.again = true
		return
	}
	if !m.active() {
		return
	}
	m.run(now, m.table.Tick(now, m.cluster()))
}

// run carries out intents in order, then whatever ticks they asked for,
// then closes the links of finished migrations. It returns false when a
// Persist failed: the intents after it were not carried out, since they
// may announce what is not durable.
func (m *migrator) run(now time.Duration, in []migrate.Intent) bool {
	if m.running {
		// A nested call (a claim's Ready reached apply, which ticks):
		// its intents still run in order after the current ones.
		return m.do(now, in)
	}
	m.running = true
	ok := m.do(now, in)
	for m.again {
		m.again = false
		ok = m.do(now, m.table.Tick(now, m.cluster())) && ok
	}
	m.running = false
	// A migration that ended on an event (a lost link, an abort) rather
	// than a tick would otherwise stay in the running set, where it
	// refuses a new migration of its slots.
	m.table.Reap()
	m.sweep()
	return ok
}

func (m *migrator) do(now time.Duration, in []migrate.Intent) bool {
	n := m.n
	for i := range in {
		it := &in[i]
		switch it.Kind {
		case migrate.Persist:
			if !m.persist(it) {
				return false
			}
		case migrate.Connect:
			m.connect(it)
		case migrate.StartSnapshot:
			if l := m.exports[it.Job]; l != nil {
				l.send(exportCtl{kind: ctlSnapshot})
			}
		case migrate.StreamWrites:
			// The link streams right after SNAPSHOT-EOF on its own:
			// the writes since the cut are already queued behind it.
		case migrate.PauseWrites:
			off := n.pauseSlots(it.Slots)
			if l := m.exports[it.Job]; l != nil {
				l.send(exportCtl{kind: ctlPause, replOff: off})
			}
		case migrate.ResumeWrites:
			n.resumeSlots(it.Slots)
		case migrate.SendPaused:
			if l := m.exports[it.Job]; l != nil {
				l.send(exportCtl{kind: ctlPaused, off: it.Offset})
			}
		case migrate.SendGrant:
			if l := m.exports[it.Job]; l != nil {
				l.send(exportCtl{kind: ctlGrant, off: uint64(it.Stamp)})
			}
		case migrate.SendPing:
			if l := m.exports[it.Job]; l != nil {
				l.send(exportCtl{kind: ctlPing})
			}
		case migrate.SendAbort:
			m.sendAbort(it)
		case migrate.DeleteSlots:
			m.deleteExported(it)
		case migrate.DropImported:
			// On the loop: a new import of these slots must not begin
			// while the old one's keys are still going.
			self := n.core.ID()
			deleted := n.disp.DeleteSlotKeys(ringRanges(it.Slots), func(s uint16) bool {
				o, _ := n.core.SlotOwner(s)
				return o != self
			})
			n.log.Info("migrate: dropped the keys received", "job", it.Job, "slots", it.Slots.String(), "keys", deleted)
		case migrate.CloseLink:
			m.closeLink(it.Job)
		case migrate.SendAck:
			if l := m.imports[it.Job]; l != nil {
				l.send(appendSync(nil, "ACK", it.Offset))
			}
		case migrate.RequestHandoff:
			if l := m.imports[it.Job]; l != nil {
				l.send(appendSync(nil, "REQUEST-FAILOVER", it.Offset, uint64(it.Stamp)))
			}
		case migrate.ClaimSlots:
			r, err := n.core.ClaimSlots(now, it.Slots)
			n.bus.applyNow(r, true)
			if err != nil {
				n.log.Error("migrate: cannot claim the slots", "job", it.Job, "err", err)
			} else {
				cur, _ := n.core.Epochs()
				n.log.Info("migrate: claimed the slots", "job", it.Job, "slots", it.Slots.String(), "config_epoch", cur)
			}
		case migrate.SendAborted, migrate.SendClaimed:
			reply := "ABORTED"
			if it.Kind == migrate.SendClaimed {
				reply = "CLAIMED"
			}
			if m.abortReply != nil {
				*m.abortReply = reply
			}
		case migrate.Note:
			n.log.Info("migrate: "+it.Reason, "job", it.Job, "peer", it.Node.String(), "slots", it.Slots.String())
		}
	}
	return true
}

// deleteExported deletes an export's keys once the target's claim is
// seen, on a goroutine: the intents after it (ResumeWrites: the parked
// writes get MOVED now) must not wait for a large deletion, nor must the
// bus loop. The router already sends every client of those slots to the
// target, and the published view it reads decides, slot by slot under
// the writer lock, that the slot is not ours.
func (m *migrator) deleteExported(it *migrate.Intent) {
	n := m.n
	slots := it.Slots
	key := &slots
	m.deleting[key] = struct{}{}
	job := it.Job
	self := ring.NodeID(n.core.ID())
	go func() {
		start := time.Now()
		deleted := n.disp.DeleteSlotKeys(ringRanges(slots), func(s uint16) bool {
			o, _ := n.view.Load().snap.Owner(s)
			return o != self
		})
		n.log.Info("migrate: deleted the keys the target now owns", "job", job, "slots", slots.String(),
			"keys", deleted, "took", time.Since(start).Round(time.Millisecond))
		n.post(func(time.Duration) { delete(n.mig.deleting, key) })
	}()
}

// stillDeleting reports whether slots overlap a deletion under way.
func (m *migrator) stillDeleting(slots migrate.Slots) bool {
	for d := range m.deleting {
		if _, ov := slots.Overlaps(*d); ov {
			return true
		}
	}
	return false
}

// sweep closes the links of migrations that ended: a finished export or
// import emits no CloseLink on success.
func (m *migrator) sweep() {
	for name := range m.exports {
		if e := m.table.Export(name); e == nil || e.State().Done() {
			m.closeLink(name)
		}
	}
	for name := range m.imports {
		if im := m.table.Import(name); im == nil || im.State().Done() {
			m.closeLink(name)
		}
	}
}

func (m *migrator) closeLink(name string) {
	if l := m.exports[name]; l != nil {
		l.close()
		delete(m.exports, name)
	}
	if l := m.imports[name]; l != nil {
		l.close()
		delete(m.imports, name)
	}
}

// persist carries out one Persist intent: the record file is rewritten
// whole and fsynced before the next intent runs.
func (m *migrator) persist(it *migrate.Intent) bool {
	prev, had := m.hard[it.Job]
	if it.State == nil {
		if !had {
			return true
		}
		delete(m.hard, it.Job)
	} else {
		m.hard[it.Job] = *it.State
	}
	if err := m.save(); err != nil {
		m.n.log.Error("migrate: cannot write the migration records; not going on", "job", it.Job, "err", err)
		if had {
			m.hard[it.Job] = prev
		} else {
			delete(m.hard, it.Job)
		}
		return false
	}
	return true
}

func (m *migrator) save() error {
	names := make([]string, 0, len(m.hard))
	for k := range m.hard {
		names = append(names, k)
	}
	slices.Sort(names)
	recs := make([]migrate.HardState, 0, len(names))
	for _, k := range names {
		recs = append(recs, m.hard[k])
	}
	data, err := encodeMigrations(recs)
	if err != nil {
		return err
	}
	return writeFileAtomic(m.n.cfg.Dir, MigrationsFile, data)
}

// restore settles the records read at start (Table.Restore) before the
// node serves a client or joins the bus.
func (m *migrator) restore(recs []migrate.HardState) error {
	if len(recs) == 0 {
		return nil
	}
	for _, h := range recs {
		m.hard[h.Name] = h
	}
	now := m.n.now()
	if !m.run(now, m.table.Restore(now, m.cluster(), recs)) {
		return errMigrationsWrite
	}
	return nil
}

const errMigrationsWrite = adminError("cannot rewrite the migration records")
