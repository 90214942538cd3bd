package store

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"unsafe"

	"github.com/hearsay/hearsay/ring"
)

// keyIn returns a key of slot, hash-tagged so that tag picks among them.
func keyIn(t testing.TB, slot uint16, tag string) string {
	t.Helper()
	for i := 0; ; i++ {
		k := "{" + strconv.Itoa(i) + "}" + tag
		if ring.KeySlot([]byte(k)) == slot {
			return k
		}
		if i > 1<<24 {
			t.Fatalf("no key found for slot %d", slot)
		}
	}
}

// TestReadsAllocateNoChunk: every read, every miss of a write that finds
// nothing to change, and every whole-keyspace walk leave an empty store
// without a single chunk, and a new store is small.
func TestReadsAllocateNoChunk(t *testing.T) {
	if size := unsafe.Sizeof(Store{}); size > 4<<10 {
		t.Fatalf("Store is %d bytes", size)
	}
	s := New()
	for i := range ring.Slots {
		slot, k := uint16(i), b("k")
		s.Get(slot, k, 1)
		s.Lookup(slot, k, 1)
		s.Exists(slot, k, 1)
		if s.TTL(slot, k, 1) != -2 || s.CountKeysInSlot(slot) != 0 || s.Version(slot) != 0 {
			t.Fatalf("slot %d not empty", slot)
		}
		if len(s.GetKeysInSlot(slot, 10)) != 0 || s.DeleteSlot(slot) != 0 {
			t.Fatalf("slot %d has keys", slot)
		}
		for range s.DumpSlot(slot, 1) {
			t.Fatalf("slot %d dumped a key", slot)
		}
		if s.Del(slot, k, 1) || s.Expire(slot, k, 5, ExpireAlways, 1) || s.Persist(slot, k, 1) {
			t.Fatalf("slot %d changed a missing key", slot)
		}
		s.WaitWrites(slot)
	}
	if s.Len() != 0 || s.LenWithTTL() != 0 || len(s.Keys(nil, 1)) != 0 {
		t.Fatal("empty store counts keys")
	}
	if c, keys := s.Scan(0, 100, nil, 1); c != 0 || len(keys) != 0 {
		t.Fatalf("scan: cursor %d, %d keys", c, len(keys))
	}
	if s.ExpireCycle(1, 100) != 0 {
		t.Fatal("expire cycle deleted")
	}
	if _, done := s.ExpireUntil(1, func() bool { return false }); !done {
		t.Fatal("expire pass over an empty store did not complete")
	}
	for p := range VolatileTTL + 1 {
		if s.Evict(p, 5, 1, nil) {
			t.Fatalf("%v evicted from an empty store", p)
		}
	}
	s.LockAllWrites()
	s.UnlockAllWrites()
	s.FlushAll()
	s.ReplaceAll(New())
	if n := s.Chunks(); n != 0 {
		t.Fatalf("reads allocated %d chunks", n)
	}
	k := b("k")
	if a := testing.AllocsPerRun(100, func() { s.Get(42, k, 1) }); a != 0 {
		t.Fatalf("Get on an empty store allocates %v times", a)
	}
}

// TestWriteAllocatesItsChunk: a write allocates its slot's chunk only, its
// slots start on a cache line and know their numbers, and a write lock
// allocates too (a writer may lock first and write after).
func TestWriteAllocatesItsChunk(t *testing.T) {
	s := New()
	set(s, keyIn(t, 1000, "a"), "v", SetOptions{}, 1)
	set(s, keyIn(t, 1001, "a"), "v", SetOptions{}, 1)
	if n := s.Chunks(); n != 1 {
		t.Fatalf("two writes in one chunk allocated %d chunks", n)
	}
	s.LockWrites(5 * chunkSlots)
	s.UnlockWrites(5 * chunkSlots)
	if n := s.Chunks(); n != 2 {
		t.Fatalf("after a write lock in another chunk: %d chunks", n)
	}
	for i := range s.chunks {
		c := s.chunks[i].Load()
		if c == nil {
			continue
		}
		if p := uintptr(unsafe.Pointer(&c.slots[0])); p%64 != 0 {
			t.Fatalf("chunk %d's slots start at %#x, not on a cache line", i, p)
		}
		for j := range c.slots {
			if int(c.slots[j].idx) != i*chunkSlots+j {
				t.Fatalf("slot %d of chunk %d says it is %d", j, i, c.slots[j].idx)
			}
		}
	}
}

// TestSparseWalks: keys in the first and last slots of chunks, with
// unallocated chunks between them, are found by every walk over the
// keyspace, including an expiry pass that starts mid-chunk and wraps.
func TestSparseWalks(t *testing.T) {
	s := New()
	slots := []uint16{0, chunkSlots - 1, chunkSlots, 5 * chunkSlots, ring.Slots - chunkSlots - 1, ring.Slots - 1}
	for _, sl := range slots {
		set(s, keyIn(t, sl, "p"), "v", SetOptions{}, 1)
		set(s, keyIn(t, sl, "t"), "v", SetOptions{ExpireAt: 10}, 1)
	}
	want := 2 * len(slots)
	if s.Len() != want || s.LenWithTTL() != len(slots) || len(s.Keys(nil, 1)) != want {
		t.Fatalf("len %d, ttl %d, keys %d; want %d keys", s.Len(), s.LenWithTTL(), len(s.Keys(nil, 1)), want)
	}
	seen := 0
	for cursor := uint64(0); ; {
		var keys [][]byte
		cursor, keys = s.Scan(cursor, 1, nil, 1)
		seen += len(keys)
		if cursor == 0 {
			break
		}
	}
	if seen != want {
		t.Fatalf("scan saw %d keys, want %d", seen, want)
	}
	// Start the expiry cursor in the middle of an unallocated chunk.
	s.cursor = 3*chunkSlots + 17
	deleted := 0
	for range 100 {
		deleted += s.ExpireCycle(20, 1)
	}
	if deleted != len(slots) || s.LenWithTTL() != 0 || s.Len() != len(slots) {
		t.Fatalf("expiry deleted %d, %d keys left (%d with a TTL)", deleted, s.Len(), s.LenWithTTL())
	}
	for s.Evict(AllKeysLRU, 1, 20, nil) {
	}
	if s.Len() != 0 || s.EvictedCount() != int64(len(slots)) || s.UsedMemory() != 0 {
		t.Fatalf("after evicting: %d keys, %d evicted, %d bytes", s.Len(), s.EvictedCount(), s.UsedMemory())
	}
}

// TestReplaceAllAcrossChunks: replacing a store's keys with those of one
// whose chunks are elsewhere drops the old keys and adopts the new ones,
// with their accounting.
func TestReplaceAllAcrossChunks(t *testing.T) {
	s, src := New(), New()
	set(s, keyIn(t, 10, "old"), "v", SetOptions{}, 1)
	set(s, keyIn(t, 9000, "old"), "v", SetOptions{}, 1)
	kept := keyIn(t, 9001, "new")
	set(src, kept, "value", SetOptions{ExpireAt: 100}, 1)
	set(src, keyIn(t, 16000, "new"), "v", SetOptions{}, 1)
	want := src.UsedMemory()
	s.ReplaceAll(src)
	if s.Len() != 2 || s.LenWithTTL() != 1 || s.UsedMemory() != want {
		t.Fatalf("after ReplaceAll: %d keys, %d with a TTL, %d bytes (want 2, 1, %d)", s.Len(), s.LenWithTTL(), s.UsedMemory(), want)
	}
	if v, ok := get(s, kept, 1); !ok || v != "value" {
		t.Fatalf("replaced key: %q %v", v, ok)
	}
	if s.Chunks() != 3 {
		t.Fatalf("%d chunks, want 3 (one emptied, two written)", s.Chunks())
	}
}

// TestChunkRace (run with -race): writers allocating the same chunks at
// once all land in the one chunk that wins, readers and whole-keyspace
// walks run beside them, and LockAllWrites excludes writers of chunks it
// did not see.
func TestChunkRace(t *testing.T) {
	s := New()
	const writers, perWriter = 8, numChunks
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var walkers sync.WaitGroup
	loop := func(f func()) {
		walkers.Add(1)
		go func() {
			defer walkers.Done()
			for {
				select {
				case <-stop:
					return
				default:
					f()
				}
			}
		}()
	}
	loop(func() {
		s.Len()
		s.Scan(0, 50, nil, 1)
		s.ExpireCycle(1, 50)
		s.Get(uint16(len(s.Keys(nil, 1))%ring.Slots), b("x"), 1)
	})
	loop(func() {
		s.LockAllWrites()
		s.FlushAll()
		s.UnlockAllWrites()
	})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				// Writer w's i-th slot: the chunks fill in the same order
				// in every writer, so they race to allocate each.
				slot := uint16(i*chunkSlots + w)
				s.LockWrites(slot)
				k := fmt.Appendf(nil, "k%d", i)
				s.Set(slot, k, b("v"), SetOptions{}, 1)
				s.UnlockWrites(slot)
			}
		}()
	}
	wg.Wait()
	close(stop)
	walkers.Wait()
	if n := s.Chunks(); n != perWriter {
		t.Fatalf("%d chunks, want %d", n, perWriter)
	}
	// The flusher may have deleted any of them; each write that survived
	// is readable where it was written.
	for w := range writers {
		for i := range perWriter {
			slot := uint16(i*chunkSlots + w)
			if n := s.CountKeysInSlot(slot); n > 1 {
				t.Fatalf("slot %d has %d keys", slot, n)
			}
			if _, ok := s.Get(slot, fmt.Appendf(nil, "k%d", i), 1); ok != (s.CountKeysInSlot(slot) == 1) {
				t.Fatalf("slot %d: key present %v, count %d", slot, ok, s.CountKeysInSlot(slot))
			}
		}
	}
	// Writes after a last flush all survive.
	for w := range writers {
		for i := range perWriter {
			slot := uint16(i*chunkSlots + w)
			s.Set(slot, fmt.Appendf(nil, "k%d", i), b("v"), SetOptions{}, 1)
		}
	}
	if s.Len() != writers*perWriter {
		t.Fatalf("%d keys, want %d", s.Len(), writers*perWriter)
	}
}
