package store

import (
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"unsafe"

	"github.com/hearsay/hearsay/ring"
)

// Eviction in the spirit of Redis's maxmemory policies: sample a few keys
// (maxmemory-samples), keep the best candidates seen so far in a small
// pool across calls, and delete the best one. The pool is what makes a
// 5-key sample approximate true LRU well: a key that looked idle in an
// earlier sample stays a candidate until something idler replaces it.
// Every eviction goes through remove and notifyExpired, so replication
// sees a DEL, exactly as for an expiry.

// Policy is a maxmemory-policy: what to do when a write finds used memory
// above the limit.
type Policy uint8

// The supported policies, with Redis's names (String).
const (
	NoEviction     Policy = iota // refuse the write (OOM)
	AllKeysLRU                   // evict the least recently used key
	AllKeysRandom                // evict any key
	VolatileLRU                  // evict the least recently used key with a TTL
	VolatileRandom               // evict any key with a TTL
	VolatileTTL                  // evict the key with a TTL that expires soonest
)

var policyNames = [...]string{"noeviction", "allkeys-lru", "allkeys-random", "volatile-lru", "volatile-random", "volatile-ttl"}

func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "unknown"
}

// ParsePolicy reads a maxmemory-policy name, case-insensitively. Redis's
// LFU policies are not supported.
func ParsePolicy(s string) (Policy, bool) {
	for i, n := range policyNames {
		if strings.EqualFold(s, n) {
			return Policy(i), true
		}
	}
	return 0, false
}

func (p Policy) volatile() bool { return p == VolatileLRU || p == VolatileRandom || p == VolatileTTL }

// DefaultSamples is Redis's maxmemory-samples default.
const DefaultSamples = 5

// poolSize is how many candidates the pool keeps (Redis: 16).
const poolSize = 16

type evictCand struct {
	slot  uint16
	key   string // a copy: the pool must not keep a deleted key's value alive
	score uint64 // higher evicts first
}

// evictPool holds the best candidates seen, sorted by ascending score.
type evictPool struct {
	mu     sync.Mutex
	c      []evictCand
	policy Policy // what the scores in c mean
}

func (p *evictPool) offer(slot uint16, key string, score uint64) {
	for i := range p.c {
		if p.c[i].slot == slot && p.c[i].key == key {
			p.c = append(p.c[:i], p.c[i+1:]...)
			break
		}
	}
	if len(p.c) == poolSize {
		if score <= p.c[0].score {
			return
		}
		p.c = p.c[1:]
	}
	i := len(p.c)
	for i > 0 && p.c[i-1].score > score {
		i--
	}
	p.c = append(p.c, evictCand{})
	copy(p.c[i+1:], p.c[i:])
	p.c[i] = evictCand{slot: slot, key: strings.Clone(key), score: score}
}

// Evict deletes one key chosen by policy p, sampling samples keys (at
// least 1), and reports whether it deleted one; false means nothing is
// evictable (noeviction, an empty keyspace, or no key with a TTL for a
// volatile policy). A key found expired is reclaimed as an expiry instead,
// which also frees memory. Evicted keys are told to the expire hook
// (replication's DEL) under the same locks as active expiry's, so the
// caller must hold no slot's writer lock. allow, when set, is asked with
// the victim's slot writer lock held (LockWrites) just before the delete;
// false stops the eviction (Evict then reports false). The dispatcher
// uses it so that no eviction slips past a write pause's barrier.
func (s *Store) Evict(p Policy, samples int, now int64, allow func() bool) bool {
	if p == NoEviction || p > VolatileTTL {
		return false
	}
	samples = max(samples, 1)
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	if s.pool.policy != p {
		// CONFIG SET changed the policy: idle times and expiries do not
		// compare.
		s.pool.c, s.pool.policy = s.pool.c[:0], p
	}
	for range 16 {
		if p == AllKeysRandom || p == VolatileRandom {
			idx, key, ok := s.anyKey(p.volatile())
			if !ok {
				return false
			}
			if done, ok := s.evictKey(idx, key, p.volatile(), now, allow); ok || done {
				return ok
			}
			continue
		}
		if !s.sample(p, samples, now) {
			s.pool.c = s.pool.c[:0]
			return false
		}
		for n := len(s.pool.c); n > 0; n = len(s.pool.c) {
			c := s.pool.c[n-1]
			s.pool.c = s.pool.c[:n-1]
			if done, ok := s.evictKey(c.slot, c.key, p.volatile(), now, allow); ok || done {
				return ok
			}
		}
	}
	return false
}

// EvictedCount returns the number of keys evicted so far.
func (s *Store) EvictedCount() int64 { return s.evicted.Load() }

// randomSlot returns a random slot holding keys (with a TTL when volatile).
func (s *Store) randomSlot(volatile bool) (uint16, bool) {
	has := func(sl *slot) bool {
		if volatile {
			return sl.nttl.Load() > 0
		}
		return sl.n.Load() > 0
	}
	start := rand.IntN(ring.Slots)
	// A few random probes find a slot at once when keys are spread over
	// the slots a node owns; the walk covers a sparse keyspace.
	for range 8 {
		i := uint16(rand.IntN(ring.Slots))
		if sl := s.peek(i); sl != nil && has(sl) {
			return i, true
		}
	}
	for i, sl := range s.from(start) {
		if has(sl) {
			return i, true
		}
	}
	return 0, false
}

// anyKey returns a random key (with a TTL when volatile): one of a
// random slot's, the first its map iteration yields, which starts at a
// random position. It reports false when there is no such key.
func (s *Store) anyKey(volatile bool) (uint16, string, bool) {
	for range 4 { // the slot may empty between the pick and the lock
		idx, ok := s.randomSlot(volatile)
		if !ok {
			return 0, "", false
		}
		sl := s.peek(idx)
		sl.mu.RLock()
		k, ok := firstKey(sl, volatile)
		sl.mu.RUnlock()
		if ok {
			return idx, strings.Clone(k), true
		}
	}
	return 0, "", false
}

func firstKey(sl *slot, volatile bool) (string, bool) {
	if volatile {
		for k := range sl.ttl {
			return k, true
		}
		return "", false
	}
	for k := range sl.keys {
		return k, true
	}
	return "", false
}

// sample offers n keys to the pool, scored for p: those of the slots from
// a random one on (as Redis's sample takes consecutive buckets of its
// table from a random one), so that a dense keyspace costs one slot visit
// and a sparse one still yields n keys. It reports false when there is no
// key to sample.
func (s *Store) sample(p Policy, n int, now int64) bool {
	clock := lruClock(now)
	score := func(e entry) uint64 {
		switch {
		case e.expired(now):
			return math.MaxUint64
		case p == VolatileTTL:
			return math.MaxUint64 - 1 - uint64(e.exp)
		}
		return uint64(clock - e.stamp().Load()) // wraps as the clock does
	}
	volatile := p.volatile()
	got := 0
	for idx, sl := range s.from(rand.IntN(ring.Slots)) {
		if got == n {
			break
		}
		if (volatile && sl.nttl.Load() == 0) || sl.n.Load() == 0 {
			continue
		}
		sl.mu.RLock()
		if volatile {
			for k := range sl.ttl {
				if got == n {
					break
				}
				s.pool.offer(idx, k, score(sl.keys[k]))
				got++
			}
		} else {
			for k, e := range sl.keys {
				if got == n {
					break
				}
				s.pool.offer(idx, k, score(e))
				got++
			}
		}
		sl.mu.RUnlock()
	}
	return got > 0
}

// evictKey deletes key from slot idx if it is still there (and still has
// a TTL when volatile), and reports whether it did; done reports that
// allow refused, which ends the eviction.
func (s *Store) evictKey(idx uint16, key string, volatile bool, now int64, allow func() bool) (done, ok bool) {
	sl := s.peek(idx)
	if sl == nil {
		return false, false
	}
	if s.expireHook.Load() != nil || allow != nil {
		// Ordered with the slot's sequenced writes, as in active expiry;
		// the caller holds no writer lock (see Evict).
		sl.wmu.Lock()
		defer sl.wmu.Unlock()
	}
	if allow != nil && !allow() {
		return true, false
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	e, found := sl.keys[key]
	if !found || (volatile && e.exp == 0) {
		return false, false
	}
	kb := unsafe.Slice(unsafe.StringData(key), len(key))
	s.remove(sl, len(key), e)
	s.notifyExpired(sl, kb)
	if e.expired(now) {
		s.expired.Add(1)
	} else {
		s.evicted.Add(1)
	}
	return false, true
}
