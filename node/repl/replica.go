package repl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearsay/hearsay/node/command"
)

// masterLink is a replica's link to its master: it connects, syncs, applies
// the stream and acknowledges it, and reconnects (with a partial resync
// when it can) until stopped.
type masterLink struct {
	m    *Manager
	addr string

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	up      atomic.Bool
	syncing atomic.Bool
	lastIO  atomic.Int64 // unix ns of the last byte from the master
	// base is the offset of the first byte of the input being applied,
	// for GETACK (set and read on the link's goroutine).
	base int64

	wmu  sync.Mutex
	conn net.Conn
}

func newMasterLink(m *Manager, addr string) *masterLink {
	ctx, cancel := context.WithCancel(context.Background())
	l := &masterLink{m: m, addr: addr, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go l.run()
	return l
}

// stop ends the link and waits for it.
func (l *masterLink) stop() {
	l.cancel()
	l.wmu.Lock()
	if l.conn != nil {
		l.conn.Close()
	}
	l.wmu.Unlock()
	<-l.done
}

func (l *masterLink) run() {
	defer close(l.done)
	for {
		err := l.session()
		l.up.Store(false)
		l.syncing.Store(false)
		if l.ctx.Err() != nil {
			return
		}
		l.m.log.Warn("replication: link to master down", "master", l.addr, "err", err)
		select {
		case <-l.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// session is one connection to the master, from the handshake to its end.
func (l *masterLink) session() error {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(l.ctx, "tcp", l.addr)
	if err != nil {
		return err
	}
	l.wmu.Lock()
	l.conn = conn
	l.wmu.Unlock()
	defer conn.Close()
	if l.ctx.Err() != nil {
		return l.ctx.Err()
	}
	br := bufio.NewReaderSize(conn, 256<<10)
	ask := func(cmd ...string) (string, error) {
		_ = conn.SetDeadline(time.Now().Add(replTimeout))
		if _, err := conn.Write(encode(cmd...)); err != nil {
			return "", err
		}
		r, err := readLine(br)
		if err == nil && r == "" {
			err = fmt.Errorf("empty reply to %s", cmd[0])
		}
		return r, err
	}
	if r, err := ask("PING"); err != nil {
		return err
	} else if r[0] == '-' && !strings.HasPrefix(r, "-NOAUTH") {
		return fmt.Errorf("master answered PING with %s", r)
	}
	if pw := l.m.cfg.MasterAuth; pw != "" {
		if r, err := ask("AUTH", pw); err != nil {
			return err
		} else if r[0] == '-' {
			return fmt.Errorf("master refused AUTH: %s", r)
		}
	}
	if r, err := ask("REPLCONF", "listening-port", strconv.Itoa(l.m.cfg.ListenPort)); err != nil {
		return err
	} else if r[0] == '-' {
		return fmt.Errorf("master refused REPLCONF: %s", r)
	}
	if _, err := ask("REPLCONF", "capa", "eof", "capa", "psync2"); err != nil {
		return err
	}
	info := l.m.stream.Info()
	id, next := info.ReplID, info.Offset+1
	if !info.Active {
		id, next = "?", -1 // never synced: ask for a full sync
	}
	reply, err := ask("PSYNC", id, strconv.FormatInt(next, 10))
	if err != nil {
		return err
	}
	f := strings.Fields(reply)
	switch {
	case len(f) == 3 && f[0] == "+FULLRESYNC":
		off, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return fmt.Errorf("bad FULLRESYNC reply %q", reply)
		}
		if err := l.fullSync(conn, br, f[1], off); err != nil {
			return err
		}
	case len(f) >= 1 && f[0] == "+CONTINUE":
		if len(f) == 2 {
			l.m.stream.Shift(f[1])
		}
		l.m.SyncsWithMaster[0].Add(1)
		l.m.notify(false, true)
		l.m.log.Info("replication: partial resync with master", "master", l.addr, "from", next)
	default:
		return fmt.Errorf("master refused PSYNC: %s", reply)
	}
	return l.apply(conn, br)
}

// fullSync reads the snapshot that follows +FULLRESYNC and makes it the
// node's keyspace.
func (l *masterLink) fullSync(conn net.Conn, br *bufio.Reader, id string, off int64) error {
	l.syncing.Store(true)
	defer l.syncing.Store(false)
	defer l.m.busy()()
	start := time.Now()
	_ = conn.SetDeadline(time.Time{})
	var hdr string
	for {
		// The master may send newlines while it prepares the payload.
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if line != "" {
			hdr = line
			break
		}
	}
	var src io.Reader
	var mr *markReader
	switch {
	case strings.HasPrefix(hdr, "$EOF:") && len(hdr) == 5+40:
		mr = &markReader{r: br, mark: []byte(hdr[5:])}
		src = mr
	case strings.HasPrefix(hdr, "$"):
		n, err := strconv.ParseInt(hdr[1:], 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad payload header %q", hdr)
		}
		src = io.LimitReader(br, n)
	default:
		return fmt.Errorf("bad payload header %q", hdr)
	}
	st, info, err := loadSnapshot(&deadlineReader{r: src, conn: conn})
	if err != nil {
		return fmt.Errorf("loading the master's snapshot: %w", err)
	}
	l.m.st.ReplaceAll(st)
	l.m.stream.Reset(id, off)
	l.m.SyncsWithMaster[1].Add(1)
	l.m.notify(true, true)
	l.m.log.Info("replication: full sync from master done", "master", l.addr, "keys", info.Keys,
		"bytes", info.Bytes, "offset", off, "took", time.Since(start).Round(time.Millisecond))
	if mr != nil && len(mr.rest) > 0 {
		// Nothing follows the mark before our first ACK; anything that
		// did would be stream bytes we cannot put back into br.
		return errors.New("master sent data after the payload before the replica's ACK")
	}
	return nil
}

// deadlineReader extends the connection's read deadline as data arrives.
type deadlineReader struct {
	r    io.Reader
	conn net.Conn
	n    int
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.n++; d.n%64 == 1 {
		_ = d.conn.SetReadDeadline(time.Now().Add(replTimeout))
	}
	return d.r.Read(p)
}

// apply runs the stream: every command is executed as the master's, its
// bytes appended to this node's own stream (its replicas and a later
// promotion continue from it), and acknowledged every second.
func (l *masterLink) apply(conn net.Conn, br *bufio.Reader) error {
	l.up.Store(true)
	l.lastIO.Store(time.Now().UnixNano())
	cs := l.m.d.NewConn()
	defer l.m.d.CloseConn(cs)
	cs.Master, cs.Authenticated, cs.UserData = true, true, l
	cs.Addr = l.addr
	l.sendAck(l.m.stream.Offset())
	stopAcks := make(chan struct{})
	defer close(stopAcks)
	go func() {
		t := time.NewTicker(ackPeriod)
		defer t.Stop()
		for {
			select {
			case <-stopAcks:
				return
			case <-t.C:
				l.sendAck(l.m.stream.Offset())
			}
		}
	}()
	var in, out []byte
	tmp := make([]byte, 256<<10)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(replTimeout))
		n, err := br.Read(tmp)
		if err != nil {
			return err
		}
		l.lastIO.Store(time.Now().UnixNano())
		in = append(in, tmp[:n]...)
		l.base = l.m.stream.Offset()
		consumed, o, closeConn := l.m.d.Serve(cs, in, out[:0])
		out = o[:0]
		if consumed > 0 {
			l.m.stream.Append(in[:consumed])
		}
		if closeConn {
			return errors.New("bad command in the master's stream")
		}
		in = append(in[:0], in[consumed:]...)
	}
}

// sendAck tells the master the offset processed.
func (l *masterLink) sendAck(off int64) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.conn == nil {
		return
	}
	_ = l.conn.SetWriteDeadline(time.Now().Add(replTimeout))
	_, _ = l.conn.Write(encode("REPLCONF", "ACK", strconv.FormatInt(off, 10)))
}

// info appends the replica's part of INFO replication.
func (l *masterLink) info(b []byte, in Info) []byte {
	host, port, _ := net.SplitHostPort(l.addr)
	b = kv(b, "master_host", host)
	b = kv(b, "master_port", port)
	status, ago := "down", int64(-1)
	if l.up.Load() {
		status = "up"
		ago = int64(time.Since(time.Unix(0, l.lastIO.Load())).Seconds())
	}
	b = kv(b, "master_link_status", status)
	b = kvi(b, "master_last_io_seconds_ago", ago)
	sync := int64(0)
	if l.syncing.Load() {
		sync = 1
	}
	b = kvi(b, "master_sync_in_progress", sync)
	b = kvi(b, "slave_read_repl_offset", in.Offset)
	b = kvi(b, "slave_repl_offset", in.Offset)
	b = append(b, "slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\n"...)
	return b
}

// encode returns cmd as a RESP array of bulk strings.
func encode(cmd ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(cmd)) + "\r\n")
	for _, a := range cmd {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	return b
}

// readLine reads one CRLF-terminated line without its terminator.
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

var _ command.Feed = (*Manager)(nil)
