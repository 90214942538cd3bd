package migrate

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// The world is a toy runtime for one source and one target: it carries out
// the intents, moves control messages on a channel that may lose, reorder
// and delay them, models the migration connection (the snapshot and the
// ordered write stream) and the gossip view of slot owners, crashes and
// restarts nodes from exactly what they persisted, and checks the
// invariants after every step. With a nil rnd nothing is lost and every
// message is delivered in order.

const (
	src  = 0
	dst  = 1
	repl = 2 // the source's replica, promoted only by promoteReplica
)

// link is one migration connection; its messages die with it.
type link struct{ up bool }

// stream is the source's side of a connection: the snapshot cut and the
// writes since.
type stream struct {
	lk   *link
	cut  int // the world's step when the snapshot was cut
	snap map[string]int
	log  []entry
}

type entry struct {
	key string
	val int
}

// recv is the target's side of a connection.
type recv struct {
	lk      *link
	gotSnap bool
	applied int
}

type msgKind uint8

const (
	mEstablish msgKind = iota
	mEstablishOK
	mRefused
	mSnapshotEOF
	mPing
	mAck
	mPaused
	mRequest
	mGrant
	mAbort
	mAborted
	mClaimed
	mLost
)

type msg struct {
	to     int
	kind   msgKind
	job    string
	lk     *link // nil: needs no connection (abort traffic reconnects)
	offset uint64
	stamp  time.Duration
	slots  Slots
	epoch  uint64
	snap   map[string]int
	after  time.Duration // not delivered before (a stalled process or socket)
}

type host struct {
	id      wire.NodeID
	alive   bool
	tab     *Table
	view    *fakeCluster
	durable map[string]HardState
	data    map[string]int // keys of the migrated slots: "slot:n"
	pauses  map[string]Slots
	streams map[string]*stream
	recvs   map[string]*recv
	downAt  time.Duration
	demoted bool          // a replica now (the source after its replica took over)
	seen    int           // how much of the claim log its view holds
	deaf    time.Duration // its view takes no gossip before this (cut off from the bus)
}

type world struct {
	t     *testing.T
	rnd   *rand.Rand
	now   time.Duration
	cfg   Config
	h     [3]*host
	slots Slots
	net   []msg
	// gossip: every claim, in order; each view holds a prefix
	gossip []binding
	gslots []Slots
	// withReplica lets promoteReplica run; promoted says it did
	withReplica, promoted bool
	// history of bindings per slot: epoch -> owner
	bound     map[uint16]map[uint64]wire.NodeID
	maxEpoch  uint64
	acked     map[string]int
	seq       int
	claimedAt time.Duration
	claimed   bool
	jobs      int
	steps     int
	snapSteps int // how many steps a snapshot takes
	loss      float64
	trace     []string
	faultAt   map[State]int // states a fault hit, for the randomized test's coverage
}

func newWorld(t *testing.T, rnd *rand.Rand) *world {
	w := &world{t: t, rnd: rnd, cfg: Config{NodeTimeout: time.Second, CatchUpBytes: 2}.WithDefaults(),
		slots: Slots{{Start: 0, End: 2}, {Start: 5, End: 5}}, bound: map[uint16]map[uint64]wire.NodeID{},
		acked: map[string]int{}, maxEpoch: 2, snapSteps: 5, faultAt: map[State]int{}}
	for i, id := range []wire.NodeID{srcID, dstID, replID} {
		v := &fakeCluster{self: id, nodes: map[wire.NodeID]Node{
			srcID: {ID: srcID, IsMaster: true}, dstID: {ID: dstID, IsMaster: true},
			replID: {ID: replID, Master: srcID}}, slots: map[uint16]binding{}}
		for s := uint16(0); s < 10; s++ {
			v.slots[s] = binding{srcID, 1}
		}
		v.slots[100] = binding{dstID, 2}
		w.h[i] = &host{id: id, alive: true, tab: NewTable(w.cfg), view: v, durable: map[string]HardState{},
			data: map[string]int{}, pauses: map[string]Slots{}, streams: map[string]*stream{}, recvs: map[string]*recv{}}
	}
	for s := uint16(0); s < 10; s++ {
		w.bound[s] = map[uint64]wire.NodeID{1: srcID}
	}
	return w
}

func (w *world) logf(format string, args ...any) {
	w.trace = append(w.trace, fmt.Sprintf("%8v ", w.now)+fmt.Sprintf(format, args...))
	if len(w.trace) > 60 {
		w.trace = w.trace[1:]
	}
}

func (w *world) fail(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("%s\nlast events:\n%s", fmt.Sprintf(format, args...), strings.Join(w.trace, "\n"))
}

// start runs MIGRATESLOTS on the source.
func (w *world) start() error {
	s := w.h[src]
	w.jobs++
	name := fmt.Sprintf("job%d", w.jobs)
	out, err := s.tab.MigrateSlots(w.now, s.view, []Request{{Name: name, Target: dstID, Slots: w.slots}})
	if err == nil {
		w.logf("start %s", name)
		w.do(src, out)
	}
	return err
}

func (w *world) send(m msg) {
	if w.rnd != nil && w.rnd.Float64() < w.loss {
		return
	}
	if w.rnd != nil && w.loss > 0 && w.rnd.IntN(50) == 0 {
		m.after = w.now + time.Duration(w.rnd.IntN(2000))*time.Millisecond
	}
	w.net = append(w.net, m)
}

// do carries out node i's intents in order.
func (w *world) do(i int, out []Intent) {
	h, peer := w.h[i], 1-i
	for _, in := range out {
		if in.Kind != Note {
			w.logf("%d: %v %s %v off=%d", i, in.Kind, in.Job, in.Slots, in.Offset)
		}
		switch in.Kind {
		case Persist:
			if in.State == nil {
				delete(h.durable, in.Job)
			} else {
				h.durable[in.Job] = *in.State
			}
		case Connect:
			lk := &link{up: true}
			h.streams[in.Job] = &stream{lk: lk}
			w.send(msg{to: peer, kind: mEstablish, job: in.Job, lk: lk, slots: in.Slots, epoch: in.Epoch})
		case StartSnapshot:
			st := h.streams[in.Job]
			st.snap, st.cut = map[string]int{}, w.steps
			for k, v := range h.data {
				if in.Slots.Contains(keySlot(k)) {
					st.snap[k] = v
				}
			}
		case StreamWrites:
			st := h.streams[in.Job]
			w.send(msg{to: peer, kind: mSnapshotEOF, job: in.Job, lk: st.lk, snap: maps.Clone(st.snap)})
		case PauseWrites:
			h.pauses[in.Job] = in.Slots
			if e := h.tab.Export(in.Job); e != nil && e.State() == Pausing {
				off := uint64(0)
				if st := h.streams[in.Job]; st != nil {
					off = uint64(len(st.log))
				}
				w.do(i, e.WritesPaused(w.now, off))
			}
		case ResumeWrites:
			delete(h.pauses, in.Job)
		case SendPaused, SendGrant, SendPing:
			k := map[IntentKind]msgKind{SendPaused: mPaused, SendGrant: mGrant, SendPing: mPing}[in.Kind]
			if st := h.streams[in.Job]; st != nil {
				w.send(msg{to: peer, kind: k, job: in.Job, lk: st.lk, offset: in.Offset, stamp: in.Stamp})
			}
		case SendAbort:
			w.send(msg{to: peer, kind: mAbort, job: in.Job, slots: in.Slots, epoch: in.Epoch})
		case SendAborted:
			w.send(msg{to: peer, kind: mAborted, job: in.Job})
		case SendClaimed:
			w.send(msg{to: peer, kind: mClaimed, job: in.Job})
		case SendAck, RequestHandoff:
			k := map[IntentKind]msgKind{SendAck: mAck, RequestHandoff: mRequest}[in.Kind]
			if r := h.recvs[in.Job]; r != nil {
				w.send(msg{to: peer, kind: k, job: in.Job, lk: r.lk, offset: in.Offset, stamp: in.Stamp})
			}
		case CloseLink:
			var lk *link
			if st := h.streams[in.Job]; st != nil {
				lk = st.lk
			} else if r := h.recvs[in.Job]; r != nil {
				lk = r.lk
			}
			if lk != nil && lk.up {
				lk.up = false
				w.send(msg{to: peer, kind: mLost, job: in.Job})
			}
			delete(h.streams, in.Job)
			delete(h.recvs, in.Job)
		case DeleteSlots, DropImported:
			for _, o := range w.replicasOf(i) {
				for k := range o.data {
					if in.Slots.Contains(keySlot(k)) {
						delete(o.data, k)
					}
				}
			}
		case ClaimSlots:
			w.claim(i, in.Slots)
		}
	}
}

// claim binds slots to node i at a bumped epoch in its own view and
// queues the claim for the other views.
func (w *world) claim(i int, s Slots) {
	w.maxEpoch++
	e, id := w.maxEpoch, w.h[i].id
	s.each(func(x uint16) bool {
		if o, ok := w.bound[x][e]; ok && o != id {
			w.fail("slot %d bound to %v and %v at epoch %d", x, o, id, e)
		}
		w.bound[x][e] = id
		w.h[i].view.slots[x] = binding{id, e}
		return true
	})
	w.gossip = append(w.gossip, binding{id, e})
	w.gslots = append(w.gslots, s)
	if i == dst && !w.claimed {
		w.claimed, w.claimedAt = true, w.now
	}
	w.logf("%d claims at epoch %d", i, e)
}

// spreadGossip brings the first n claims of the log into every view that
// is not cut off from the bus.
func (w *world) spreadGossip(n int) {
	for _, h := range w.h {
		if h.deaf > w.now {
			continue
		}
		for ; h.seen < n; h.seen++ {
			b := w.gossip[h.seen]
			w.gslots[h.seen].each(func(x uint16) bool {
				if cur := h.view.slots[x]; b.epoch > cur.epoch {
					h.view.slots[x] = b
				}
				return true
			})
		}
	}
}

func keySlot(k string) uint16 {
	var s uint16
	fmt.Sscanf(k, "%d:", &s)
	return s
}

// deliver hands message j to its node.
func (w *world) deliver(j int) {
	m := w.net[j]
	if m.after > w.now {
		return
	}
	w.net = slices.Delete(w.net, j, j+1)
	h := w.h[m.to]
	if !h.alive || m.lk != nil && !m.lk.up {
		return
	}
	if m.to == dst {
		w.toTarget(h, m)
	} else {
		w.toSource(h, m)
	}
}

func (w *world) toTarget(h *host, m msg) {
	m0 := h.tab.Import(m.job)
	switch m.kind {
	case mEstablish:
		out, err := h.tab.Establish(w.now, h.view, m.job, srcID, m.slots, m.epoch)
		if err != nil {
			w.send(msg{to: src, kind: mRefused, job: m.job, lk: m.lk})
			return
		}
		h.recvs[m.job] = &recv{lk: m.lk}
		w.do(dst, out)
		w.send(msg{to: src, kind: mEstablishOK, job: m.job, lk: m.lk})
	case mAbort:
		w.do(dst, h.tab.AbortRequested(w.now, h.view, m.job, srcID, m.slots, m.epoch))
	case mSnapshotEOF:
		if r := h.recvs[m.job]; r != nil && m0 != nil && m0.State() == ReceivingSnapshot {
			maps.Copy(h.data, m.snap)
			r.gotSnap = true
			w.do(dst, m0.SnapshotEOF(w.now))
		}
	case mPing:
		if m0 != nil {
			m0.Heard(w.now)
		}
	case mPaused:
		if m0 != nil {
			w.do(dst, m0.SourcePaused(w.now, m.offset))
		}
	case mGrant:
		if m0 != nil {
			w.do(dst, m0.Granted(w.now, h.view, m.stamp))
		}
	case mLost:
		if m0 != nil {
			w.do(dst, m0.PeerLost(w.now))
		}
	}
}

func (w *world) toSource(h *host, m msg) {
	e := h.tab.Export(m.job)
	if e == nil {
		return
	}
	switch m.kind {
	case mEstablishOK:
		w.do(src, e.Established(w.now))
	case mRefused, mLost:
		w.do(src, e.PeerLost(w.now))
	case mAck:
		w.do(src, e.Acked(w.now, m.offset))
	case mRequest:
		w.do(src, e.HandoffRequested(w.now, m.offset, m.stamp))
	case mAborted:
		w.do(src, e.AbortConfirmed(w.now, h.view))
	}
}

// applyStream lets the target apply up to n more stream entries of every
// import whose connection is up.
func (w *world) applyStream(n int) {
	t := w.h[dst]
	if !t.alive || !w.h[src].alive {
		return
	}
	for job, r := range t.recvs {
		st, m := w.h[src].streams[job], t.tab.Import(job)
		if st == nil || st.lk != r.lk || !r.lk.up || !r.gotSnap || m == nil || m.State().Done() {
			continue
		}
		for k := 0; k < n && r.applied < len(st.log); k++ {
			en := st.log[r.applied]
			t.data[en.key] = en.val
			r.applied++
		}
		w.do(dst, m.Apply(w.now, uint64(r.applied), uint64(len(t.data)), uint64(r.applied)))
	}
}

// snapshotDone finishes the snapshots the source has cut.
func (w *world) snapshotDone() {
	s := w.h[src]
	if !s.alive {
		return
	}
	for _, e := range s.tab.Exports() {
		if st := s.streams[e.Name()]; st != nil && e.State() == Snapshotting && w.steps-st.cut >= w.snapSteps {
			w.do(src, e.SnapshotDone(w.now, uint64(len(st.snap)), uint64(len(st.snap)), uint64(len(st.log))))
		}
	}
}

// writable reports whether node i would accept a write to slot now.
func (w *world) writable(i int, slot uint16) bool {
	h := w.h[i]
	if !h.alive || h.demoted {
		return false
	}
	if o, _ := h.view.SlotOwner(slot); o != h.id {
		return false
	}
	for _, p := range h.pauses {
		if p.Contains(slot) {
			return false
		}
	}
	return true
}

// write is a client writing key: it tries the source, then the target, as
// a client following MOVED would, and the first node that accepts
// acknowledges it.
func (w *world) write(slot uint16, n int) {
	key := fmt.Sprintf("%d:%d", slot, n)
	for _, i := range []int{src, dst, repl} {
		if !w.writable(i, slot) {
			continue
		}
		w.seq++
		h := w.h[i]
		for _, o := range w.replicasOf(i) {
			o.data[key] = w.seq // acknowledged once replicated (WAIT 1)
		}
		w.acked[key] = w.seq
		if i == src {
			if w.claimed {
				w.fail("source accepted a write to %s at %v after the claim at %v", key, w.now, w.claimedAt)
			}
			for job, st := range h.streams {
				e := h.tab.Export(job)
				if st.snap != nil && e != nil && e.Slots().Contains(slot) {
					st.log = append(st.log, entry{key, w.seq})
					e.Streamed(uint64(len(st.log)), 0, 0)
				}
			}
		}
		return
	}
}

// crash stops node i: its table, connections, pauses and messages go; its
// durable records, data and view stay.
func (w *world) crash(i int) {
	h := w.h[i]
	if !h.alive {
		return
	}
	w.logf("crash %d", i)
	h.alive, h.downAt = false, w.now
	for _, st := range h.streams {
		st.lk.up = false
	}
	for _, r := range h.recvs {
		r.lk.up = false
	}
	h.streams, h.recvs, h.pauses = map[string]*stream{}, map[string]*recv{}, map[string]Slots{}
	h.tab = nil
	w.net = slices.DeleteFunc(w.net, func(m msg) bool { return m.to == i })
	w.cutLinks()
}

// cutLinks drops every connection, as a crash or a partition does; each
// side learns it only by a lost message (which may itself be lost) or by
// its timeouts.
func (w *world) cutLinks() {
	for i, h := range w.h {
		for job, st := range h.streams {
			if st.lk.up {
				st.lk.up = false
				w.send(msg{to: i, kind: mLost, job: job})
			}
		}
		for job, r := range h.recvs {
			if r.lk.up {
				r.lk.up = false
				w.send(msg{to: i, kind: mLost, job: job})
			}
		}
	}
}

// restart boots node i from its durable records.
func (w *world) restart(i int) {
	h := w.h[i]
	if h.alive {
		return
	}
	w.logf("restart %d", i)
	h.alive = true
	h.tab = NewTable(w.cfg)
	var hs []HardState
	for _, k := range slices.Sorted(maps.Keys(h.durable)) {
		// through the codec, as from the file
		st := h.durable[k]
		b, err := st.AppendBinary(nil)
		if err != nil {
			w.fail("encode: %v", err)
		}
		var d HardState
		if err := d.UnmarshalBinary(b); err != nil {
			w.fail("decode: %v", err)
		}
		hs = append(hs, d)
	}
	if i == src && w.promoted {
		w.rejoinAsReplica()
	}
	w.do(i, h.tab.Restore(w.now, h.view, hs))
	w.markFailed(i, false)
}

// markFailed sets the other nodes' view of node i.
func (w *world) markFailed(i int, failed bool) {
	for j, o := range w.h {
		if j != i {
			n := o.view.nodes[w.h[i].id]
			n.Failed = failed
			o.view.nodes[w.h[i].id] = n
		}
	}
}

func (w *world) tick() {
	for i, h := range w.h {
		if h.alive {
			w.do(i, h.tab.Tick(w.now, h.view))
		} else if w.now-h.downAt > 2*w.cfg.NodeTimeout {
			w.markFailed(i, true)
		}
	}
}

// check tests the invariants that hold at every step.
func (w *world) check() {
	w.slots.each(func(x uint16) bool {
		n := 0
		for i := range w.h {
			if w.writable(i, x) {
				n++
			}
		}
		if n > 1 {
			w.fail("slot %d writable on %d nodes", x, n)
		}
		return true
	})
}

// running reports whether either node still has a migration going.
func (w *world) running() bool {
	for _, h := range w.h {
		if h.alive && (len(h.tab.Exports()) > 0 || len(h.tab.Imports()) > 0) {
			return true
		}
	}
	return false
}

// settle heals everything and runs until no migration runs, then checks
// the final state: one owner, every acknowledged write on it, nothing left
// on the other side, no pause, no record.
func (w *world) settle() {
	w.loss = 0
	for i := range w.net {
		w.net[i].after = 0
	}
	for _, h := range w.h {
		h.deaf = 0
	}
	for i := range w.h {
		w.restart(i)
	}
	for step := 0; w.running() || len(w.net) > 0; step++ {
		if step > 100000 {
			w.fail("did not settle: source %+v\ntarget %+v", w.h[src].tab.Status(), w.h[dst].tab.Status())
		}
		w.now += 5 * time.Millisecond
		w.steps++
		for len(w.net) > 0 {
			w.deliver(0)
		}
		w.applyStream(1000)
		w.snapshotDone()
		w.spreadGossip(len(w.gossip))
		w.tick()
		w.check()
	}
	w.spreadGossip(len(w.gossip))
	w.tick()
	w.final()
}

func (w *world) final() {
	var owner wire.NodeID
	w.slots.each(func(x uint16) bool {
		var top uint64
		for e, o := range w.bound[x] {
			if e > top {
				top, owner = e, o
			}
		}
		for _, h := range w.h {
			if o, _ := h.view.SlotOwner(x); o != owner {
				w.fail("slot %d: node %v sees owner %v, the highest claim is %v", x, h.id, o, owner)
			}
		}
		return true
	})
	for _, h := range w.h {
		if h.id == owner {
			for k, v := range w.acked {
				if h.data[k] != v {
					w.fail("key %s: owner %v holds %d, acknowledged %d", k, h.id, h.data[k], v)
				}
			}
			continue
		}
		if h.demoted || h.id == replID && !w.promoted {
			continue // a replica holds its master's keys
		}
		for k := range h.data {
			if w.slots.Contains(keySlot(k)) {
				w.fail("key %s left on %v, which does not own it", k, h.id)
			}
		}
	}
	for i, h := range w.h {
		if len(h.pauses) > 0 || len(h.durable) > 0 {
			w.fail("node %d left with pauses %v, records %v", i, h.pauses, h.durable)
		}
	}
}

// exportState returns the state of the source's current export, or 0.
func (w *world) exportState() State {
	if s := w.h[src]; s.alive {
		if ex := s.tab.Exports(); len(ex) > 0 {
			return ex[0].State()
		}
	}
	return 0
}

// importState returns the state of the target's current import, or 0.
func (w *world) importState() State {
	if d := w.h[dst]; d.alive {
		if im := d.tab.Imports(); len(im) > 0 {
			return im[0].State()
		}
	}
	return 0
}

// step runs one round of the lossless schedule: deliver what was sent before, apply
// the stream, finish snapshots, write once, tick.
func (w *world) step() {
	w.now += 5 * time.Millisecond
	w.steps++
	g := len(w.gossip)
	for n := len(w.net); n > 0; n-- {
		w.deliver(0)
	}
	w.applyStream(2)
	w.snapshotDone()
	w.write(uint16(w.seq%3), w.seq%4)
	w.spreadGossip(g)
	w.tick()
	w.check()
}
