package repl

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strconv"
	"time"

	"github.com/hearsay/hearsay/node/rdb"
	"github.com/hearsay/hearsay/node/store"
	"github.com/hearsay/hearsay/ring"
)

// WriteSnapshot writes the store as an RDB file to w (SAVE, BGSAVE),
// labelled with the current replication id and offset, and returns its
// size. Like a full sync it reads one slot at a time while writes go on.
func (m *Manager) WriteSnapshot(w io.Writer) (int64, error) {
	in := m.stream.Info()
	return m.writeSnapshot(w, in.ReplID, in.Offset)
}

// LoadSnapshot reads an RDB file into a new store, which replaces the
// node's keyspace only if the whole file loaded. A file that names its
// replication history (AUX repl-id and repl-offset, which WriteSnapshot
// writes) makes it the node's own, as Redis 7 does, so a restarted replica
// can resume with a partial resync instead of a full one: the stream
// from that offset on, replayed on the file, reaches the master's state.
func (m *Manager) LoadSnapshot(r io.Reader) (rdb.Info, error) {
	st, info, err := loadSnapshot(r)
	if err != nil {
		return info, err
	}
	m.st.ReplaceAll(st)
	var id string
	off := int64(-1)
	for _, a := range info.Aux {
		switch a[0] {
		case "repl-id":
			id = a[1]
		case "repl-offset":
			off, _ = strconv.ParseInt(a[1], 10, 64)
		}
	}
	if validReplID(id) && off >= 0 {
		m.stream.Reset(id, off)
	}
	return info, nil
}

// validReplID reports whether id is 40 hex digits.
func validReplID(id string) bool {
	if len(id) != 40 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// writeSnapshot writes the store as an RDB stream to w, slot by slot. Each
// slot is copied under its read lock only as long as it takes to collect
// references to its immutable values, so writers wait microseconds, never
// the whole dump. It returns the bytes written.
func (m *Manager) writeSnapshot(w io.Writer, id string, off int64) (int64, error) {
	rw := rdb.NewWriter(w)
	now := time.Now()
	err := rw.Header(
		[2]string{"redis-ver", "7.0.15"},
		[2]string{"redis-bits", "64"},
		[2]string{"ctime", strconv.FormatInt(now.Unix(), 10)},
		[2]string{"used-mem", "0"},
		[2]string{"repl-stream-db", "0"},
		[2]string{"repl-id", id},
		[2]string{"repl-offset", strconv.FormatInt(off, 10)},
		[2]string{"aof-base", "0"},
	)
	if err != nil {
		return rw.Written(), err
	}
	if err := rw.SelectDB(0, uint64(m.st.Len()), uint64(m.st.LenWithTTL())); err != nil {
		return rw.Written(), err
	}
	// A replica must not drop keys by its own clock: its master's DELs
	// will come. A master leaves out what has expired.
	nowMs := now.UnixMilli()
	if m.role.Load() {
		nowMs = 0
	}
	for slot := range ring.Slots {
		if m.st.CountKeysInSlot(uint16(slot)) == 0 {
			continue
		}
		if slot%64 == 0 {
			// Let the event loops run between batches: on a small
			// machine the encoder would otherwise hold a CPU for the
			// scheduler's whole 10 ms slice.
			runtime.Gosched()
		}
		for e := range m.st.DumpSlot(uint16(slot), nowMs) {
			if err := rw.String(e.Key, e.Val, e.ExpireAt); err != nil {
				return rw.Written(), err
			}
		}
	}
	err = rw.Finish()
	return rw.Written(), err
}

// loadSnapshot reads an RDB stream into a new store; nothing of the node's
// own store changes unless the whole stream loads.
func loadSnapshot(r io.Reader) (*store.Store, rdb.Info, error) {
	st := store.New()
	info, err := rdb.Load(r, func(e rdb.Entry) error {
		if e.DB != 0 {
			return errors.New("keys outside database 0 (a cluster node has only database 0)")
		}
		st.Put(ring.KeySlot(e.Key), store.Entry{Key: e.Key, Val: e.Value, ExpireAt: e.ExpireAtMs}, 0)
		return nil
	})
	if err != nil {
		return nil, info, err
	}
	return st, info, nil
}

// markReader returns what r delivers up to the end mark of a disk-less
// payload ("$EOF:<mark>" framing), then io.EOF. The mark's 40 bytes are
// held back until it is clear they are not the mark.
type markReader struct {
	r    io.Reader
	mark []byte
	buf  []byte // read from r, not yet returned
	eof  bool
	// rest is what followed the mark in the last read (the stream).
	rest []byte
}

func (m *markReader) Read(p []byte) (int, error) {
	for {
		hold := len(m.mark)
		if m.eof {
			hold = 0
		}
		if len(m.buf) > hold {
			n := copy(p, m.buf[:len(m.buf)-hold])
			m.buf = m.buf[n:]
			return n, nil
		}
		if m.eof {
			return 0, io.EOF
		}
		if cap(m.buf)-len(m.buf) < 64<<10 {
			nb := make([]byte, len(m.buf), len(m.buf)+128<<10)
			copy(nb, m.buf)
			m.buf = nb
		}
		n, err := m.r.Read(m.buf[len(m.buf):cap(m.buf)])
		m.buf = m.buf[:len(m.buf)+n]
		if i := bytes.Index(m.buf, m.mark); i >= 0 {
			m.rest = append([]byte(nil), m.buf[i+len(m.mark):]...)
			m.buf = m.buf[:i]
			m.eof = true
			continue
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}
