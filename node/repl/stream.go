package repl

import (
	"errors"
	"slices"
	"sync"
)

// chunkSize is the size of the blocks the stream keeps its bytes in.
const chunkSize = 64 << 10

// ErrClosed is returned by a Reader whose stream was reset or which was
// closed.
var ErrClosed = errors.New("repl: stream reader closed")

// Stream is a node's replication stream: the bytes it sends its replicas,
// numbered by offset like Redis's master_repl_offset (the first byte ever
// written has offset 1). It keeps the last BacklogSize bytes for partial
// resyncs, and, beyond that, whatever a connected replica has not read
// yet, so a replica being full-synced never misses the writes made while
// its snapshot was produced. It is safe for concurrent use.
type Stream struct {
	mu sync.Mutex
	// replID names the history the offsets belong to; replID2 and off2
	// name the one it continued (PSYNC2): offsets up to off2-1 are shared
	// with replID2.
	replID, replID2 string
	off2            int64
	end             int64 // offset of the last byte
	start           int64 // retained bytes are start+1 .. end
	chunks          [][]byte
	backlog         int64
	active          bool // a backlog exists (Redis creates it for the first replica)
	readers         []*Reader
}

// NewStream returns an empty stream of history id keeping backlog bytes.
func NewStream(id string, backlog int64) *Stream {
	return &Stream{replID: id, off2: -1, backlog: backlog}
}

// Append adds b to the stream and returns the offset of its last byte.
func (s *Stream) Append(b []byte) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(b) > 0 {
		n := len(s.chunks)
		if n == 0 || len(s.chunks[n-1]) == cap(s.chunks[n-1]) {
			s.chunks = append(s.chunks, make([]byte, 0, chunkSize))
			n++
		}
		c := s.chunks[n-1]
		k := min(len(b), cap(c)-len(c))
		s.chunks[n-1] = append(c, b[:k]...)
		b = b[k:]
		s.end += int64(k)
	}
	for i := 0; i < len(s.readers); i++ {
		r := s.readers[i]
		if r.limit > 0 && s.end-r.next+1 > r.limit {
			r.closeLocked()
			i-- // closeLocked removed it
			if r.onOverflow != nil {
				go r.onOverflow()
			}
			continue
		}
		if r.waiting {
			// Only a reader that found nothing to read waits on ready;
			// signalling the others on every append would cost a
			// channel operation per write.
			r.waiting = false
			select {
			case r.ready <- struct{}{}:
			default:
			}
		}
	}
	if len(s.chunks) > 1 {
		s.trim()
	}
	return s.end
}

// trim drops the chunks that are older than the backlog and read by every
// reader.
func (s *Stream) trim() {
	keepFrom := s.end - s.backlog // bytes <= keepFrom may go
	for _, r := range s.readers {
		keepFrom = min(keepFrom, r.next-1)
	}
	drop := 0
	for drop < len(s.chunks) && s.start+int64(len(s.chunks[drop])) <= keepFrom && drop < len(s.chunks)-1 {
		s.start += int64(len(s.chunks[drop]))
		drop++
	}
	if drop > 0 {
		clear(s.chunks[:drop])
		s.chunks = s.chunks[drop:]
	}
}

// Info is what INFO replication reports about the stream.
type Info struct {
	ReplID, ReplID2 string
	Offset          int64 // master_repl_offset
	SecondOffset    int64 // second_repl_offset, -1 when there is no replID2
	Active          bool
	BacklogSize     int64
	FirstByte       int64 // repl_backlog_first_byte_offset
	HistLen         int64
	Retained        int64 // bytes held in memory, backlog and unread replica data
}

// Info returns the stream's ids and offsets.
func (s *Stream) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := max(s.start, s.end-s.backlog)
	in := Info{ReplID: s.replID, ReplID2: s.replID2, Offset: s.end, SecondOffset: s.off2,
		Active: s.active, BacklogSize: s.backlog, Retained: s.end - s.start}
	if s.active {
		in.FirstByte, in.HistLen = first+1, s.end-first
	}
	if in.ReplID2 == "" {
		in.ReplID2 = "0000000000000000000000000000000000000000"
	}
	return in
}

// Offset returns the offset of the last byte.
func (s *Stream) Offset() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end
}

// Activate marks the backlog as existing (INFO's repl_backlog_active).
func (s *Stream) Activate() {
	s.mu.Lock()
	s.active = true
	s.mu.Unlock()
}

// CanContinue reports whether a replica of history id that needs the bytes
// from offset next on can be served from the backlog (PSYNC's partial
// resync), following Redis's PSYNC2 rule for the previous history.
func (s *Stream) CanContinue(id string, next int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return false
	}
	switch {
	case id == s.replID:
	case id == s.replID2 && s.replID2 != "" && next <= s.off2:
	default:
		return false
	}
	first := max(s.start, s.end-s.backlog) + 1
	return next >= first && next <= s.end+1
}

// Reset starts a new history id at offset off with nothing retained (a
// replica that full-synced). Readers are closed: their replicas must
// resync too.
func (s *Stream) Reset(id string, off int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replID, s.replID2, s.off2 = id, "", -1
	s.end, s.start, s.chunks = off, off, nil
	s.active = true
	for len(s.readers) > 0 {
		s.readers[0].closeLocked()
	}
}

// Shift continues the stream under a new history id, keeping the old one as
// replID2 up to the current offset: what a promoted replica does, and a
// replica told +CONTINUE with a new id.
func (s *Stream) Shift(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == s.replID {
		return
	}
	s.replID2, s.off2 = s.replID, s.end+1
	s.replID = id
}

// Reader reads a stream from an offset on, for one replica. The stream
// keeps every byte the reader has not read.
type Reader struct {
	s       *Stream
	next    int64 // offset of the next byte to read
	ready   chan struct{}
	closed  bool
	waiting bool // found nothing to read: the next append signals ready
	// limit is the most unread bytes the reader may fall behind by; past
	// it the reader is closed and onOverflow runs.
	limit      int64
	onOverflow func()
}

// SetLimit closes the reader and calls fn (in a new goroutine) once more
// than limit bytes are unread.
func (r *Reader) SetLimit(limit int64, fn func()) {
	r.s.mu.Lock()
	r.limit, r.onOverflow = limit, fn
	r.s.mu.Unlock()
}

// NewReader returns a reader from offset next, or false when the stream
// no longer holds it.
func (s *Stream) NewReader(next int64) (*Reader, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if next <= s.start || next > s.end+1 {
		return nil, false
	}
	r := &Reader{s: s, next: next, ready: make(chan struct{}, 1)}
	s.readers = append(s.readers, r)
	return r, true
}

// Ready is signalled after an append that follows a Read that returned
// nothing.
func (r *Reader) Ready() <-chan struct{} { return r.ready }

// Read appends up to max unread bytes to buf and returns it.
func (r *Reader) Read(buf []byte, limit int) ([]byte, error) {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.closed {
		return buf, ErrClosed
	}
	pos := s.start // offset of the byte before chunk i
	for _, c := range s.chunks {
		if limit <= 0 {
			break
		}
		cend := pos + int64(len(c))
		if r.next <= cend {
			from := r.next - pos - 1
			k := min(int64(len(c))-from, int64(limit))
			buf = append(buf, c[from:from+k]...)
			r.next += k
			limit -= int(k)
		}
		pos = cend
	}
	if limit > 0 && r.next > s.end {
		r.waiting = true
	}
	s.trim()
	return buf, nil
}

// Lag returns how many bytes are written and not read yet.
func (r *Reader) Lag() int64 {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.s.end - r.next + 1
}

// Close unregisters the reader.
func (r *Reader) Close() {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.closeLocked()
}

func (r *Reader) closeLocked() {
	if !r.closed {
		r.closed = true
		r.s.readers = slices.DeleteFunc(r.s.readers, func(o *Reader) bool { return o == r })
		select {
		case r.ready <- struct{}{}:
		default:
		}
	}
}
