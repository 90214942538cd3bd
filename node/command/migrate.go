package command

import (
	"bufio"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hearsay/hearsay/node/rdb"
	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/ring"
)

// migrateIdle is how long a MIGRATE connection to a target stays cached
// unused (Redis: 10 s).
const migrateIdle = 10 * time.Second

// migrateConn is a cached connection to a MIGRATE target.
type migrateConn struct {
	c      net.Conn
	br     *bufio.Reader
	lastDB int64
	used   time.Time
}

// migrateCache holds one idle connection per target; a MIGRATE takes it
// out while it runs, so two MIGRATEs never share one.
type migrateCache struct {
	mu    sync.Mutex
	conns map[string]*migrateConn
}

func (m *migrateCache) get(addr string, timeout time.Duration) (*migrateConn, bool, error) {
	m.mu.Lock()
	now := time.Now()
	for a, c := range m.conns {
		if now.Sub(c.used) > migrateIdle {
			c.c.Close()
			delete(m.conns, a)
		}
	}
	if c, ok := m.conns[addr]; ok {
		delete(m.conns, addr)
		m.mu.Unlock()
		return c, true, nil
	}
	m.mu.Unlock()
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, false, err
	}
	return &migrateConn{c: nc, br: bufio.NewReader(nc), lastDB: -1}, false, nil
}

func (m *migrateCache) put(addr string, c *migrateConn) {
	c.used = time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conns == nil {
		m.conns = make(map[string]*migrateConn)
	}
	if old, ok := m.conns[addr]; ok {
		old.c.Close()
	}
	m.conns[addr] = c
}

var (
	errMigrateConnect = "IOERR error or timeout connecting to the client"
	errMigrateWrite   = "IOERR error or timeout writing to target instance"
	errMigrateRead    = "IOERR error or timeout reading to target instance"
	// errMigrateUnexpected starts the error for a target that answered
	// something other than a status or an error (it is not Redis).
	errMigrateUnexpected = "ERR Target instance sent an unexpected reply: "
)

// cmdMigrate is MIGRATE host port key|"" destination-db timeout [COPY]
// [REPLACE] [AUTH password | AUTH2 username password] [KEYS key ...], with
// Redis's replies. The keys are sent as RESTORE-ASKING and deleted here
// only after the target acknowledged each. Like Redis's, it waits for the
// target on the connection's event loop.
func cmdMigrate(x *Ctx) {
	args := x.Args
	var copyKeys, replace bool
	var auth [][]byte
	keys := [][]byte{args[3]}
	for i := 6; i < len(args); i++ {
		switch {
		case eq(args[i], "copy"):
			copyKeys = true
		case eq(args[i], "replace"):
			replace = true
		case eq(args[i], "auth") && i+1 < len(args):
			auth = [][]byte{args[i+1]}
			i++
		case eq(args[i], "auth2") && i+2 < len(args):
			auth = [][]byte{args[i+1], args[i+2]}
			i += 2
		case eq(args[i], "keys"):
			if len(args[3]) != 0 {
				x.W.Error("ERR When using MIGRATE KEYS option, the key argument must be set to the empty string")
				return
			}
			keys = args[i+1:]
			i = len(args)
		default:
			x.W.Error(errSyntax)
			return
		}
	}
	timeout, ok1 := resp.ParseInt(args[5])
	db, ok2 := resp.ParseInt(args[4])
	if !ok1 || !ok2 {
		x.W.Error(errNotInt)
		return
	}
	if timeout <= 0 {
		timeout = 1000
	}
	if len(keys) == 0 || (len(keys) == 1 && len(keys[0]) == 0) {
		x.W.Simple("NOKEY")
		return
	}
	slot := ring.KeySlot(keys[0])
	for _, k := range keys[1:] {
		if ring.KeySlot(k) != slot {
			x.W.Error("CROSSSLOT Keys in request don't hash to the same slot")
			return
		}
	}
	x.Slot, x.Keys = slot, keys
	if r := x.D.opts.Router; r != nil && !x.Conn.Master {
		if msg, ok := r.Route(x.Conn, x.Cmd, slot, keys); !ok {
			x.W.Error(msg)
			return
		}
	}
	// The slot's writers wait until the target answered: a write between
	// reading a key here and deleting it would be lost. Redis gets the
	// same from running MIGRATE on its only thread; readers go on.
	if !x.D.lockSlotWrites(x, slot) {
		// Parked by a pause (an atomic migration's gate on this slot,
		// or a manual failover): deleting keys now would move the
		// stream the pause is waiting to come to rest.
		return
	}
	defer x.D.st.UnlockWrites(slot)
	// The keys that exist, with their payloads and remaining TTLs.
	type item struct {
		key     []byte
		payload []byte
		ttl     int64
	}
	var items []item
	for _, k := range keys {
		e, ok := x.D.st.Lookup(slot, k, x.Now)
		if !ok {
			continue
		}
		ttl := int64(0)
		if e.ExpireAt != 0 {
			if ttl = e.ExpireAt - x.Now; ttl < 0 {
				continue
			}
			ttl = max(ttl, 1)
		}
		items = append(items, item{key: k, payload: rdb.DumpPayload(nil, e.Val), ttl: ttl})
	}
	if len(items) == 0 {
		x.W.Simple("NOKEY")
		return
	}
	addr := net.JoinHostPort(string(args[1]), string(args[2]))
	to := time.Duration(timeout) * time.Millisecond
	var req []byte
	build := func(c *migrateConn) (replies int) {
		req = req[:0]
		if auth != nil {
			req = appendArgs(req, append([][]byte{[]byte("AUTH")}, auth...)...)
			replies++
		}
		if c.lastDB != db {
			req = appendArgs(req, []byte("SELECT"), strconv.AppendInt(nil, db, 10))
			replies++
		}
		for _, it := range items {
			a := [][]byte{[]byte("RESTORE-ASKING"), it.key, strconv.AppendInt(nil, it.ttl, 10), it.payload}
			if replace {
				a = append(a, []byte("REPLACE"))
			}
			req = appendArgs(req, a...)
		}
		return replies
	}
	var c *migrateConn
	var pre int
	for attempt := 0; ; attempt++ {
		var cached bool
		var err error
		c, cached, err = x.D.migrate.get(addr, to)
		if err != nil {
			x.W.Error(errMigrateConnect)
			return
		}
		pre = build(c)
		_ = c.c.SetDeadline(time.Now().Add(to))
		_, err = c.c.Write(req)
		if err == nil {
			break
		}
		c.c.Close()
		var ne net.Error
		if !cached || attempt > 0 || (errors.As(err, &ne) && ne.Timeout()) {
			x.W.Error(errMigrateWrite)
			return
		}
		// A cached connection the target closed: dial once more, as Redis.
	}
	targetErr := ""
	for range pre {
		line, err := readReplyLine(c.br)
		if err != nil {
			c.c.Close()
			x.W.Error(errMigrateRead)
			return
		}
		if e := replyError(line); e != "" && targetErr == "" {
			targetErr = e
		}
	}
	if targetErr != "" {
		// AUTH or SELECT refused: nothing was restored.
		c.lastDB = -1
		if strings.HasPrefix(targetErr, errMigrateUnexpected) {
			c.c.Close() // not Redis: its stream means nothing
		} else {
			drainReplies(c, len(items))
			x.D.migrate.put(addr, c)
		}
		x.W.Error(targetErr)
		return
	}
	c.lastDB = db
	var moved [][]byte
	for _, it := range items {
		line, err := readReplyLine(c.br)
		if err != nil {
			c.c.Close()
			x.D.deleteMigrated(x, moved, copyKeys)
			x.W.Error(errMigrateRead)
			return
		}
		if e := replyError(line); e != "" {
			if targetErr == "" {
				targetErr = e
			}
			continue
		}
		moved = append(moved, it.key)
	}
	if strings.HasPrefix(targetErr, errMigrateUnexpected) {
		c.c.Close()
	} else {
		x.D.migrate.put(addr, c)
	}
	x.D.deleteMigrated(x, moved, copyKeys)
	if targetErr != "" {
		x.W.Error(targetErr)
		return
	}
	x.W.OK()
}

// replyError returns the error MIGRATE reports for one reply of its
// target, or "" for the +OK that acknowledges a key. Redis counts any
// reply that is not an error as an acknowledgement; a key is deleted here
// on that, so anything but a status reply (a port that is not Redis) is an
// error too, and the key stays.
func replyError(line string) string {
	switch line[0] {
	case '+':
		return ""
	case '-':
		return "ERR Target instance replied with error: " + line[1:]
	}
	if len(line) > 64 {
		line = line[:64] + "..."
	}
	return errMigrateUnexpected + strconv.Quote(line)
}

// deleteMigrated deletes the keys a target acknowledged, propagated like
// any write. The caller holds the slot's writer lock.
func (d *Dispatcher) deleteMigrated(x *Ctx, keys [][]byte, copyKeys bool) {
	if copyKeys || len(keys) == 0 {
		return
	}
	ver := d.st.Version(x.Slot)
	for _, k := range keys {
		d.st.Del(x.Slot, k, x.Now)
	}
	if d.propagating.Load() && d.st.Version(x.Slot) != ver {
		x.Keys = keys
		d.propagateKeys(x, x.Cmd)
	}
}

func drainReplies(c *migrateConn, n int) {
	for range n {
		if _, err := readReplyLine(c.br); err != nil {
			return
		}
	}
}

// readReplyLine reads one simple reply line (RESTORE, AUTH and SELECT
// answer with +OK or an error), without its CRLF.
func readReplyLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	return line, nil
}

func appendArgs(b []byte, args ...[]byte) []byte {
	b = resp.AppendArrayLen(b, len(args))
	for _, a := range args {
		b = resp.AppendBulk(b, a)
	}
	return b
}
