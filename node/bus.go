package node

import (
	"context"
	"errors"
	"iter"
	"maps"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// Bus tuning.
const (
	// maxPending bounds the bytes queued for one peer while its link is
	// being dialled; messages beyond it are dropped (gossip repairs them).
	maxPending = 256 << 10
	// redialBackoff keeps a peer that refused a dial from being redialled
	// for every message addressed to it.
	redialBackoff = 250 * time.Millisecond
	// linkIdle closes outbound links that carried nothing for this long.
	// With heartbeats off the bus, an idle node of a 100-node cluster
	// writes to a given peer about once a minute (a gossip PING or the
	// PONG answering one), so a shorter idle time would make most of
	// those messages dial a new link, and each dial wakes both nodes
	// several times more than the message does (connect, accept, hand-off
	// to the loop). MaxLinks still bounds the links held.
	linkIdle = 5 * time.Minute
	// persistCoalesce is the longest a Dirty-only change waits on disk.
	persistCoalesce = 200 * time.Millisecond
	// writableDelay is how long a master restarted with slots waits
	// before serving them, so that it hears first whether a replica took
	// them over while it was down (Redis waits 2 seconds too).
	writableDelay = 2 * time.Second
	// membershipSettle is how long the set of known nodes must stay
	// unchanged after it changed before the node hands its free heap
	// back to the OS (see bus.membershipAt).
	membershipSettle = 10 * time.Second
)

// link is one bus connection. Outbound links are keyed by the peer's bus
// address and carry our messages; inbound links are accepted from peers
// and only read. Both directions are decoded the same way.
type link struct {
	addr     netip.AddrPort
	peer     wire.NodeID // last sender seen on an inbound link
	outbound bool
	conn     gnet.Conn // nil while dialling
	closed   bool
	created  time.Time
	lastUsed time.Duration // bus time of the last send (outbound) or receive
	failedAt time.Duration // when the last dial failed; 0 if none
	pending  []byte        // frames queued while dialling
	dropped  uint64
}

// bus is the gnet event handler of the cluster bus. Every field below is
// owned by the engine's single event loop, except loop (set once from the
// dial goroutine) and the atomics.
type bus struct {
	gnet.BuiltinEventEngine
	n *Node

	eng       gnet.Engine
	loop      atomic.Pointer[gnet.EventLoop]
	ready     chan struct{} // closed once loop is known
	booted    chan struct{} // closed by the first OnTick: the engine runs
	ticking   atomic.Bool   // a tick is queued on the loop and not yet run
	attaching atomic.Bool   // acquireLoop has been started

	// The tick timer: armed on the loop for the core's next deadline (and
	// the bus's own), it queues a tick onto the loop when it fires, so an
	// idle node wakes only when something is due.
	timer   *time.Timer
	armedAt time.Duration // bus time the timer fires at; 0 when unarmed
	inTick  bool          // a tick is running; it arms the timer when done

	enc *wire.Encoder
	// One decoder and message serve every link: all links live on the one
	// event loop and a frame is decoded and stepped before the next is
	// read, so per-connection decoders would only cost memory.
	dec *wire.Decoder
	msg wire.Message

	// stats mirrors the core's message counters after every call into it,
	// so that CLUSTER INFO answers on the client loop, without waiting for
	// the bus loop (which a forming cluster keeps busiest).
	statsMu sync.Mutex
	stats   gossip.Stats

	// box is the batch being applied (batch.go); free keeps flushed ones.
	box         *outbox
	free        []*outbox
	flushQueued bool // a flush task is queued on the loop
	flushHeld   int  // callers on the loop that flush before they return (holdFlush)
	flushTask   gnet.Runnable
	// save and deliver write the node config file (with fsyncs unless
	// sync is false) and hand a frame to its link: saveState and
	// transmit, but for tests of the batching.
	save    func(sync bool) error
	deliver func(to netip.AddrPort, typ wire.Type, frame []byte, now time.Duration)

	out     map[netip.AddrPort]*link
	in      map[*link]struct{}
	control gnet.Conn

	dirty     bool // a Dirty change waits to be written
	lastWrite time.Duration
	lastIdle  time.Duration

	pauseGen   uint64 // counts write pauses, so a stale deadline resumes nothing
	pauseTimer *time.Timer

	// membershipAt is when a node was last added or removed, 0 once the
	// memory of that change was released. Forming or joining a cluster
	// of N nodes takes O(N²) messages in a few seconds, and the Go heap
	// grows to several times what the settled node keeps: at 100 nodes
	// the nodes of a fresh cluster stayed at about 8.5 MiB of anonymous
	// memory, where a node that joined the settled cluster had 4.8 MiB.
	// The runtime returns free heap only down to its next GC goal, so
	// once membership has been quiet for membershipSettle the tick asks
	// for one release (clientServer.releaseMemory, which rate-limits
	// them); an idle node then pays for nothing it no longer holds.
	membershipAt time.Duration
}

func newBus(n *Node) *bus {
	b := &bus{
		n:      n,
		ready:  make(chan struct{}),
		booted: make(chan struct{}),
		enc:    wire.NewEncoder(n.cfg.ClusterSecret),
		dec:    wire.NewDecoder(n.cfg.ClusterSecret),
		out:    make(map[netip.AddrPort]*link),
		in:     make(map[*link]struct{}),
		box:    new(outbox),
		save:   n.saveState,
	}
	b.flushTask = gnet.RunnableFunc(b.runFlush)
	b.deliver = b.transmit
	return b
}

// OnBoot keeps the engine handle for dialling.
func (b *bus) OnBoot(eng gnet.Engine) gnet.Action {
	b.eng = eng
	return gnet.None
}

// OnTick runs on gnet's ticker goroutine, which starts once the engine's
// loops run: its first call attaches to the loop and lets the acceptor
// hand connections over (Register during OnBoot races the engine's own
// start). The ticks themselves come from the bus's own
// timer (arm), so once attached the ticker sleeps for an hour at a time.
func (b *bus) OnTick() (time.Duration, gnet.Action) {
	if b.loop.Load() != nil {
		return time.Hour, gnet.None
	}
	if b.attaching.CompareAndSwap(false, true) {
		close(b.booted)
		go b.acquireLoop()
	}
	return 50 * time.Millisecond, gnet.None
}

// queueTick runs a tick on the loop, unless one is queued already. The
// timer calls it from its own goroutine, so it never touches the core.
func (b *bus) queueTick() {
	loop := b.loop.Load()
	if loop != nil && b.ticking.CompareAndSwap(false, true) {
		if (*loop).Execute(context.Background(), gnet.RunnableFunc(b.tick)) != nil {
			b.ticking.Store(false)
		}
	}
}

// arm sets the timer for the earliest of the core's next deadline and the
// bus's own (a coalesced write, the writable delay, a migration's). The
// idle-link sweep has no deadline of its own: it rides on whichever tick
// comes a second after the last, since the core never sleeps past its
// TickPeriod, and a wakeup of its own was one more per second. With force
// false (after a Step) it only brings the timer forward. It runs on the
// loop.
func (b *bus) arm(now time.Duration, force bool) {
	if !force && b.inTick {
		return // the tick arms the timer when it ends
	}
	n := b.n
	at := n.core.NextDeadline()
	if b.dirty {
		at = min(at, b.lastWrite+persistCoalesce)
	}
	if !n.writableAt.IsZero() {
		at = min(at, now+time.Until(n.writableAt))
	}
	if d, ok := n.mig.deadline(now); ok {
		at = min(at, d)
	}
	if !force && b.armedAt != 0 && at >= b.armedAt {
		return
	}
	at = max(at, now)
	b.armedAt = at
	if b.timer == nil {
		b.timer = time.AfterFunc(at-now, b.queueTick)
		return
	}
	b.timer.Reset(at - now)
}

// acquireLoop gets a handle on the engine's event loop. gnet hands out its
// EventLoop only through a Conn, so we register a connected UDP socket aimed
// at our own bus port: gnet adds it to the loop without calling OnOpen, no
// peer is involved, and it never sends or receives anything.
func (b *bus) acquireLoop() {
	a := b.n.addrs.bind
	if a.IsUnspecified() {
		a = b.n.addrs.announce
	}
	addr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(b.n.cfg.BusPort)))
	for {
		ch, err := b.eng.Register(gnet.NewNetAddrContext(context.Background(), addr))
		if err == nil {
			r := <-ch
			if r.Err == nil {
				loop := r.Conn.EventLoop()
				b.control = r.Conn
				b.loop.Store(&loop)
				close(b.ready)
				b.queueTick() // the first tick arms the timer
				return
			}
			err = r.Err
		}
		if errors.Is(err, context.Canceled) || b.n.stopping.Load() {
			return
		}
		b.n.log.Warn("bus: cannot attach to the event loop yet", "err", err)
		time.Sleep(50 * time.Millisecond)
	}
}

// tick runs on the loop: drive the core's timers, flush coalesced state,
// feed heartbeats, and retire idle links.
func (b *bus) tick(context.Context) error {
	b.ticking.Store(false)
	n := b.n
	now := n.now()
	b.inTick = true
	defer func() {
		b.inTick = false
		b.arm(now, true)
	}()
	n.core.ReplicationStatus(uint64(n.repl.Offset()), n.repl.MasterDataAge())
	b.holdFlush(func() {
		if n.hb != nil {
			// Samples first: a peer is judged on the PONGs it sent so far,
			// and the tick may come exactly when its silence would count.
			n.hb.feed(now)
		}
		b.apply(n.core.Tick(now))
	})
	b.flush()
	if n.hb != nil {
		n.hb.tick(now)
	}
	n.mig.tick(now)
	if v := n.view.Load(); v != nil && v.held && !n.writableAt.IsZero() && time.Now().After(n.writableAt) {
		n.writableAt = time.Time{}
		n.publish()
	}
	if b.dirty && now-b.lastWrite >= persistCoalesce {
		b.persist(now, true)
	}
	if b.membershipAt != 0 && now-b.membershipAt >= membershipSettle {
		b.membershipAt = 0
		n.cli.releaseMemory()
	}
	n.metrics.linksOut.Store(int64(len(b.out)))
	n.metrics.linksIn.Store(int64(len(b.in)))
	if now-b.lastIdle >= time.Second {
		b.lastIdle = now
		for _, l := range b.out {
			if l.conn != nil && now-l.lastUsed > linkIdle {
				b.closeLink(l)
			}
		}
	}
	return nil
}

// pauseWrites pauses client writes for a manual failover until the core
// ends the pause or until (bus time) passes, whichever comes first, and
// tells the core the offset every earlier write reached.
func (b *bus) pauseWrites(until, now time.Duration) {
	n := b.n
	b.pauseGen++
	gen := b.pauseGen
	n.disp.PauseWrites()
	if b.pauseTimer != nil {
		b.pauseTimer.Stop()
	}
	b.pauseTimer = time.AfterFunc(until-now, func() {
		loop := b.loop.Load()
		if loop == nil {
			return
		}
		_ = (*loop).Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			b.flush() // the pause ends after the messages applied before
			if b.pauseGen == gen {
				n.log.Warn("failover: write pause deadline passed; resuming writes")
				b.resumeWrites()
			}
			return nil
		}))
	})
	n.log.Info("failover: writes paused for a manual failover", "offset", n.repl.Offset())
	b.apply(n.core.WritesPaused(now, uint64(n.repl.Offset())))
}

func (b *bus) resumeWrites() {
	b.pauseGen++
	if b.pauseTimer != nil {
		b.pauseTimer.Stop()
		b.pauseTimer = nil
	}
	if b.n.disp.WritesPaused() {
		b.n.disp.ResumeWrites()
		b.n.log.Info("failover: writes resumed")
	}
}

// failoverEvent logs one election step and counts it.
func (b *bus) failoverEvent(e *gossip.FailoverEvent) {
	n := b.n
	n.metrics.failover(e)
	n.webFailover(e)
	switch e.Kind {
	case gossip.FailoverNote:
		n.log.Info("failover: "+e.Reason, "master", e.Node.String(), "epoch", e.Epoch)
	case gossip.FailoverVote:
		if e.Granted {
			n.log.Info("failover: vote granted", "candidate", e.Node.String(), "epoch", e.Epoch)
		} else {
			n.warn.Info("failover: vote refused", "candidate", e.Node.String(), "epoch", e.Epoch, "reason", e.Reason)
		}
	case gossip.FailoverAck:
		n.log.Debug("failover: vote received", "voter", e.Node.String(), "epoch", e.Epoch)
	case gossip.FailoverPromoted:
		n.log.Info("failover: promoted to master", "old_master", e.Node.String(), "config_epoch", e.Epoch)
	case gossip.FailoverTakeover:
		n.log.Info("failover: took over without votes", "old_master", e.Node.String(), "config_epoch", e.Epoch)
	case gossip.FailoverMigrated:
		n.log.Info("replica migration: moving to an orphaned master", "master", e.Node.String())
	}
}

// persist writes the node config file now. It reports success. Without
// sync the file is replaced but not fsynced, and stays dirty: the
// coalesced write persistCoalesce later makes it durable.
func (b *bus) persist(now time.Duration, sync bool) bool {
	if err := b.save(sync); err != nil {
		b.n.log.Error("cannot write the node config file", "err", err)
		b.dirty = true
		return false
	}
	b.dirty = !sync
	b.lastWrite = now
	return true
}

// transmit hands one encoded frame to the peer's outbound link.
func (b *bus) transmit(to netip.AddrPort, typ wire.Type, frame []byte, now time.Duration) {
	l := b.outLink(to, now)
	if l == nil {
		b.n.metrics.sendDropped.Inc()
		return
	}
	l.lastUsed = now
	b.n.metrics.busMsg(typ, true, len(frame))
	if l.conn != nil {
		// gnet writes straight to the socket and copies any remainder into
		// its own buffer, so frame may be reused afterwards. A write error
		// closes the conn (OnClose runs inside Write).
		_, _ = l.conn.Write(frame)
		return
	}
	if len(l.pending)+len(frame) > maxPending {
		l.dropped++
		b.n.metrics.sendDropped.Inc()
		return
	}
	l.pending = append(l.pending, frame...)
}

// outLink returns the outbound link to addr, dialling one on demand. It
// returns nil when the peer recently refused a dial.
func (b *bus) outLink(addr netip.AddrPort, now time.Duration) *link {
	if l := b.out[addr]; l != nil {
		if l.conn == nil && l.failedAt != 0 {
			if now-l.failedAt < redialBackoff {
				return nil
			}
			delete(b.out, addr)
		} else {
			return l
		}
	}
	if len(b.out) >= b.n.cfg.MaxLinks {
		b.evictLRU(maps.Values(b.out))
	}
	l := &link{addr: addr, outbound: true, created: time.Now(), lastUsed: now}
	b.out[addr] = l
	b.dial(l)
	return l
}

// dial connects l to its peer and hands the connection to the bus
// engine's loop. The dial runs on its own goroutine with a timeout of one
// node timeout (gnet's own Register would wait for the kernel's connect
// timeout, minutes for a peer that drops SYNs); OnOpen (on the loop)
// attaches the conn and flushes l.pending, and a failure is reported back
// to the loop with Execute.
func (b *bus) dial(l *link) {
	loop := b.loop.Load()
	timeout := b.n.cfg.NodeTimeout
	go func() {
		d := net.Dialer{Timeout: timeout}
		c, err := d.Dial("tcp", l.addr.String())
		if err == nil {
			var ch <-chan gnet.RegisteredResult
			ch, err = b.eng.Register(gnet.NewContext(gnet.NewNetConnContext(context.Background(), c), l))
			if err != nil {
				_ = c.Close()
			} else if r := <-ch; r.Err != nil {
				err = r.Err
			}
		}
		if err == nil || loop == nil {
			return
		}
		_ = (*loop).Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			b.n.log.Debug("bus: dial failed", "peer", l.addr.String(), "err", err)
			l.failedAt = max(b.n.now(), 1)
			l.pending = nil
			b.n.metrics.dialFailed.Inc()
			return nil
		}))
	}()
}

// evictLRU closes the link of links used least recently, to make room in
// one direction (b.out or b.in). Inbound links that never carried a frame
// keep the lastUsed of their opening, so a flood of silent connections
// pushes out its own oldest members before busy peers.
func (b *bus) evictLRU(links iter.Seq[*link]) {
	var victim *link
	for l := range links {
		if victim == nil || l.lastUsed < victim.lastUsed {
			victim = l
		}
	}
	if victim != nil {
		b.n.metrics.linkEvicted.Inc()
		b.closeLink(victim)
	}
}

func (b *bus) closeLink(l *link) {
	if b.out[l.addr] == l {
		delete(b.out, l.addr)
	}
	delete(b.in, l)
	l.closed = true
	if l.conn != nil {
		_ = l.conn.Close()
	}
}

// OnOpen attaches an outbound conn to its link (the link came through the
// Register context) or starts tracking an inbound one.
func (b *bus) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if l, ok := c.Context().(*link); ok {
		b.n.conns.Add(1) // OnClose follows even when this refuses it
		if l.closed || b.out[l.addr] != l {
			return nil, gnet.Close
		}
		l.conn = c
		var out []byte
		out, l.pending = l.pending, nil
		b.n.metrics.linkOpened.Inc()
		return out, gnet.None
	}
	if len(b.in) >= b.n.cfg.MaxLinks {
		b.evictLRU(maps.Keys(b.in))
	}
	l := &link{conn: c, created: time.Now(), lastUsed: b.n.now()}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		l.addr = ap
	}
	c.SetContext(l)
	b.in[l] = struct{}{}
	b.n.metrics.linkOpened.Inc()
	b.n.conns.Add(1)
	return nil, gnet.None
}

// OnClose forgets the link. It may run inside a Write from send.
func (b *bus) OnClose(c gnet.Conn, _ error) gnet.Action {
	l, ok := c.Context().(*link)
	if !ok {
		return gnet.None
	}
	l.closed = true
	l.conn = nil
	b.n.conns.Add(-1)
	if b.out[l.addr] == l {
		delete(b.out, l.addr)
	}
	delete(b.in, l)
	return gnet.None
}

// OnTraffic decodes every whole frame in the inbound buffer in place, steps
// the core with it, and applies the result. A bad frame closes the link.
func (b *bus) OnTraffic(c gnet.Conn) gnet.Action {
	l, ok := c.Context().(*link)
	if !ok {
		// The control socket never expects data; drop anything that comes.
		_, _ = c.Discard(c.InboundBuffered())
		return gnet.None
	}
	n := b.n
	for {
		hdr, err := c.Peek(wire.FrameHeaderLen)
		if err != nil {
			return gnet.None // fewer than a header's bytes buffered
		}
		size, err := wire.FrameLen(hdr)
		if err != nil {
			return b.badFrame(l, err)
		}
		frame, err := c.Peek(size)
		if err != nil {
			return gnet.None // wait for the rest of the frame
		}
		err = b.dec.Decode(frame, &b.msg)
		_, _ = c.Discard(size)
		if err != nil {
			return b.badFrame(l, err)
		}
		now := n.now()
		l.lastUsed = now
		l.peer = b.msg.Header.Sender
		n.metrics.busMsg(b.msg.Type, false, size)
		b.apply(n.core.Step(now, &b.msg))
		if l.closed {
			return gnet.Close
		}
	}
}

func (b *bus) badFrame(l *link, err error) gnet.Action {
	b.n.metrics.badFrame(err)
	b.n.warn.Warn("bus: bad frame, closing link", "peer", l.addr.String(), "err", err) // a peer can send these at will
	return gnet.Close
}

// linkInfo is one row of CLUSTER LINKS.
type linkInfo struct {
	outbound bool
	node     wire.NodeID
	created  time.Time
	pending  int
}

// links lists the open links; it runs on the loop.
func (b *bus) links(byAddr map[netip.AddrPort]wire.NodeID) []linkInfo {
	var ls []linkInfo
	for _, l := range b.out {
		ls = append(ls, linkInfo{outbound: true, node: byAddr[l.addr], created: l.created, pending: len(l.pending)})
	}
	for l := range b.in {
		// Redis lists only links attached to a known node; an inbound
		// link is attached once its first frame names the sender.
		if !l.peer.IsZero() {
			ls = append(ls, linkInfo{node: l.peer, created: l.created})
		}
	}
	return ls
}
