package store

import (
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestUsedMemoryAccounting: UsedMemory follows writes, overwrites, APPEND,
// expiry changes and deletions, and returns to zero when the keyspace is
// emptied by any route (DEL, expiry, slot drop, flush, replace).
func TestUsedMemoryAccounting(t *testing.T) {
	s := New()
	if s.UsedMemory() != 0 {
		t.Fatal("new store uses memory")
	}
	set(s, "a", "xxxxxxxxxx", SetOptions{}, 1000)
	one := s.UsedMemory()
	if one < 11 {
		t.Fatalf("one key: %d bytes", one)
	}
	set(s, "a", string(make([]byte, 1000)), SetOptions{}, 1000)
	if big := s.UsedMemory(); big < one+990 {
		t.Fatalf("overwrite with 1000 bytes: %d, was %d", big, one)
	}
	for range 100 {
		s.Append(slotOf("a"), b("a"), b("yyyyyyyyyy"), 1000)
	}
	s.Expire(slotOf("a"), b("a"), 5000, ExpireAlways, 1000)
	s.IncrBy(slotOf("n"), b("n"), 5, 1000)
	s.Del(slotOf("a"), b("a"), 1000)
	s.Del(slotOf("n"), b("n"), 1000)
	if got := s.UsedMemory(); got != 0 {
		t.Fatalf("after deleting every key: %d bytes", got)
	}
	for i := range 1000 {
		set(s, "k"+strconv.Itoa(i), "v", SetOptions{ExpireAt: 1500}, 1000)
	}
	s.ExpireUntil(2000, func() bool { return false })
	if got := s.UsedMemory(); got != 0 || s.Len() != 0 {
		t.Fatalf("after expiry: %d bytes, %d keys", got, s.Len())
	}
	set(s, "x", "1", SetOptions{}, 1000)
	s.DeleteSlot(slotOf("x"))
	set(s, "y", "1", SetOptions{}, 1000)
	s.FlushAll()
	if got := s.UsedMemory(); got != 0 {
		t.Fatalf("after DeleteSlot and FlushAll: %d bytes", got)
	}
	src := New()
	set(src, "z", "123", SetOptions{}, 1000)
	want := src.UsedMemory()
	set(s, "w", "1234567", SetOptions{}, 1000)
	s.ReplaceAll(src)
	if got := s.UsedMemory(); got != want {
		t.Fatalf("after ReplaceAll: %d bytes, want %d", got, want)
	}
}

// TestEvictLRU: with keys written at increasing times and half of them
// read again later, allkeys-lru evicts from the old, unread half: the pool
// keeps the idlest candidates of several 5-key samples.
func TestEvictLRU(t *testing.T) {
	s := New()
	const n = 2000
	for i := range n {
		set(s, "k"+strconv.Itoa(i), "v", SetOptions{}, int64(i)*100)
	}
	now := int64(n) * 100
	for i := range n / 2 {
		get(s, "k"+strconv.Itoa(i), now) // the oldest half, read now
	}
	now += 100
	evictedRecent := 0
	for range n / 4 {
		before := s.Len()
		if !s.Evict(AllKeysLRU, DefaultSamples, now, nil) || s.Len() != before-1 {
			t.Fatal("Evict deleted nothing")
		}
	}
	for i := range n / 2 {
		if _, ok := get(s, "k"+strconv.Itoa(i), now); !ok {
			evictedRecent++
		}
	}
	// A quarter of the keys went; with an ideal LRU none of them is from
	// the recently read half. Sampling is approximate: allow a few.
	if evictedRecent > n/40 {
		t.Fatalf("%d of the %d evicted keys were recently read", evictedRecent, n/4)
	}
	if s.EvictedCount() != n/4 {
		t.Fatalf("EvictedCount = %d, want %d", s.EvictedCount(), n/4)
	}
}

// TestReadStampsAccess: a read (under the read lock) refreshes the stamp,
// so the key read most recently is not the one evicted.
func TestReadStampsAccess(t *testing.T) {
	s := New()
	set(s, "old", "1", SetOptions{}, 1000)
	set(s, "new", "1", SetOptions{}, 50000)
	get(s, "old", 90000)
	if !s.Evict(AllKeysLRU, 100, 90000, nil) {
		t.Fatal("nothing evicted")
	}
	if _, ok := get(s, "old", 90000); !ok {
		t.Fatal("the key read last was evicted")
	}
	if _, ok := get(s, "new", 90000); ok {
		t.Fatal("the idle key survived")
	}
	// Concurrent readers and an evictor: the race detector checks that
	// stamps are only touched atomically.
	for i := range 100 {
		set(s, "c"+strconv.Itoa(i), "v", SetOptions{}, 1000)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				get(s, "c"+strconv.Itoa(i%100), int64(1000+g*1000+i*100))
			}
		}()
	}
	for range 50 {
		s.Evict(AllKeysLRU, DefaultSamples, 500000, nil)
	}
	wg.Wait()
}

// TestEvictVolatileTTL: volatile-ttl evicts the keys with the nearest
// expiry, never a key without one, and reports nothing evictable once only
// persistent keys remain.
func TestEvictVolatileTTL(t *testing.T) {
	s := New()
	for i := range 100 {
		set(s, "p"+strconv.Itoa(i), "v", SetOptions{}, 1000)
		set(s, "t"+strconv.Itoa(i), "v", SetOptions{ExpireAt: int64(1_000_000 + i*1000)}, 1000)
	}
	for range 10 {
		if !s.Evict(VolatileTTL, DefaultSamples, 2000, nil) {
			t.Fatal("nothing evicted")
		}
	}
	gone := 0
	for i := range 100 {
		if _, ok := get(s, "t"+strconv.Itoa(i), 2000); !ok {
			gone++
			// Sampling is approximate: the pool keeps the nearest
			// expiries of 50 sampled keys, not of all 100.
			if i >= 75 {
				t.Errorf("t%d (expiring late) was evicted before nearer ones", i)
			}
		}
	}
	if gone != 10 {
		t.Fatalf("%d TTL keys gone, want 10", gone)
	}
	for s.Evict(VolatileTTL, DefaultSamples, 2000, nil) {
	}
	if s.Len() != 100 || s.LenWithTTL() != 0 {
		t.Fatalf("left %d keys, %d with TTL; want the 100 persistent ones", s.Len(), s.LenWithTTL())
	}
	if s.Evict(VolatileLRU, DefaultSamples, 2000, nil) || s.Evict(VolatileRandom, DefaultSamples, 2000, nil) || s.Evict(NoEviction, 5, 2000, nil) {
		t.Fatal("evicted with nothing evictable")
	}
	if !s.Evict(AllKeysRandom, DefaultSamples, 2000, nil) || s.Len() != 99 {
		t.Fatal("allkeys-random evicted nothing")
	}
}

// TestEvictHook: an eviction is reported to the expire hook, as
// replication must send a DEL for it.
func TestEvictHook(t *testing.T) {
	s := New()
	set(s, "k", "v", SetOptions{}, 1000)
	var got []string
	s.SetExpireHook(func(slot uint16, key []byte) {
		if slot != slotOf(string(key)) {
			t.Errorf("key %q reported in slot %d", key, slot)
		}
		got = append(got, string(key))
	})
	if !s.Evict(AllKeysLRU, DefaultSamples, 2000, nil) || len(got) != 1 || got[0] != "k" {
		t.Fatalf("hook saw %q", got)
	}
}

func TestParsePolicy(t *testing.T) {
	for i, n := range policyNames {
		if p, ok := ParsePolicy(n); !ok || int(p) != i || p.String() != n {
			t.Errorf("ParsePolicy(%q) = %v, %v", n, p, ok)
		}
	}
	if p, ok := ParsePolicy("ALLKEYS-LRU"); !ok || p != AllKeysLRU {
		t.Error("case-insensitive")
	}
	if _, ok := ParsePolicy("allkeys-lfu"); ok {
		t.Error("allkeys-lfu accepted")
	}
}

// FuzzParsePolicy: any name accepted reads back as itself, case aside.
func FuzzParsePolicy(f *testing.F) {
	for _, n := range policyNames {
		f.Add(n)
	}
	f.Add("ALLKEYS-LFU")
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := ParsePolicy(s)
		if ok && !strings.EqualFold(p.String(), s) {
			t.Fatalf("ParsePolicy(%q) = %v", s, p)
		}
	})
}
