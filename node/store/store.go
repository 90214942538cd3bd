// Package store is the node's keyspace: string keys partitioned by hash
// slot. Every slot has its own map, lock and key count, so counting the keys
// of a slot is O(1), a slot can be dumped, loaded or dropped as a unit, and
// writers in different slots do not contend.
//
// The store never reads the clock: every call that can observe expiry takes
// the current time in unix milliseconds from the caller.
//
// Values returned by the store (Get, Set's old value, Scan keys...) alias
// its internal buffers. They are immutable: treat them as read-only. They
// stay valid after the key is changed or deleted.
package store

import (
	"cmp"
	"errors"
	"hash/maphash"
	"iter"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/ring"
)

// Errors returned by the numeric operations; their text is the Redis reply.
var (
	ErrNotInteger = errors.New("ERR value is not an integer or out of range")
	ErrOverflow   = errors.New("ERR increment or decrement would overflow")
)

// entry is one key's value. buf holds the key bytes followed by the value;
// the map key is a string aliasing buf[:len(key)], so a key and its value
// cost one allocation. A buffer's bytes are never rewritten once published;
// APPEND may only extend it into spare capacity, which readers (who get
// slices capped at the old length) never see.
type entry struct {
	buf []byte
	exp int64 // absolute unix ms; 0 means no expiry
}

func (e entry) val(klen int) []byte {
	n := len(e.buf)
	return e.buf[klen:n:n]
}

func (e entry) key(klen int) string {
	return unsafe.String(unsafe.SliceData(e.buf), klen)
}

func (e entry) expired(now int64) bool { return e.exp != 0 && now > e.exp }

// stampSize is the header before every buffer's key: the entry's access
// stamp (see touch). It lives in the buffer, not in the map's entry value,
// so that a read, which holds only the slot's read lock and cannot write
// the map, can still update it with an atomic store.
const stampSize = 4

// stamp returns the entry's access stamp, the stampSize bytes before
// buf's first byte (makeBuf allocates them).
func (e entry) stamp() *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(e.buf)), -stampSize))
}

// lruClock is the access stamp of time now (unix ms): a wrapping count of
// 100 ms ticks, so that idle times up to 13 years compare correctly by
// wrapping subtraction. Redis's LRU clock has a 1 s resolution; this is
// finer at no cost.
func lruClock(now int64) uint32 { return uint32(now / 100) }

// touch records an access to e at now. It loads first: a hot key read on
// every event loop then dirties its cache line once per tick, not once per
// read.
func (e entry) touch(now int64) {
	if p, c := e.stamp(), lruClock(now); p.Load() != c {
		p.Store(c)
	}
}

// entryOverhead approximates what a key costs beyond its buffer: the map
// entry (key string header and entry value) with the hash table's spare
// room and the allocator's rounding of small buffers, calibrated so that
// BenchmarkMemoryPerKey's accounted bytes match its heap bytes for small
// keys. ttlOverhead is the extra entry in the slot's TTL map.
const (
	entryOverhead = 96
	ttlOverhead   = 24
)

// size is what an entry counts for in UsedMemory.
func (e entry) size() int64 {
	n := int64(cap(e.buf)) + stampSize + entryOverhead
	if e.exp != 0 {
		n += ttlOverhead
	}
	return n
}

type slot struct {
	mu sync.RWMutex
	// wmu orders the writers of a slot that replication sequences (see
	// LockWrites). It sits next to mu so that a write touches one cache
	// line for both.
	wmu  sync.Mutex
	keys map[string]entry
	ttl  map[string]struct{} // keys of this slot that have an expiry
	n    atomic.Int32        // len(keys), readable without mu
	nttl atomic.Int32        // len(ttl)
	// ver counts the slot's mutations so a sequenced writer can tell
	// whether its command changed anything; it may wrap.
	ver atomic.Uint32
	idx uint16 // the slot's number, for the expire hook and accounting
	_   [2]byte
}

// A slot is one cache line, and a chunk's slots start on one (see chunk),
// so no slot straddles two.
var (
	_ [64 - unsafe.Sizeof(slot{})]byte
	_ [unsafe.Sizeof(slot{}) - 64]byte
)

// Store is a slot-partitioned string keyspace, safe for concurrent use.
type Store struct {
	chunks  [numChunks]atomic.Pointer[chunk] // nil until a slot of it is written
	growMu  sync.Mutex                       // held to allocate a chunk
	seed    maphash.Seed
	expired atomic.Int64

	cycleMu sync.Mutex
	cursor  int // next slot ExpireCycle visits

	// expireHook, when set, is told of every key expiry deletes; reads
	// then leave expired keys to the writers and active expiry, whose
	// deletions are sequenced (see SetExpireHook).
	expireHook atomic.Pointer[func(slot uint16, key []byte)]

	// mem holds UsedMemory in shards (by slot) so that writers on
	// different event loops do not all bounce one cache line.
	mem [memShards]memShard

	evicted atomic.Int64
	pool    evictPool

	ttlWatch ttlWatch
}

const memShards = 16

type memShard struct {
	n atomic.Int64
	_ [56]byte
}

// account adds delta bytes to slot sl's memory; sl's data lock is held.
func (s *Store) account(sl *slot, delta int64) {
	if delta == 0 {
		return
	}
	*s.slotBytes(sl) += delta
	s.mem[sl.idx%memShards].n.Add(delta)
}

// UsedMemory returns the bytes the keyspace accounts for: every key's
// buffer (key and value, with spare capacity an APPEND left) and a fixed
// per-key estimate of the hash tables' share. It is what maxmemory is
// compared with. It counts no Go runtime overhead and no garbage not yet
// collected, so the process's heap is larger; unlike the heap it falls
// the moment a key is deleted.
func (s *Store) UsedMemory() int64 {
	var n int64
	for i := range s.mem {
		n += s.mem[i].n.Load()
	}
	return n
}

// New returns an empty store.
func New() *Store {
	return &Store{seed: maphash.MakeSeed(), ttlWatch: ttlWatch{ch: make(chan struct{}, 1)}}
}

// Entry is one key as dumped from or loaded into a slot.
type Entry struct {
	Key, Val []byte
	ExpireAt int64 // unix ms, 0 = no expiry
}

// ---- lock-held helpers -------------------------------------------------

// live returns key's entry, deleting it first if it has expired.
func (s *Store) live(sl *slot, key []byte, now int64) (entry, bool) {
	e, ok := sl.keys[string(key)]
	if ok && e.expired(now) {
		s.remove(sl, len(key), e)
		s.notifyExpired(sl, key)
		s.expired.Add(1)
		return entry{}, false
	}
	return e, ok
}

func (s *Store) remove(sl *slot, klen int, e entry) {
	s.account(sl, -e.size())
	k := e.key(klen)
	delete(sl.keys, k)
	sl.n.Add(-1)
	sl.ver.Add(1)
	if e.exp != 0 {
		delete(sl.ttl, k)
		sl.nttl.Add(-1)
	}
}

// install stores buf (key bytes then value, from makeBuf) with expiry exp,
// replacing old when existed, and stamps it accessed at now.
func (s *Store) install(sl *slot, klen int, buf []byte, exp int64, old entry, existed bool, now int64) {
	e := entry{buf: buf, exp: exp}
	e.touch(now)
	delta := e.size()
	if existed {
		delta -= old.size()
	}
	s.account(sl, delta)
	k := e.key(klen)
	sl.ver.Add(1)
	if sl.keys == nil {
		sl.keys = make(map[string]entry)
	}
	sl.keys[k] = e // also repoints the map's key at the new buffer
	if !existed {
		sl.n.Add(1)
	}
	hadTTL := existed && old.exp != 0
	switch {
	case exp != 0:
		if sl.ttl == nil {
			sl.ttl = make(map[string]struct{})
		}
		sl.ttl[k] = struct{}{}
		if !hadTTL {
			sl.nttl.Add(1)
			s.ttlWatch.added()
		}
	case hadTTL:
		delete(sl.ttl, k)
		sl.nttl.Add(-1)
	}
}

// makeBuf returns a buffer holding key then val, with room for capacity
// bytes, preceded by the access stamp's header. The allocation is rounded
// to 8 bytes so that the header is aligned for atomic access (Go's tiny
// allocator aligns small objects only as far as their size allows), and
// buf keeps at least one byte of capacity so that it points inside the
// allocation, past the header, even when key and val are empty.
func makeBuf(key, val []byte, capacity int) []byte {
	n := len(key) + len(val)
	c := (stampSize + max(capacity, n, 1) + 7) &^ 7
	buf := make([]byte, stampSize+n, c)[stampSize:]
	copy(buf, key)
	copy(buf[len(key):], val)
	return buf
}

// ---- reads --------------------------------------------------------------

// Get returns key's value.
func (s *Store) Get(slot uint16, key []byte, now int64) ([]byte, bool) {
	sl := s.peek(slot)
	if sl == nil {
		return nil, false
	}
	sl.mu.RLock()
	e, ok := sl.keys[string(key)]
	sl.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if e.expired(now) {
		s.expireKey(sl, key, now)
		return nil, false
	}
	e.touch(now)
	return e.val(len(key)), true
}

// Lookup returns key's value and expiry.
func (s *Store) Lookup(slot uint16, key []byte, now int64) (Entry, bool) {
	sl := s.peek(slot)
	if sl == nil {
		return Entry{}, false
	}
	sl.mu.RLock()
	e, ok := sl.keys[string(key)]
	sl.mu.RUnlock()
	if !ok {
		return Entry{}, false
	}
	if e.expired(now) {
		s.expireKey(sl, key, now)
		return Entry{}, false
	}
	e.touch(now)
	return Entry{Key: unsafe.Slice(unsafe.SliceData(e.buf), len(key)), Val: e.val(len(key)), ExpireAt: e.exp}, true
}

func (s *Store) expireKey(sl *slot, key []byte, now int64) {
	sl.mu.Lock()
	// Checked under the lock, so that a read racing SetExpireHook either
	// deletes before the hook's caller looks at the slot or not at all.
	if s.expireHook.Load() == nil {
		s.live(sl, key, now)
	}
	sl.mu.Unlock()
}

// notifyExpired tells the expire hook that key (of the slot sl, whose lock
// is held) was deleted because it expired.
func (s *Store) notifyExpired(sl *slot, key []byte) {
	if h := s.expireHook.Load(); h != nil {
		(*h)(sl.idx, key)
	}
}

// ---- sequenced writes ---------------------------------------------------

// LockWrites takes slot's writer lock. Replication holds it around a write
// command and the recording of its effect, so that the effects of one
// slot's writes are recorded in the order they were applied. It is
// separate from the data lock, which readers share.
func (s *Store) LockWrites(slot uint16) { s.writable(slot).wmu.Lock() }

// UnlockWrites releases slot's writer lock.
func (s *Store) UnlockWrites(slot uint16) { s.peek(slot).wmu.Unlock() }

// Version returns slot's mutation count: it changes whenever a key of the
// slot is written or deleted.
func (s *Store) Version(slot uint16) uint64 {
	if sl := s.peek(slot); sl != nil {
		return uint64(sl.ver.Load())
	}
	return 0
}

// SetExpireHook makes expiry and eviction observable for replication
// (both are deletions a replica must mirror). From then on
// reads no longer delete the expired keys they find (they report them
// missing); writers and ExpireCycle delete them, and call fn with the
// slot's data lock held for each key they delete that way. ExpireCycle
// also holds the slot's writer lock (LockWrites) while it works on it, so
// fn's calls are ordered with the slot's sequenced writes. fn must not call
// back into the store.
func (s *Store) SetExpireHook(fn func(slot uint16, key []byte)) {
	if fn == nil {
		s.expireHook.Store(nil)
		return
	}
	s.expireHook.Store(&fn)
}

// Exists reports whether key exists.
func (s *Store) Exists(slot uint16, key []byte, now int64) bool {
	_, ok := s.Get(slot, key, now)
	return ok
}

// TTL returns key's remaining time to live in ms, -1 if it has no expiry,
// or -2 if it does not exist.
func (s *Store) TTL(slot uint16, key []byte, now int64) int64 {
	e, ok := s.Lookup(slot, key, now)
	switch {
	case !ok:
		return -2
	case e.ExpireAt == 0:
		return -1
	}
	return max(e.ExpireAt-now, 0)
}

// ---- writes -------------------------------------------------------------

// SetOptions are SET's conditions and expiry.
type SetOptions struct {
	ExpireAt int64 // absolute unix ms; 0 keeps no expiry (or the old one with KeepTTL)
	NX, XX   bool
	KeepTTL  bool
}

// Set writes key = val under o's conditions. It returns the previous value
// (if the key existed) and whether the write happened. An ExpireAt already
// in the past deletes the key instead, which also counts as written.
func (s *Store) Set(slot uint16, key, val []byte, o SetOptions, now int64) (old []byte, existed, written bool) {
	sl := s.writable(slot)
	// Copy the key and value before taking the lock: the allocation is
	// most of a SET's work, and writers of one slot (a hot key written
	// from several event loops) queue on the lock. When NX/XX refuse the
	// write, the buffer is garbage.
	buf := makeBuf(key, val, 0)
	sl.mu.Lock()
	defer sl.mu.Unlock()
	e, ok := s.live(sl, key, now)
	if ok {
		old = e.val(len(key))
	}
	if (o.NX && ok) || (o.XX && !ok) {
		return old, ok, false
	}
	exp := o.ExpireAt
	if o.KeepTTL && ok {
		exp = e.exp
	}
	if exp != 0 && now > exp {
		if ok {
			s.remove(sl, len(key), e)
		}
		return old, ok, true
	}
	s.install(sl, len(key), buf, exp, e, ok, now)
	return old, ok, true
}

// Put stores an entry unconditionally (RESTORE, LoadSlot). Expired entries
// are dropped.
func (s *Store) Put(slot uint16, en Entry, now int64) {
	s.Set(slot, en.Key, en.Val, SetOptions{ExpireAt: en.ExpireAt}, now)
}

// Del deletes key and reports whether it existed.
func (s *Store) Del(slot uint16, key []byte, now int64) bool {
	_, ok := s.GetDel(slot, key, now)
	return ok
}

// GetDel deletes key and returns its value.
func (s *Store) GetDel(slot uint16, key []byte, now int64) ([]byte, bool) {
	sl := s.peek(slot)
	if sl == nil {
		return nil, false
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	e, ok := s.live(sl, key, now)
	if !ok {
		return nil, false
	}
	s.remove(sl, len(key), e)
	return e.val(len(key)), true
}

// IncrBy adds delta to the integer stored at key (0 if missing), keeping its
// expiry, and returns the new value.
func (s *Store) IncrBy(slot uint16, key []byte, delta, now int64) (int64, error) {
	sl := s.writable(slot)
	sl.mu.Lock()
	defer sl.mu.Unlock()
	e, ok := s.live(sl, key, now)
	var cur int64
	if ok {
		var good bool
		if cur, good = resp.ParseInt(e.val(len(key))); !good {
			return 0, ErrNotInteger
		}
	}
	if (delta < 0 && cur < 0 && delta < -1<<63-cur) || (delta > 0 && cur > 0 && delta > 1<<63-1-cur) {
		return 0, ErrOverflow
	}
	cur += delta
	var tmp [20]byte
	s.install(sl, len(key), makeBuf(key, strconv.AppendInt(tmp[:0], cur, 10), 0), e.exp, e, ok, now)
	return cur, nil
}

// Append appends val to key's value (creating it) and returns the new
// length. Repeated appends grow the buffer geometrically and write in place.
func (s *Store) Append(slot uint16, key, val []byte, now int64) int {
	sl := s.writable(slot)
	sl.mu.Lock()
	defer sl.mu.Unlock()
	e, ok := s.live(sl, key, now)
	if !ok {
		s.install(sl, len(key), makeBuf(key, val, 0), 0, e, false, now)
		return len(val)
	}
	if len(val) == 0 {
		return len(e.buf) - len(key)
	}
	var buf []byte
	if cap(e.buf)-len(e.buf) >= len(val) {
		buf = append(e.buf, val...) // in place, past every reader's length
	} else {
		buf = makeBuf(e.buf, val, 2*(len(e.buf)+len(val)))
	}
	s.install(sl, len(key), buf, e.exp, e, true, now)
	return len(buf) - len(key)
}

// ExpireCond is EXPIRE's NX / XX / GT / LT option.
type ExpireCond uint8

// Expire conditions.
const (
	ExpireAlways ExpireCond = iota
	ExpireNX                // only if the key has no expiry
	ExpireXX                // only if the key has an expiry
	ExpireGT                // only if the new expiry is later (no expiry counts as infinite)
	ExpireLT                // only if the new expiry is earlier
)

// Expire sets key's absolute expiry (unix ms) under cond and reports
// whether it was set. An expiry not after now deletes the key.
func (s *Store) Expire(slot uint16, key []byte, at int64, cond ExpireCond, now int64) bool {
	sl := s.peek(slot)
	if sl == nil {
		return false
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	e, ok := s.live(sl, key, now)
	if !ok {
		return false
	}
	switch cond {
	case ExpireNX:
		if e.exp != 0 {
			return false
		}
	case ExpireXX:
		if e.exp == 0 {
			return false
		}
	case ExpireGT:
		if e.exp == 0 || at <= e.exp {
			return false
		}
	case ExpireLT:
		if e.exp != 0 && at >= e.exp {
			return false
		}
	}
	if at <= now {
		s.remove(sl, len(key), e)
		return true
	}
	s.install(sl, len(key), e.buf, at, e, true, now)
	return true
}

// Persist removes key's expiry and reports whether it had one.
func (s *Store) Persist(slot uint16, key []byte, now int64) bool {
	sl := s.peek(slot)
	if sl == nil {
		return false
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	e, ok := s.live(sl, key, now)
	if !ok || e.exp == 0 {
		return false
	}
	s.install(sl, len(key), e.buf, 0, e, true, now)
	return true
}

// ---- whole-keyspace and per-slot operations -----------------------------

// CountKeysInSlot returns the number of keys in slot, in O(1). Keys that
// have expired but were not reclaimed yet are counted, as in Redis.
func (s *Store) CountKeysInSlot(slot uint16) int {
	if sl := s.peek(slot); sl != nil {
		return int(sl.n.Load())
	}
	return 0
}

// Len returns the number of keys (DBSIZE).
func (s *Store) Len() int {
	var n int64
	for _, sl := range s.from(0) {
		n += int64(sl.n.Load())
	}
	return int(n)
}

// LenWithTTL returns the number of keys that have an expiry.
func (s *Store) LenWithTTL() int {
	var n int64
	for _, sl := range s.from(0) {
		n += int64(sl.nttl.Load())
	}
	return int(n)
}

// ExpiredCount returns the number of keys reclaimed by expiry so far.
func (s *Store) ExpiredCount() int64 { return s.expired.Load() }

// DeleteSlot removes every key of slot and returns how many there were.
func (s *Store) DeleteSlot(slot uint16) int {
	sl := s.peek(slot)
	if sl == nil {
		return 0 // never written, and versions start at 0
	}
	sl.mu.Lock()
	n := len(sl.keys)
	sl.ver.Add(1)
	s.account(sl, -*s.slotBytes(sl))
	sl.keys, sl.ttl = nil, nil
	sl.n.Store(0)
	sl.nttl.Store(0)
	sl.mu.Unlock()
	return n
}

// ReplaceAll makes src's keys the store's, dropping the store's own, one
// slot at a time (a replica's full sync). src must not be used afterwards.
func (s *Store) ReplaceAll(src *Store) {
	var none slot
	for i := 0; i < ring.Slots; i++ {
		if s.chunks[i>>chunkBits].Load() == nil && src.chunks[i>>chunkBits].Load() == nil {
			i = nextChunk(i) - 1
			continue
		}
		sl, o, srcBytes := s.peek(uint16(i)), src.peek(uint16(i)), int64(0)
		if o == nil {
			o = &none
		} else {
			srcBytes = *src.slotBytes(o)
		}
		if (sl == nil || sl.n.Load() == 0) && o.n.Load() == 0 {
			continue
		}
		sl = s.writable(uint16(i))
		sl.mu.Lock()
		s.account(sl, srcBytes-*s.slotBytes(sl))
		sl.keys, sl.ttl = o.keys, o.ttl
		sl.n.Store(o.n.Load())
		sl.nttl.Store(o.nttl.Load())
		sl.ver.Add(1)
		sl.mu.Unlock()
		if o.nttl.Load() > 0 {
			s.ttlWatch.added()
		}
	}
}

// FlushAll removes every key.
func (s *Store) FlushAll() {
	for i, sl := range s.from(0) {
		if sl.n.Load() != 0 {
			s.DeleteSlot(i)
		}
	}
}

// GetKeysInSlot returns up to count keys of slot (CLUSTER GETKEYSINSLOT).
func (s *Store) GetKeysInSlot(slot uint16, count int) [][]byte {
	sl := s.peek(slot)
	if sl == nil {
		return [][]byte{}
	}
	sl.mu.RLock()
	defer sl.mu.RUnlock()
	keys := make([][]byte, 0, min(count, len(sl.keys)))
	for k := range sl.keys {
		if len(keys) >= count {
			break
		}
		keys = append(keys, unsafe.Slice(unsafe.StringData(k), len(k)))
	}
	return keys
}

// DumpSlot returns an iterator over a snapshot of slot's live keys, for
// migration. The snapshot is taken when iteration starts, under the slot's
// read lock; writes made afterwards are not seen. Yielded entries alias the
// store's immutable buffers.
func (s *Store) DumpSlot(slot uint16, now int64) iter.Seq[Entry] {
	return func(yield func(Entry) bool) {
		sl := s.peek(slot)
		if sl == nil {
			return
		}
		sl.mu.RLock()
		snap := make([]Entry, 0, len(sl.keys))
		for k, e := range sl.keys {
			if e.expired(now) {
				continue
			}
			snap = append(snap, Entry{Key: unsafe.Slice(unsafe.StringData(k), len(k)), Val: e.val(len(k)), ExpireAt: e.exp})
		}
		sl.mu.RUnlock()
		for _, en := range snap {
			if !yield(en) {
				return
			}
		}
	}
}

// LoadSlot stores every entry of entries into slot (replacing existing
// keys), copying the bytes, and returns how many were stored. Entries that
// have already expired are skipped.
func (s *Store) LoadSlot(slot uint16, entries iter.Seq[Entry], now int64) int {
	n := 0
	for en := range entries {
		if en.ExpireAt != 0 && now > en.ExpireAt {
			continue
		}
		s.Put(slot, en, now)
		n++
	}
	return n
}

// ---- iteration ----------------------------------------------------------

// Keys returns every live key for which match returns true (nil matches
// all).
func (s *Store) Keys(match func(key []byte) bool, now int64) [][]byte {
	var out [][]byte
	for _, sl := range s.from(0) {
		if sl.n.Load() == 0 {
			continue
		}
		sl.mu.RLock()
		for k, e := range sl.keys {
			kb := unsafe.Slice(unsafe.StringData(k), len(k))
			if !e.expired(now) && (match == nil || match(kb)) {
				out = append(out, kb)
			}
		}
		sl.mu.RUnlock()
	}
	return out
}

// Scan cursors: the slot in the top bits, a position in the slot's hash
// order in the low posBits bits. Cursor 0 starts and ends a scan.
const (
	posBits = 50
	posMask = 1<<posBits - 1
)

type scanKey struct {
	h   uint64
	key string
}

// Scan returns keys from cursor on, examining about count keys, and the
// cursor to continue from (0 when the scan is complete). Within a slot keys
// are visited in the order of a per-store hash, so a key that exists for the
// whole scan is returned exactly once, however the keyspace changes between
// calls. Keys with expired TTLs are skipped; match filters after counting.
func (s *Store) Scan(cursor uint64, count int, match func(key []byte) bool, now int64) (next uint64, keys [][]byte) {
	count = max(count, 1)
	slotIdx, pos := cursor>>posBits, cursor&posMask
	examined := 0
	var cand []scanKey
	for slotIdx < ring.Slots {
		sl := s.peek(uint16(slotIdx))
		if sl == nil {
			slotIdx, pos = uint64(nextChunk(int(slotIdx))), 0
			continue
		}
		if sl.n.Load() == 0 {
			slotIdx, pos = slotIdx+1, 0
			continue
		}
		cand = cand[:0]
		sl.mu.RLock()
		for k, e := range sl.keys {
			if h := maphash.String(s.seed, k) >> (64 - posBits); h >= pos && !e.expired(now) {
				cand = append(cand, scanKey{h, k})
			}
		}
		sl.mu.RUnlock()
		need := count - examined
		take := len(cand)
		done := true
		if take > need {
			slices.SortFunc(cand, func(a, b scanKey) int { return cmp.Compare(a.h, b.h) })
			take = need
			for take < len(cand) && cand[take].h == cand[take-1].h {
				take++
			}
			done = take == len(cand)
		}
		for _, c := range cand[:take] {
			kb := unsafe.Slice(unsafe.StringData(c.key), len(c.key))
			if match == nil || match(kb) {
				keys = append(keys, kb)
			}
		}
		examined += take
		if !done {
			pos = cand[take].h
			break
		}
		slotIdx, pos = slotIdx+1, 0
		if examined >= count {
			break
		}
	}
	if slotIdx >= ring.Slots {
		return 0, keys
	}
	return slotIdx<<posBits | pos, keys
}
