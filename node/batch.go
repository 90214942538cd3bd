package node

import (
	"context"
	"net/netip"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// outbox collects what the Readies of one batch leave to do once their
// state is durable: the bus loop applies every Ready it gets within one
// pass (the frames of all the links that had traffic, a tick with its
// heartbeat samples) into the outbox, and flushes it once at the end of
// the pass: one write of the node config file, then every message, then
// one publish of the route view. While a cluster of a hundred nodes
// forms, each node hears some hundred slot claims and epoch raises, each
// of which used to cost a write with two fsyncs and a rebuilt view.
//
// Each item remembers whether its Ready asked for persistence (durable):
// when the write fails, those items are dropped as apply dropped such a
// whole Ready before batching, and the rest goes out as it did then.
type outbox struct {
	persist bool // some Ready asked for a write before its messages
	// sync is set when one of those Readies needs the write fsynced
	// before its messages; only an admin change applied with applyNow's
	// fsync false leaves it unset.
	sync bool
	// publish is set when some Ready was Dirty or had events; plain when
	// one of those did not ask for persistence (its migration tick runs
	// even when the write fails).
	publish, plain bool

	frames []byte // the encoded messages, back to back
	sends  []queuedSend
	events []queuedEvent
	fails  []queuedFailover

	// A Ready that pauses or resumes writes is flushed at once (see
	// apply), so at most one of each waits, in the last Ready.
	pause          time.Duration
	resume         bool
	controlDurable bool
}

type queuedSend struct {
	to      netip.AddrPort
	typ     wire.Type
	end     int // the frame is frames[previous end:end]
	durable bool
}

type queuedEvent struct {
	ev      gossip.Event
	durable bool
}

type queuedFailover struct {
	ev      gossip.FailoverEvent
	durable bool
}

func (o *outbox) empty() bool {
	return !o.persist && !o.publish && len(o.sends) == 0 && len(o.events) == 0 && len(o.fails) == 0 &&
		o.pause == 0 && !o.resume
}

// maxKeptFrames bounds the frame buffer an outbox keeps between batches:
// the batches of a forming cluster reach hundreds of KiB, which a settled
// node would otherwise hold for good (its heap is a few MiB); a settled
// node's batches are a few frames.
const maxKeptFrames = 64 << 10

func (o *outbox) reset() {
	frames := o.frames[:0]
	if cap(frames) > maxKeptFrames {
		frames = nil
	}
	*o = outbox{frames: frames, sends: o.sends[:0], events: o.events[:0], fails: o.fails[:0]}
}

// apply takes one Ready into the current batch. The messages are encoded
// at once (a Ready's messages are valid only until the next core call);
// everything else waits for flush, which runs at the end of the loop's
// pass. Writes are paused and resumed in order with the messages around
// them, so such a Ready is flushed at once, as is everything applied
// before the bus loop is known (nothing could queue the flush).
func (b *bus) apply(r gossip.Ready) { b.applySync(r, true) }

// applySync is apply; with fsync false, the write r asks for (Persist)
// may leave out the fsyncs (see Node.adminDeferSync).
func (b *bus) applySync(r gossip.Ready, fsync bool) {
	b.mirrorStats()
	o := b.box
	durable := r.Persist
	o.persist = o.persist || durable
	o.sync = o.sync || (durable && fsync)
	if durable || r.Dirty {
		// Until the batch is written, a shutdown must still write it.
		b.dirty = true
	}
	if r.Dirty || len(r.Events) > 0 {
		o.publish = true
		o.plain = o.plain || !durable
	}
	for _, ev := range r.Events {
		o.events = append(o.events, queuedEvent{ev: ev, durable: durable})
	}
	for i := range r.Failover {
		o.fails = append(o.fails, queuedFailover{ev: r.Failover[i], durable: durable})
	}
	for i := range r.Messages {
		e := &r.Messages[i]
		frames, err := b.enc.AppendFrame(o.frames, e.Msg)
		if err != nil {
			b.n.log.Error("bus: cannot encode", "type", e.Msg.Type.String(), "err", err)
			continue
		}
		o.frames = frames
		o.sends = append(o.sends, queuedSend{to: netip.AddrPortFrom(e.Addr.IP, e.Addr.BusPort), typ: e.Msg.Type, end: len(frames), durable: durable})
	}
	if r.PauseWrites != 0 || r.ResumeWrites {
		o.pause, o.resume, o.controlDurable = r.PauseWrites, r.ResumeWrites, durable
	}
	switch {
	case o.pause != 0 || o.resume || b.loop.Load() == nil:
		b.flush()
	case o.empty():
		// Nothing to flush, but the step may have brought a deadline
		// of the core forward.
		b.arm(b.n.now(), false)
	default:
		b.queueFlush()
	}
}

// mirrorStats copies the core's message counters for Stats. It runs on
// the loop, after each call into the core (every one passes through
// applySync).
func (b *bus) mirrorStats() {
	st := b.n.core.Stats()
	b.statsMu.Lock()
	b.stats = st
	b.statsMu.Unlock()
}

// Stats returns the core's message counters as of its last call; any
// goroutine may call it.
func (b *bus) Stats() gossip.Stats {
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	return b.stats
}

// applyNow applies r and flushes the batch with it, publishing the route
// view even when nothing in it changed: for admin calls, whose reply must
// find their effect durable, sent and visible to clients. fsync is as for
// applySync.
func (b *bus) applyNow(r gossip.Ready, fsync bool) {
	b.box.publish = true
	b.holdFlush(func() { b.applySync(r, fsync) })
	b.flush()
}

// holdFlush runs fn, which applies Readies, without queueing a flush for
// them: the caller flushes as soon as fn returns, and a queued task would
// only wake the loop once more to find the batch empty.
func (b *bus) holdFlush(fn func()) {
	b.flushHeld++
	defer func() { b.flushHeld-- }()
	fn()
}

// queueFlush queues one flush behind whatever the loop has to do in this
// pass: gnet runs queued tasks after the I/O events of a pass.
func (b *bus) queueFlush() {
	if b.flushQueued || b.flushHeld > 0 {
		return
	}
	loop := b.loop.Load()
	b.flushQueued = true
	if (*loop).Execute(context.Background(), b.flushTask) != nil {
		// The engine is stopping; write now what can still be written.
		b.flushQueued = false
		b.flush()
	}
}

func (b *bus) runFlush(context.Context) error {
	b.flushQueued = false
	b.flush()
	return nil
}

// flush carries out the batch now: persist first when a Ready asked, so
// that no message leaves before the state it depends on is durable; then
// record the events, send the messages, pause or resume writes, and
// republish the client views. Besides the end of a pass, it runs before
// anything else on the loop reads the core (a tick's migrations and
// heartbeats, exec and post tasks): they act on what they read, and must
// find it durable and sent, as they did when every Ready was carried out
// at once. What is applied while it runs is carried out before it returns.
func (b *bus) flush() {
	n := b.n
	if b.box.empty() {
		return
	}
	b.holdFlush(b.flushBoxes)
	if b.loop.Load() != nil {
		b.arm(n.now(), false)
	}
}

// flushBoxes carries out batches until what they apply leaves none.
func (b *bus) flushBoxes() {
	n := b.n
	for !b.box.empty() {
		o := b.takeBox()
		now := n.now()
		durable := true
		if o.persist {
			durable = b.persist(now, o.sync)
		}
		for i := range o.events {
			if e := &o.events[i]; durable || !e.durable {
				b.event(e.ev, now)
			}
		}
		for i := range o.fails {
			if f := &o.fails[i]; durable || !f.durable {
				b.failoverEvent(&f.ev)
			}
		}
		start, dropped := 0, 0
		for _, s := range o.sends {
			frame := o.frames[start:s.end]
			start = s.end
			if !durable && s.durable {
				// Sending would announce state that is not durable. The
				// core retransmits rumors, and gossip repairs the rest.
				dropped++
				continue
			}
			b.deliver(s.to, s.typ, frame, now)
		}
		if dropped > 0 {
			n.metrics.persistDropped.Add(dropped)
		}
		if durable || !o.controlDurable {
			if o.resume {
				b.resumeWrites()
			}
			if o.pause != 0 {
				b.pauseWrites(o.pause, now)
			}
		}
		if o.publish || !durable {
			n.publish()
		}
		// A slot moved or a node's flags changed: that may end or
		// complete a migration (migrate's Table.NextDeadline).
		if o.publish && (durable || o.plain) && n.mig != nil {
			n.mig.tick(now)
		}
		o.reset()
		b.free = append(b.free, o)
	}
}

// takeBox returns the current batch and starts a new one. What flush
// does may apply Readies (a migration claiming slots, a write pause),
// which are carried out within it, as apply did before batching: each
// flush works on a box of its own.
func (b *bus) takeBox() *outbox {
	o := b.box
	if k := len(b.free); k > 0 {
		b.box, b.free = b.free[k-1], b.free[:k-1]
	} else {
		b.box = new(outbox)
	}
	return o
}

// event records one event of the core: metrics, the web view, the log.
func (b *bus) event(ev gossip.Event, now time.Duration) {
	n := b.n
	if ev.Kind == gossip.EventNodeAdded || ev.Kind == gossip.EventNodeRemoved {
		b.membershipAt = max(now, 1)
	}
	n.metrics.event(ev.Kind)
	n.webEvent(ev)
	switch ev.Kind {
	case gossip.EventNodePFail, gossip.EventNodeFail, gossip.EventNodeFailCleared, gossip.EventNodeAdded, gossip.EventNodeRemoved, gossip.EventRoleChanged, gossip.EventSelfFailed:
		n.log.Info("cluster: "+ev.Kind.String(), "node", ev.Node.String())
	default:
		n.log.Debug("cluster: "+ev.Kind.String(), "node", ev.Node.String())
	}
}
