package node

import (
	"bytes"
	"net"
	"time"

	"github.com/hearsay/hearsay/node/command"
	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/ring"
)

// The target side: CLUSTER SYNCSLOTS ESTABLISH on a client connection
// turns it into an importLink, whose goroutine applies the snapshot and
// the write stream to the store through the dispatcher (so that they are
// propagated to this node's replicas like any write) and reports to the
// bus loop. The router lets the link's writes into the slots it imports
// (importing), and nobody else: clients still get MOVED to the source.

// importLink is the connection of one import.
type importLink struct {
	n     *Node
	name  string
	slots *ring.SlotSet
	out   chan []byte // ACK and REQUEST-FAILOVER, written by the writer goroutine
	linkLife
}

// importing reports whether conn is an import link allowed to write slot.
func importing(conn *command.ConnState, slot uint16) bool {
	l, ok := conn.UserData.(*importLink)
	return ok && l.slots.Has(slot)
}

func (l *importLink) send(b []byte) {
	select {
	case l.out <- b:
	default: // ACKs and requests repeat; a stuck link times out
	}
}

// clusterSyncSlots serves CLUSTER SYNCSLOTS on a client connection:
// ESTABLISH and ABORT; the others belong to a migration link.
func (n *Node) clusterSyncSlots(x *command.Ctx) {
	msg, err := parseSyncSlots(x.Args[2:])
	if err != nil {
		x.W.Error(err.Error())
		return
	}
	switch msg.Sub {
	case syncEstablish:
		n.syncEstablish(x, &msg)
	case syncAbort:
		reply, err := n.syncAbort(&msg)
		if err != nil {
			x.W.Error(err.Error())
			return
		}
		x.W.Simple(reply)
	default:
		x.W.Error("ERR CLUSTER SYNCSLOTS " + upperASCII(string(x.Args[2])) + " should only be used by slot migration clients")
	}
}

func upperASCII(s string) string { return string(bytes.ToUpper([]byte(s))) }

// syncAbort answers ABORT from the table, on the loop.
func (n *Node) syncAbort(msg *syncMsg) (string, error) {
	var reply string
	err := n.exec(func(now time.Duration) {
		m := n.mig
		m.abortReply = &reply
		m.run(now, m.table.AbortRequested(now, m.cluster(), msg.Name, msg.Source, msg.Slots, msg.Epoch))
		m.abortReply = nil
	})
	if err == nil && reply == "" {
		reply = "ABORTED"
	}
	return reply, err
}

// syncEstablish starts an import: the record is durable before +OK, and
// the connection becomes the import's link.
func (n *Node) syncEstablish(x *command.Ctx, msg *syncMsg) {
	var l *importLink
	var failure error
	err := n.exec(func(now time.Duration) {
		m := n.mig
		if m.stillDeleting(msg.Slots) {
			failure = errStillDeleting
			return
		}
		in, err := m.table.Establish(now, m.cluster(), msg.Name, msg.Source, msg.Slots, msg.Epoch)
		if err != nil {
			failure = err
			return
		}
		l = &importLink{n: n, name: msg.Name, slots: slotSetOf(msg.Slots),
			out: make(chan []byte, 64), linkLife: linkLife{quit: make(chan struct{})}}
		m.imports[msg.Name] = l
		if !m.run(now, in) {
			failure = errMigrationsWrite
			im := m.table.Import(msg.Name)
			if im != nil {
				m.run(now, im.PeerLost(now))
			}
		}
	})
	if err == nil {
		err = failure
	}
	if err != nil {
		x.W.Error(errText(err))
		return
	}
	n.log.Info("migrate: import established", "job", msg.Name, "source", msg.Source.String(), "slots", msg.Slots.String())
	x.W.OK()
	x.Detach(func(conn net.Conn, out, in []byte) {
		if _, err := conn.Write(out); err != nil {
			conn.Close()
			l.lost()
			return
		}
		l.setConn(conn)
		if l.closed() {
			conn.Close()
			return
		}
		go l.writer(conn)
		go l.apply(conn, append([]byte(nil), in...))
	})
}

// errStillDeleting refuses an import of slots whose keys this node is
// still deleting after exporting them; the source may try again.
const errStillDeleting = adminError("ERR Slots are still being deleted here after an earlier migration")

func errText(err error) string {
	s := err.Error()
	if len(s) > 0 && (s[0] < 'A' || s[0] > 'Z') {
		return "ERR " + s
	}
	return s
}

// lost reports the end of the connection to the import.
func (l *importLink) lost() {
	l.close()
	n, name := l.n, l.name
	n.post(func(now time.Duration) {
		m := n.mig
		if m.imports[name] == l {
			delete(m.imports, name)
		}
		if im := m.table.Import(name); im != nil {
			m.run(now, im.PeerLost(now))
		}
	})
}

func (l *importLink) writer(conn net.Conn) {
	timeout := l.n.mig.table.Config().AckTimeout
	for {
		select {
		case <-l.quit:
			return
		case b := <-l.out:
			_ = conn.SetWriteDeadline(time.Now().Add(timeout))
			if _, err := conn.Write(b); err != nil {
				l.lost()
				return
			}
		}
	}
}

// importProgress is what the applier reports to the import.
type importProgress struct {
	eof                bool
	applied            uint64 // data bytes applied: snapshot records, then writes
	paused             bool   // PAUSED came: the stream ends at pausedOff
	pausedOff          uint64
	keys, bytes        uint64
	heard              bool
	reportedApplied    uint64
	reportedKeys       uint64
	reportedBytesTotal uint64
}

// apply reads the link until it ends, applying data commands in batches
// through the dispatcher and handling the control messages in order.
func (l *importLink) apply(conn net.Conn, in []byte) {
	n := l.n
	defer l.lost()
	cs := n.disp.NewConn()
	defer n.disp.CloseConn(cs)
	wake := make(chan struct{}, 1)
	cs.Authenticated, cs.UserData = true, l
	cs.Addr = conn.RemoteAddr().String()
	cs.Wake = func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	ackTimeout := n.mig.table.Config().AckTimeout
	pr := &importProgress{}
	var p resp.Parser
	var out []byte
	tmp := make([]byte, 256<<10)
	for {
		used := 0
		batch := -1 // start of the pending data commands
		flush := func(end int) bool {
			if batch < 0 {
				return true
			}
			ok := l.serve(cs, in[batch:end], &out, wake, pr)
			batch = -1
			return ok
		}
		for used < len(in) {
			args, k, err := p.Parse(in[used:])
			if err == resp.ErrIncomplete {
				break
			}
			if err != nil {
				n.log.Warn("migrate: bad data from the source", "job", l.name, "err", err)
				return
			}
			switch {
			case len(args) == 0:
			case isSyncSlots(args):
				if !flush(used) {
					return
				}
				msg, err := parseSyncSlots(args[2:])
				if err != nil {
					n.log.Warn("migrate: bad control message from the source", "job", l.name, "err", err)
					return
				}
				l.control(&msg, pr)
			case len(args) == 1 && bytes.EqualFold(args[0], []byte("ping")):
				if !flush(used) {
					return
				}
				pr.heard = true
			case !importCommand(args):
				// Only records and effects belong here: a keyless command
				// (FLUSHALL, CONFIG) would bypass the router's check that
				// the link writes only the slots it imports.
				n.log.Warn("migrate: the source sent a command a migration never sends; dropping the link",
					"job", l.name, "command", truncate(args[0], 32))
				return
			default:
				if batch < 0 {
					batch = used
				}
			}
			used += k
		}
		if !flush(used) {
			return
		}
		in = append(in[:0], in[used:]...)
		l.report(pr, false)
		_ = conn.SetReadDeadline(time.Now().Add(ackTimeout))
		k, err := conn.Read(tmp)
		if err != nil {
			if !l.closed() {
				n.log.Info("migrate: connection from the source ended", "job", l.name, "err", err)
			}
			return
		}
		in = append(in, tmp[:k]...)
	}
}

// serve applies one batch of data commands. A write parked by a pause
// waits for the pause to end and runs again; an error reply fails the
// import, since the target would otherwise hold less than the source.
func (l *importLink) serve(cs *command.ConnState, b []byte, out *[]byte, wake chan struct{}, pr *importProgress) bool {
	n := l.n
	if pr.paused && pr.applied+uint64(len(b)) > pr.pausedOff {
		// The source said the stream ends at pausedOff: anything after
		// it is not the slots' data (it could only be a source deleting
		// its copy after the claim), and applying it could delete keys
		// this node owns.
		n.log.Warn("migrate: data after the paused offset; dropping the link", "job", l.name,
			"paused_offset", pr.pausedOff, "applied", pr.applied, "more", len(b))
		return false
	}
	for len(b) > 0 {
		consumed, o, closeConn := n.disp.Serve(cs, b, (*out)[:0])
		*out = o[:0]
		if i := bytes.Index(o, []byte("\r\n-")); len(o) > 0 && o[0] == '-' || i >= 0 {
			if i < 0 {
				i = -2
			}
			line, _, _ := bytes.Cut(o[i+2:], []byte("\r\n"))
			n.log.Warn("migrate: a write from the source failed; dropping the import", "job", l.name, "reply", string(line))
			return false
		}
		if closeConn {
			return false
		}
		// Offsets count every data byte, snapshot records included, as
		// the source counts them.
		pr.applied += uint64(consumed)
		if !pr.eof {
			pr.keys += uint64(countCommands(b[:consumed]))
		}
		pr.bytes += uint64(consumed)
		b = b[consumed:]
		if len(b) == 0 {
			break
		}
		// Parked: wait for the pause to end, then take the reply that
		// Block left, if any, and go on.
		for {
			if _, blocked := cs.Blocked(); !blocked {
				break
			}
			select {
			case <-wake:
			case <-l.quit:
				return false
			}
		}
	}
	return true
}

// importCommand reports whether args is one of the commands an export
// sends as data: RESTORE records and the replication stream's effects
// (node/command/propagate.go), each with a key.
func importCommand(args [][]byte) bool {
	if len(args) < 2 {
		return false
	}
	return resp.IsOneOf(args[0], "restore", "set", "del", "pexpireat", "persist")
}

// countCommands counts the RESP arrays in b, which holds whole commands.
func countCommands(b []byte) int {
	var p resp.Parser
	c := 0
	for len(b) > 0 {
		_, k, err := p.Parse(b)
		if err != nil || k == 0 {
			break
		}
		c++
		b = b[k:]
	}
	return c
}

// control handles a SYNCSLOTS message of the link, in stream order.
func (l *importLink) control(msg *syncMsg, pr *importProgress) {
	n, name := l.n, l.name
	switch msg.Sub {
	case syncSnapshotEOF:
		l.report(pr, true)
		pr.eof = true
		n.post(func(now time.Duration) {
			if im := n.mig.table.Import(name); im != nil {
				n.mig.run(now, im.SnapshotEOF(now))
			}
		})
	case syncPaused:
		l.report(pr, true)
		pr.paused, pr.pausedOff = true, msg.Offset
		off := msg.Offset
		n.post(func(now time.Duration) {
			if im := n.mig.table.Import(name); im != nil {
				n.mig.run(now, im.SourcePaused(now, off))
			}
		})
	case syncGranted:
		l.report(pr, true)
		stamp := msg.Stamp
		n.post(func(now time.Duration) {
			if im := n.mig.table.Import(name); im != nil {
				n.mig.run(now, im.Granted(now, n.mig.cluster(), stamp))
			}
		})
	case syncAbort:
		m := *msg
		go func() {
			reply, err := n.syncAbort(&m)
			if err == nil {
				l.send([]byte("+" + reply + "\r\n"))
			}
		}()
	default:
		pr.heard = true
	}
}

// report posts what was applied, once per read from the connection and
// before every control message (which must see it), or a bare Heard for
// a PING.
func (l *importLink) report(pr *importProgress, force bool) {
	changed := pr.applied != pr.reportedApplied || pr.keys != pr.reportedKeys || pr.bytes != pr.reportedBytesTotal
	if !force && !pr.heard && !changed {
		return
	}
	pr.heard = false
	pr.reportedApplied, pr.reportedKeys, pr.reportedBytesTotal = pr.applied, pr.keys, pr.bytes
	n, name := l.n, l.name
	applied, keys, bytes := pr.applied, pr.keys, pr.bytes
	n.post(func(now time.Duration) {
		if im := n.mig.table.Import(name); im != nil {
			n.mig.run(now, im.Apply(now, applied, keys, bytes))
		}
	})
}
