package node

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/migrate"
	"github.com/hearsay/hearsay/node/rdb"
	"github.com/hearsay/hearsay/node/repl"
	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/ring"
)

// The source side of an atomic migration's connection: one exportLink per
// export, with a goroutine that dials the target, writes the snapshot and
// the filtered write stream, and one that reads the target's ACKs and
// handoff requests. Both report to the bus loop with Node.post; the loop
// steers the writer through ctl, which never blocks the loop.

// exportCtlKind is an order from the loop to an export's writer.
type exportCtlKind uint8

const (
	ctlSnapshot exportCtlKind = iota + 1 // the target said +OK: snapshot, then stream
	ctlPing                              // keepalive
	ctlPause                             // writes paused at replOff: report the stream offset there
	ctlPaused                            // send PAUSED off
	ctlGrant                             // send FAILOVER-GRANTED off (the stamp)
)

type exportCtl struct {
	kind    exportCtlKind
	replOff int64
	off     uint64
}

// exportLink is the connection of one export.
type exportLink struct {
	n      *Node
	name   string
	self   wire.NodeID
	target wire.NodeID
	addr   string
	slots  migrate.Slots
	epoch  uint64
	ctl    chan exportCtl
	linkLife
}

// connect carries out Connect: look up the target's client address on the
// loop, then dial from a goroutine.
func (m *migrator) connect(it *migrate.Intent) {
	n := m.n
	l := &exportLink{n: n, name: it.Job, self: n.core.ID(), target: it.Node, slots: it.Slots, epoch: it.Epoch,
		ctl: make(chan exportCtl, 256), linkLife: linkLife{quit: make(chan struct{})}}
	if v, ok := n.core.Node(it.Node); ok {
		l.addr = netip.AddrPortFrom(v.Addr.IP, v.Addr.Port).String()
	}
	m.exports[it.Job] = l
	go l.run()
}

// send queues an order for the writer; a writer so far behind that 256
// orders wait is stuck, and the link is dropped.
func (l *exportLink) send(c exportCtl) {
	select {
	case l.ctl <- c:
	default:
		l.n.log.Warn("migrate: the connection to the target does not drain; closing it", "job", l.name)
		l.close()
	}
}

// lost reports the end of the connection to the export, once.
func (l *exportLink) lost(err error) {
	if !l.closed() {
		l.n.log.Warn("migrate: connection to the target ended", "job", l.name, "target", l.addr, "err", err)
	}
	l.close()
	name := l.name
	l.n.post(func(now time.Duration) {
		m := l.n.mig
		if m.exports[name] == l {
			delete(m.exports, name)
		}
		if e := m.table.Export(name); e != nil {
			m.run(now, e.PeerLost(now))
		}
	})
}

// dialTarget opens a client connection to addr and authenticates as a
// replica does.
func dialTarget(n *Node, addr string) (net.Conn, *bufio.Reader, error) {
	if addr == "" {
		return nil, nil, errors.New("target address unknown")
	}
	c, err := net.DialTimeout("tcp", addr, n.cfg.NodeTimeout)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(c, 64<<10)
	if n.masterAuth != "" {
		_ = c.SetDeadline(time.Now().Add(n.mig.table.Config().AckTimeout))
		if _, err := c.Write(appendStrings(nil, "AUTH", n.masterAuth)); err != nil {
			c.Close()
			return nil, nil, err
		}
		if line, err := readLine(br); err != nil || line != "+OK" {
			c.Close()
			return nil, nil, errors.Join(errors.New("AUTH refused: "+line), err)
		}
		_ = c.SetDeadline(time.Time{})
	}
	return c, br, nil
}

func readLine(br *bufio.Reader) (string, error) {
	s, err := br.ReadString('\n')
	return strings.TrimRight(s, "\r\n"), err
}

func (l *exportLink) run() {
	n := l.n
	conn, br, err := dialTarget(n, l.addr)
	if err != nil {
		l.lost(err)
		return
	}
	l.setConn(conn)
	if l.closed() {
		conn.Close()
		return
	}
	timeout := n.mig.table.Config().AckTimeout
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(appendSyncJob(nil, "ESTABLISH", l.self, l.name, l.epoch, l.slots)); err != nil {
		l.lost(err)
		return
	}
	line, err := readLine(br)
	if err != nil {
		l.lost(err)
		return
	}
	if line != "+OK" {
		l.lost(errors.New("the target refused ESTABLISH: " + strings.TrimPrefix(line, "-")))
		return
	}
	_ = conn.SetDeadline(time.Time{})
	name := l.name
	n.post(func(now time.Duration) {
		if e := n.mig.table.Export(name); e != nil {
			n.mig.run(now, e.Established(now))
		}
	})
	go l.readTarget(br)
	if err := l.write(conn); err != nil {
		l.lost(err)
	}
}

// readTarget reads ACK and REQUEST-FAILOVER from the target.
func (l *exportLink) readTarget(br *bufio.Reader) {
	var p resp.Parser
	var in []byte
	buf := make([]byte, 16<<10)
	name := l.name
	for {
		k, err := br.Read(buf)
		if err != nil {
			l.lost(err)
			return
		}
		in = append(in, buf[:k]...)
		for {
			args, used, err := p.Parse(in)
			if err == resp.ErrIncomplete {
				break
			}
			if err != nil {
				l.lost(err)
				return
			}
			msg, perr := syncMsg{}, errSyncSyntax
			if isSyncSlots(args) {
				msg, perr = parseSyncSlots(args[2:])
			}
			in = in[used:]
			if perr != nil {
				continue // not a message of ours: ignore it
			}
			switch msg.Sub {
			case syncAck:
				l.n.post(func(now time.Duration) {
					if e := l.n.mig.table.Export(name); e != nil {
						l.n.mig.run(now, e.Acked(now, msg.Offset))
					}
				})
			case syncRequest:
				l.n.post(func(now time.Duration) {
					if e := l.n.mig.table.Export(name); e != nil {
						l.n.mig.run(now, e.HandoffRequested(now, msg.Offset, msg.Stamp))
					}
				})
			}
		}
		in = append(in[:0:0], in...) // do not keep buf's predecessor alive
	}
}

// write waits for the snapshot order, then sends the snapshot and the
// stream until the link closes.
func (l *exportLink) write(conn net.Conn) error {
	n := l.n
	timeout := n.mig.table.Config().AckTimeout
	w := &deadlineWriter{conn: conn, timeout: timeout}
	bw := bufio.NewWriterSize(w, 256<<10)
	for {
		select {
		case <-l.quit:
			return nil
		case c := <-l.ctl:
			switch c.kind {
			case ctlSnapshot:
				return l.stream(bw)
			case ctlPing:
				if err := writeFlush(bw, pingCmd); err != nil {
					return err
				}
			}
		}
	}
}

var pingCmd = []byte("*1\r\n$4\r\nPING\r\n")

// deadlineWriter gives every write to the target a deadline: a target
// that stops reading must not hold the writer forever.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.conn.Write(p)
}

func writeFlush(bw *bufio.Writer, b []byte) error {
	if _, err := bw.Write(b); err != nil {
		return err
	}
	return bw.Flush()
}

// streamState is the writer's progress, reported to the export.
type streamState struct {
	keys, bytes uint64
	off         uint64 // data bytes sent: the snapshot's records, then the writes
	pauseAt     int64  // replication offset to reach before WritesPaused; -1 none
}

// stream cuts the snapshot, sends it slot by slot as RESTORE records,
// then SNAPSHOT-EOF, then every write to the slots from the cut on.
func (l *exportLink) stream(bw *bufio.Writer) error {
	n := l.n
	// The reader is registered before the first slot is read: every
	// write from the cut on stays in the stream until sent, and effects
	// replayed over a slot read later converge (node/command/propagate.go).
	n.repl.EnsureFeed()
	st := n.repl.Stream()
	cut := st.Offset()
	rd, ok := st.NewReader(cut + 1)
	if !ok {
		return errors.New("the replication stream cannot be read from its end")
	}
	defer rd.Close()
	ss := &streamState{pauseAt: -1}
	start := time.Now()
	lastReport := start
	var rec, payload []byte
	for _, r := range l.slots {
		for s := int(r.Start); s <= int(r.End); s++ {
			if l.closed() {
				return nil
			}
			if err := l.handleCtl(bw, ss, false); err != nil {
				return err
			}
			if time.Since(lastReport) >= 100*time.Millisecond {
				// GETSLOTMIGRATIONS shows the snapshot's progress.
				l.report(ss, false)
				lastReport = time.Now()
			}
			nowMs := time.Now().UnixMilli()
			for en := range n.store.DumpSlot(uint16(s), nowMs) {
				payload = rdb.DumpPayload(payload[:0], en.Val)
				rec = resp.AppendArrayLen(rec[:0], 6)
				rec = resp.AppendBulkString(rec, "RESTORE")
				rec = resp.AppendBulk(rec, en.Key)
				rec = resp.AppendBulkInt(rec, en.ExpireAt)
				rec = resp.AppendBulk(rec, payload)
				rec = resp.AppendBulkString(rec, "ABSTTL")
				rec = resp.AppendBulkString(rec, "REPLACE")
				if _, err := bw.Write(rec); err != nil {
					return err
				}
				ss.keys++
				ss.bytes += uint64(len(rec))
				ss.off += uint64(len(rec))
			}
		}
	}
	if err := writeFlush(bw, appendSync(nil, "SNAPSHOT-EOF")); err != nil {
		return err
	}
	n.log.Info("migrate: snapshot sent", "job", l.name, "keys", ss.keys, "bytes", ss.bytes,
		"took", time.Since(start).Round(time.Millisecond))
	// The offset counts the snapshot's records too, so that the pause
	// waits until the target has applied (nearly) all of the snapshot,
	// not only until it trails the writes made since the cut.
	name, keys, bytes, off := l.name, ss.keys, ss.bytes, ss.off
	n.post(func(now time.Duration) {
		if e := n.mig.table.Export(name); e != nil {
			n.mig.run(now, e.SnapshotDone(now, keys, bytes, off))
		}
	})
	return l.tail(bw, rd, cut, ss)
}

// tail sends the writes to the slots from the replication stream, in its
// order, until the link closes. pos is the stream offset parsed so far.
func (l *exportLink) tail(bw *bufio.Writer, rd *repl.Reader, pos int64, ss *streamState) error {
	bits := slotSetOf(l.slots)
	var p resp.Parser
	var carry, buf []byte
	reported := ss.off
	lastReport := time.Now()
	for {
		var err error
		buf, err = rd.Read(buf[:0], 256<<10)
		if err != nil {
			return err
		}
		if len(buf) > 0 {
			carry = append(carry, buf...)
			used := 0
			for used < len(carry) {
				args, k, err := p.Parse(carry[used:])
				if err == resp.ErrIncomplete {
					break
				}
				if err != nil {
					return errors.New("unreadable replication stream: " + err.Error())
				}
				raw := carry[used : used+k]
				used += k
				switch classifyStream(args) {
				case streamKey:
					if bits.Has(ring.KeySlot(args[1])) {
						if _, err := bw.Write(raw); err != nil {
							return err
						}
						ss.off += uint64(k)
						ss.bytes += uint64(k)
						ss.keys++
					}
				case streamFlush:
					// A keyless flush has no per-slot effect to forward;
					// the export fails rather than leave keys the source
					// no longer has on the target.
					return errors.New("FLUSHALL while exporting the slots")
				}
			}
			pos += int64(used)
			carry = append(carry[:0], carry[used:]...)
		}
		if err := l.handleCtl(bw, ss, true); err != nil {
			return err
		}
		if ss.pauseAt >= 0 && pos >= ss.pauseAt {
			ss.pauseAt = -1
			if err := bw.Flush(); err != nil {
				return err
			}
			l.report(ss, true)
			// The stream is final for the slots here: the gate holds
			// every later write, and what the stream carries for them
			// from now on is this node's own deletion once the claim is
			// seen, which must never reach the target. Only the control
			// messages follow.
			rd.Close()
			return l.control(bw, ss)
		}
		if len(buf) > 0 {
			if ss.off != reported {
				// Writes to the slots went out: do not let them wait in
				// the buffer behind the other slots' traffic, the target
				// cannot catch up on what it has not received.
				if err := bw.Flush(); err != nil {
					return err
				}
			}
			if ss.off != reported && time.Since(lastReport) >= 10*time.Millisecond {
				l.report(ss, false)
				reported, lastReport = ss.off, time.Now()
			}
			continue
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if ss.off != reported {
			l.report(ss, false)
			reported, lastReport = ss.off, time.Now()
		}
		select {
		case <-rd.Ready():
		case c := <-l.ctl:
			if err := l.applyCtl(bw, ss, c, true); err != nil {
				return err
			}
		case <-l.quit:
			return nil
		}
	}
}

// control sends the control messages after the pause until the link
// closes.
func (l *exportLink) control(bw *bufio.Writer, ss *streamState) error {
	for {
		select {
		case c := <-l.ctl:
			if err := l.applyCtl(bw, ss, c, false); err != nil {
				return err
			}
		case <-l.quit:
			return nil
		}
	}
}

// report posts the stream's progress; paused says the writes before the
// pause are all in it, which is Export.WritesPaused's offset.
func (l *exportLink) report(ss *streamState, paused bool) {
	n, name := l.n, l.name
	off, keys, bytes := ss.off, ss.keys, ss.bytes
	n.post(func(now time.Duration) {
		e := n.mig.table.Export(name)
		if e == nil {
			return
		}
		e.Streamed(off, keys, bytes)
		if paused {
			n.mig.run(now, e.WritesPaused(now, off))
		}
	})
}

// handleCtl carries out the orders waiting, without blocking.
func (l *exportLink) handleCtl(bw *bufio.Writer, ss *streamState, streaming bool) error {
	for {
		select {
		case c := <-l.ctl:
			if err := l.applyCtl(bw, ss, c, streaming); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (l *exportLink) applyCtl(bw *bufio.Writer, ss *streamState, c exportCtl, streaming bool) error {
	switch c.kind {
	case ctlPing:
		return writeFlush(bw, pingCmd)
	case ctlPause:
		if streaming {
			ss.pauseAt = c.replOff
		}
	case ctlPaused:
		return writeFlush(bw, appendSync(nil, "PAUSED", c.off))
	case ctlGrant:
		return writeFlush(bw, appendSync(nil, "FAILOVER-GRANTED", c.off))
	}
	return nil
}

// sendAbort carries out SendAbort on a connection of its own, so that the
// answer does not queue behind the stream: +ABORTED reaches the export
// as AbortConfirmed; +CLAIMED is only a hint, the claim comes by gossip.
func (m *migrator) sendAbort(it *migrate.Intent) {
	n := m.n
	var addr string
	if v, ok := n.core.Node(it.Node); ok {
		addr = netip.AddrPortFrom(v.Addr.IP, v.Addr.Port).String()
	}
	msg := appendSyncJob(nil, "ABORT", n.core.ID(), it.Job, it.Epoch, it.Slots)
	name := it.Job
	go func() {
		conn, br, err := dialTarget(n, addr)
		if err != nil {
			n.log.Info("migrate: cannot reach the target to ask for an abort", "job", name, "err", err)
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(n.mig.table.Config().AckTimeout))
		if _, err := conn.Write(msg); err != nil {
			return
		}
		line, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return
		}
		n.log.Info("migrate: the target answered the abort", "job", name, "answer", line)
		if line == "+ABORTED" {
			n.post(func(now time.Duration) {
				if e := n.mig.table.Export(name); e != nil {
					n.mig.run(now, e.AbortConfirmed(now, n.mig.cluster()))
				}
			})
		}
	}()
}
