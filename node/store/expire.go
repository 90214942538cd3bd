package store

import (
	"sync/atomic"
	"unsafe"

	"github.com/hearsay/hearsay/ring"
)

// Active expiry, in the spirit of Redis's: visit the slots that hold keys
// with an expiry round robin, sample expireSample of a slot's TTL keys,
// delete the expired ones, and sample the slot again while more than a
// quarter of a sample had expired. Every deletion goes through remove and
// notifyExpired, so the expire hook (replication's DEL) sees each one.

const expireSample = 20

// ExpireCycle runs one round of active expiry that stops after examining
// budget keys or visiting every slot once. It returns the number of keys
// deleted.
func (s *Store) ExpireCycle(now int64, budget int) int {
	deleted, _ := s.expire(now, budget, nil)
	return deleted
}

// ExpireUntil runs active expiry with no key budget until stop returns
// true (it is asked before each slot visit and each sample, so it bounds
// the time spent to about one sample's work past it) or every slot has
// been visited once. It returns the keys deleted and whether the pass over
// every slot completed. The caller owns the clock: stop is how it bounds
// the CPU a cycle takes.
func (s *Store) ExpireUntil(now int64, stop func() bool) (deleted int, completed bool) {
	return s.expire(now, -1, stop)
}

// expire is ExpireCycle (budget ≥ 0) and ExpireUntil (budget < 0, stop).
func (s *Store) expire(now int64, budget int, stop func() bool) (deleted int, completed bool) {
	s.cycleMu.Lock()
	defer s.cycleMu.Unlock()
	more := func() bool {
		if budget >= 0 {
			return budget > 0
		}
		return !stop()
	}
	i := 0
	for ; i < ring.Slots && more(); i++ {
		idx := s.cursor
		c := s.chunks[idx>>chunkBits].Load()
		if c == nil {
			// The rest of the chunk in one step, no further than a
			// full pass.
			skip := min(nextChunk(idx)-idx, ring.Slots-i)
			s.cursor = (idx + skip) % ring.Slots
			i += skip - 1
			continue
		}
		s.cursor = (s.cursor + 1) % ring.Slots
		sl := &c.slots[idx&chunkMask]
		if sl.nttl.Load() == 0 {
			continue
		}
		sequenced := s.expireHook.Load() != nil
		if sequenced && !sl.wmu.TryLock() {
			continue // a writer is on this slot; the next round gets it
		}
		sl.mu.Lock()
		for more() {
			sampled, hit := 0, 0
			for k := range sl.ttl {
				if sampled == expireSample || budget == 0 {
					break
				}
				sampled++
				if budget > 0 {
					budget--
				}
				e := sl.keys[k]
				if e.expired(now) {
					s.remove(sl, len(k), e)
					s.notifyExpired(sl, unsafe.Slice(unsafe.StringData(k), len(k)))
					hit++
				}
			}
			deleted += hit
			if sampled == 0 || hit*4 <= sampled {
				break
			}
		}
		sl.mu.Unlock()
		if sequenced {
			sl.wmu.Unlock()
		}
	}
	s.expired.Add(int64(deleted))
	return deleted, i == ring.Slots
}

// ttlWatch lets active expiry sleep while no key has an expiry instead of
// waking on a timer to find nothing: the sleeper announces itself, checks
// once more, and the first writer to give a key an expiry after that
// wakes it. The announcement and the count are both atomic, so either the
// sleeper's check sees the new key or the writer sees the sleeper.
type ttlWatch struct {
	waiting atomic.Bool
	ch      chan struct{} // 1-buffered
}

// added is called after a key gained an expiry.
func (w *ttlWatch) added() {
	if w.waiting.Load() && w.waiting.CompareAndSwap(true, false) {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

// WaitTTL returns a channel that receives once some key has an expiry,
// at once if one has one already. The caller waits on it (or on its own
// shutdown) and calls WaitTTL again for the next wait.
func (s *Store) WaitTTL() <-chan struct{} {
	w := &s.ttlWatch
	select {
	case <-w.ch: // a stale wakeup from an earlier wait
	default:
	}
	w.waiting.Store(true)
	if s.LenWithTTL() > 0 && w.waiting.CompareAndSwap(true, false) {
		w.ch <- struct{}{}
	}
	return w.ch
}
