package repl

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearsay/hearsay/node/command"
	"github.com/hearsay/hearsay/node/resp"
)

// replica is one replica attached to this node, seen from the master side.
type replica struct {
	m       *Manager
	conn    net.Conn
	ip      string
	port    int
	id      uint64
	state   atomic.Pointer[string] // wait_bgsave, send_bulk, online
	ack     atomic.Int64           // offset it acknowledged
	lastAck atomic.Int64           // unix ns
	acked   chan struct{}          // closed at its first ACK
	ackOnce sync.Once
	reader  atomic.Pointer[Reader]
	over    time.Time // since when it has been over the soft limit
	dropped atomic.Bool
}

// replConf is what a connection said with REPLCONF before PSYNC.
type replConf struct {
	port           int
	ip             string
	capaEOF, capa2 bool
}

func conf(c *command.ConnState) *replConf {
	if rc, ok := c.UserData.(*replConf); ok {
		return rc
	}
	rc := &replConf{}
	if c.UserData == nil {
		c.UserData = rc
	}
	return rc
}

// Commands returns REPLCONF, PSYNC, SYNC and WAIT for the node's dispatcher.
func (m *Manager) Commands() []*command.Command {
	return []*command.Command{
		{Name: "replconf", Arity: -1, Flags: command.FlagAdmin | command.FlagLoading | command.FlagStale, Group: "server", Handler: m.cmdReplconf},
		{Name: "psync", Arity: -3, Flags: command.FlagAdmin, Group: "server", Handler: m.cmdPsync},
		{Name: "sync", Arity: 1, Flags: command.FlagAdmin, Group: "server", Handler: m.cmdSync},
		{Name: "wait", Arity: 3, Group: "generic", Handler: m.cmdWait},
	}
}

func (m *Manager) cmdReplconf(x *command.Ctx) {
	args := x.Args
	if len(args)%2 == 0 {
		x.W.Error("ERR syntax error")
		return
	}
	if link, ok := x.Conn.UserData.(*masterLink); ok && x.Conn.Master {
		// From our master: GETACK asks for our offset now, which does
		// not count the GETACK itself (as Redis).
		if len(args) >= 2 && strings.EqualFold(string(args[1]), "getack") {
			link.sendAck(link.base + int64(x.Conn.ServeOffset))
		}
		return
	}
	rc := conf(x.Conn)
	for i := 1; i < len(args); i += 2 {
		opt, val := strings.ToLower(string(args[i])), args[i+1]
		switch opt {
		case "listening-port":
			p, err := strconv.ParseInt(string(val), 10, 64)
			if err != nil || p < 0 || p > 65535 {
				x.W.Error("ERR value is not an integer or out of range")
				return
			}
			rc.port = int(p)
		case "ip-address":
			if len(val) > 46 {
				x.W.Error("ERR REPLCONF ip-address provided by replica instance is too long: " + strconv.Itoa(len(val)) + " bytes")
				return
			}
			rc.ip = string(val)
		case "capa":
			switch strings.ToLower(string(val)) {
			case "eof":
				rc.capaEOF = true
			case "psync2":
				rc.capa2 = true
			}
		case "ack", "fack":
			// Acks reach the replica link's own reader; one here comes
			// from a client that is not a replica: ignore it, as Redis.
			return
		case "getack":
			return
		case "rdb-only", "rdb-filter-only":
			// Accepted for compatibility; hearsay always sends the stream.
		default:
			x.W.Error("ERR Unrecognized REPLCONF option: " + string(args[i]))
			return
		}
	}
	x.W.OK()
}

func (m *Manager) cmdSync(x *command.Ctx) { m.startSync(x, "", 0, false) }

func (m *Manager) cmdPsync(x *command.Ctx) {
	next, err := strconv.ParseInt(string(x.Args[2]), 10, 64)
	if err != nil {
		x.W.Error("ERR value is not an integer or out of range")
		return
	}
	m.startSync(x, string(x.Args[1]), next, true)
}

// startSync serves SYNC and PSYNC: the connection becomes a replica link.
func (m *Manager) startSync(x *command.Ctx, id string, next int64, psync bool) {
	if x.Conn.Master {
		return
	}
	m.mu.Lock()
	if m.role.Load() && (m.link == nil || !m.link.up.Load()) {
		m.mu.Unlock()
		x.W.Error("NOMASTERLINK Can't SYNC while not connected with my master")
		return
	}
	m.mu.Unlock()
	rc := conf(x.Conn)
	ip, _, _ := net.SplitHostPort(x.Conn.Addr)
	if rc.ip != "" {
		ip = rc.ip
	}
	r := &replica{m: m, ip: ip, port: rc.port, id: x.Conn.ID, acked: make(chan struct{})}
	eof := psync && rc.capaEOF
	capa2 := rc.capa2
	x.Detach(func(conn net.Conn, out, in []byte) {
		r.conn = conn
		if len(out) > 0 {
			if _, err := conn.Write(out); err != nil {
				conn.Close()
				return
			}
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.serveReplica(r, id, next, psync, eof, capa2, in)
		}()
	})
}

// serveReplica runs a replica link to its end.
func (m *Manager) serveReplica(r *replica, id string, next int64, psync, eof, capa2 bool, in []byte) {
	defer r.conn.Close()
	m.mu.Lock()
	select {
	case <-m.closing:
		m.mu.Unlock()
		return
	default:
	}
	m.ensureFeed()
	m.replicas[r] = struct{}{}
	m.mu.Unlock()
	select {
	case m.attached <- struct{}{}:
	default: // the cron is awake already, or will see this one
	}
	defer func() {
		m.mu.Lock()
		delete(m.replicas, r)
		m.mu.Unlock()
		if rd := r.reader.Load(); rd != nil {
			rd.Close()
		}
	}()
	r.lastAck.Store(time.Now().UnixNano())
	go r.readAcks(in)

	info := m.stream.Info()
	if psync && m.stream.CanContinue(id, next) {
		rd, ok := m.stream.NewReader(next)
		if ok {
			r.reader.Store(rd)
			rd.SetLimit(m.cfg.HardLimit, r.overflow)
			reply := "+CONTINUE\r\n"
			if capa2 {
				reply = "+CONTINUE " + info.ReplID + "\r\n"
			}
			if err := r.write([]byte(reply)); err != nil {
				return
			}
			m.PartialSyncs.Add(1)
			m.notify(false, false)
			m.log.Info("replication: partial resync", "replica", r.addr(), "from", next, "to", info.Offset)
			r.setState("online")
			r.markAcked()
			r.stream(rd)
			return
		}
	}
	if psync && id != "?" {
		m.PartialSyncErrors.Add(1)
	}
	// Full sync. The reader is registered before the snapshot starts, so
	// every write from its offset on stays in the stream until sent.
	off := m.stream.Offset()
	rd, ok := m.stream.NewReader(off + 1)
	if !ok {
		return
	}
	r.reader.Store(rd)
	rd.SetLimit(m.cfg.HardLimit, r.overflow)
	r.setState("wait_bgsave")
	if psync {
		if err := r.write([]byte("+FULLRESYNC " + info.ReplID + " " + strconv.FormatInt(off, 10) + "\r\n")); err != nil {
			return
		}
	}
	m.FullSyncs.Add(1)
	m.notify(true, false)
	start := time.Now()
	r.setState("send_bulk")
	size, err := m.sendSnapshot(r, info.ReplID, off, eof)
	if err != nil {
		m.log.Warn("replication: full sync failed", "replica", r.addr(), "err", err)
		return
	}
	m.log.Info("replication: full sync sent", "replica", r.addr(), "offset", off, "bytes", size, "took", time.Since(start).Round(time.Millisecond))
	if eof {
		// A disk-less replica cannot tell the stream from the payload's
		// end until it has loaded it: wait for its first ACK, as Redis.
		select {
		case <-r.acked:
		case <-m.closing:
			return
		}
	}
	r.setState("online")
	r.stream(rd)
}

func (m *Manager) notify(full, asReplica bool) {
	if m.cfg.OnSync != nil {
		m.cfg.OnSync(full, asReplica)
	}
}

// sendSnapshot writes the RDB payload: "$EOF:<mark>" framing when the
// replica can take it, "$<len>" otherwise (which needs the whole payload
// first, as Redis's disk-based sync does).
func (m *Manager) sendSnapshot(r *replica, id string, off int64, eof bool) (int64, error) {
	defer m.busy()()
	_ = r.conn.SetWriteDeadline(time.Time{})
	if eof {
		mark := newReplID()
		bw := bufio.NewWriterSize(r.conn, 256<<10)
		if _, err := bw.WriteString("$EOF:" + mark + "\r\n"); err != nil {
			return 0, err
		}
		n, err := m.writeSnapshot(bw, id, off)
		if err != nil {
			return n, err
		}
		if _, err := bw.WriteString(mark); err != nil {
			return n, err
		}
		return n, bw.Flush()
	}
	var buf bytes.Buffer
	n, err := m.writeSnapshot(&buf, id, off)
	if err != nil {
		return n, err
	}
	if err := r.write(fmt.Appendf(nil, "$%d\r\n", buf.Len())); err != nil {
		return n, err
	}
	return n, r.write(buf.Bytes())
}

func (r *replica) addr() string { return net.JoinHostPort(r.ip, strconv.Itoa(r.port)) }

func (r *replica) setState(s string) { r.state.Store(&s) }

func (r *replica) write(b []byte) error {
	_ = r.conn.SetWriteDeadline(time.Now().Add(replTimeout))
	_, err := r.conn.Write(b)
	return err
}

// A sender that wrote less than coalesceBelow bytes pauses coalescePause
// before it looks again.
const (
	coalesceBelow = 16 << 10
	coalescePause = 200 * time.Microsecond
)

// stream sends the stream from rd until the link ends.
func (r *replica) stream(rd *Reader) {
	buf := make([]byte, 0, 256<<10)
	for {
		var err error
		buf, err = rd.Read(buf[:0], 256<<10)
		if err != nil {
			return
		}
		if len(buf) > 0 {
			if err := r.write(buf); err != nil {
				if !r.dropped.Load() {
					r.m.log.Info("replication: replica link closed", "replica", r.addr(), "err", err)
				}
				return
			}
			if len(buf) < coalesceBelow {
				// Under a write load, waking for every command costs a
				// goroutine switch and a syscall each; a short pause lets
				// a batch build up (Redis writes to replicas once per
				// event-loop pass for the same reason).
				time.Sleep(coalescePause)
			}
			continue
		}
		select {
		case <-rd.Ready():
		case <-r.m.closing:
			return
		}
	}
}

// readAcks reads what the replica sends: REPLCONF ACK <offset>.
func (r *replica) readAcks(in []byte) {
	var p resp.Parser
	p.MaxBulkLen, p.MaxMultibulkLen = 1<<20, 64
	buf := append(make([]byte, 0, 4096), in...)
	tmp := make([]byte, 4096)
	for {
		for len(buf) > 0 {
			args, n, err := p.Parse(buf)
			if err == resp.ErrIncomplete {
				break
			}
			if err != nil {
				r.m.log.Warn("replication: bad input from replica, dropping it", "replica", r.addr(), "err", err)
				r.drop()
				return
			}
			buf = buf[n:]
			if len(args) >= 3 && strings.EqualFold(string(args[0]), "replconf") && strings.EqualFold(string(args[1]), "ack") {
				if off, err := strconv.ParseInt(string(args[2]), 10, 64); err == nil {
					r.ack.Store(off)
					r.lastAck.Store(time.Now().UnixNano())
					r.markAcked()
					r.m.checkWaiters()
				}
			}
		}
		buf = slices.Clip(buf)
		n, err := r.conn.Read(tmp)
		if err != nil {
			r.drop()
			return
		}
		buf = append(buf, tmp[:n]...)
	}
}

// markAcked records that the replica acknowledged once.
func (r *replica) markAcked() { r.ackOnce.Do(func() { close(r.acked) }) }

// drop ends the link.
func (r *replica) drop() {
	r.dropped.Store(true)
	if r.conn != nil {
		r.conn.Close()
	}
	if rd := r.reader.Load(); rd != nil {
		rd.Close()
	}
	r.markAcked()
}

// overflow is called when the replica fell behind the hard output limit.
func (r *replica) overflow() {
	r.m.ReplicaDrops.Add(1)
	r.m.log.Warn("replication: replica over the output buffer hard limit, dropping it",
		"replica", r.addr(), "limit", r.m.cfg.HardLimit)
	r.drop()
}

// checkSoftLimit drops a replica that stayed over the soft output limit for
// SoftSeconds. Called with m.mu held.
func (r *replica) checkSoftLimit(now time.Time) {
	rd := r.reader.Load()
	if rd == nil || r.m.cfg.SoftLimit <= 0 {
		return
	}
	if rd.Lag() <= r.m.cfg.SoftLimit {
		r.over = time.Time{}
		return
	}
	if r.over.IsZero() {
		r.over = now
		return
	}
	if now.Sub(r.over) >= time.Duration(r.m.cfg.SoftSeconds)*time.Second {
		r.m.ReplicaDrops.Add(1)
		r.m.log.Warn("replication: replica over the output buffer soft limit, dropping it",
			"replica", r.addr(), "limit", r.m.cfg.SoftLimit, "seconds", r.m.cfg.SoftSeconds)
		go r.drop()
	}
}

// sortedReplicas lists the replicas in the order they attached. Called with
// m.mu held.
func (m *Manager) sortedReplicas() []*replica {
	out := make([]*replica, 0, len(m.replicas))
	for r := range m.replicas {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *replica) int { return int(a.id) - int(b.id) })
	return out
}
