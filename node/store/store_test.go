package store

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/hearsay/hearsay/ring"
)

func b(s string) []byte { return []byte(s) }

func slotOf(k string) uint16 { return ring.KeySlot([]byte(k)) }

func set(s *Store, k, v string, o SetOptions, now int64) bool {
	_, _, ok := s.Set(slotOf(k), b(k), b(v), o, now)
	return ok
}

func get(s *Store, k string, now int64) (string, bool) {
	v, ok := s.Get(slotOf(k), b(k), now)
	return string(v), ok
}

func TestSetGetOptions(t *testing.T) {
	s := New()
	const now = 1000
	if !set(s, "a", "1", SetOptions{}, now) {
		t.Fatal("set")
	}
	if v, ok := get(s, "a", now); !ok || v != "1" {
		t.Fatalf("get = %q %v", v, ok)
	}
	if set(s, "a", "2", SetOptions{NX: true}, now) {
		t.Fatal("NX on existing key wrote")
	}
	if set(s, "b", "2", SetOptions{XX: true}, now) {
		t.Fatal("XX on missing key wrote")
	}
	old, existed, ok := s.Set(slotOf("a"), b("a"), b("3"), SetOptions{XX: true, ExpireAt: now + 100}, now)
	if !ok || !existed || string(old) != "1" {
		t.Fatalf("XX set: %q %v %v", old, existed, ok)
	}
	if ttl := s.TTL(slotOf("a"), b("a"), now); ttl != 100 {
		t.Fatalf("ttl = %d", ttl)
	}
	set(s, "a", "4", SetOptions{KeepTTL: true}, now)
	if ttl := s.TTL(slotOf("a"), b("a"), now); ttl != 100 {
		t.Fatalf("KEEPTTL lost ttl: %d", ttl)
	}
	set(s, "a", "5", SetOptions{}, now)
	if ttl := s.TTL(slotOf("a"), b("a"), now); ttl != -1 {
		t.Fatalf("plain SET kept ttl: %d", ttl)
	}
	if s.LenWithTTL() != 0 {
		t.Fatalf("ttl index = %d", s.LenWithTTL())
	}
	// An expiry already in the past deletes.
	if !set(s, "a", "6", SetOptions{ExpireAt: now - 1}, now) {
		t.Fatal("past expiry not reported written")
	}
	if _, ok := get(s, "a", now); ok || s.Len() != 0 {
		t.Fatal("past expiry kept the key")
	}
	if s.TTL(slotOf("zz"), b("zz"), now) != -2 {
		t.Fatal("missing key ttl")
	}
}

func TestLazyAndActiveExpiry(t *testing.T) {
	s := New()
	for i := range 1000 {
		k := "k" + strconv.Itoa(i)
		exp := int64(0)
		if i%2 == 0 {
			exp = 2000
		}
		set(s, k, "v", SetOptions{ExpireAt: exp}, 1000)
	}
	if s.Len() != 1000 || s.LenWithTTL() != 500 {
		t.Fatalf("len %d ttl %d", s.Len(), s.LenWithTTL())
	}
	if _, ok := get(s, "k0", 2000); !ok {
		t.Fatal("expired at exactly its expiry time")
	}
	if _, ok := get(s, "k0", 2001); ok {
		t.Fatal("lazy expiry failed")
	}
	if s.Len() != 999 {
		t.Fatalf("len after lazy expiry %d", s.Len())
	}
	total := 0
	for range 1000 {
		total += s.ExpireCycle(2001, 200)
		if s.LenWithTTL() == 0 {
			break
		}
	}
	if total != 499 || s.Len() != 500 || s.LenWithTTL() != 0 || s.ExpiredCount() != 500 {
		t.Fatalf("active expiry: deleted %d, len %d, ttl %d, expired %d", total, s.Len(), s.LenWithTTL(), s.ExpiredCount())
	}
	if n := s.ExpireCycle(3000, 100); n != 0 {
		t.Fatalf("persistent keys expired: %d", n)
	}
}

func TestExpirePersistConditions(t *testing.T) {
	s := New()
	k := b("k")
	sl := slotOf("k")
	set(s, "k", "v", SetOptions{}, 0)
	if s.Expire(sl, k, 500, ExpireXX, 0) || s.Expire(sl, k, 500, ExpireGT, 0) {
		t.Fatal("XX/GT applied to a persistent key")
	}
	if !s.Expire(sl, k, 500, ExpireLT, 0) || s.TTL(sl, k, 0) != 500 {
		t.Fatal("LT on persistent key")
	}
	if s.Expire(sl, k, 400, ExpireNX, 0) || s.Expire(sl, k, 400, ExpireGT, 0) {
		t.Fatal("NX/GT wrongly applied")
	}
	if !s.Expire(sl, k, 600, ExpireGT, 0) || s.TTL(sl, k, 0) != 600 {
		t.Fatal("GT")
	}
	if !s.Persist(sl, k, 0) || s.Persist(sl, k, 0) || s.TTL(sl, k, 0) != -1 {
		t.Fatal("persist")
	}
	if !s.Expire(sl, k, 0, ExpireAlways, 10) || s.Exists(sl, k, 10) {
		t.Fatal("past expire must delete")
	}
	if s.Expire(sl, b("missing"), 100, ExpireAlways, 0) {
		t.Fatal("expire on missing key")
	}
}

func TestIncrAppend(t *testing.T) {
	s := New()
	sl := slotOf("n")
	n := b("n")
	if v, err := s.IncrBy(sl, n, 5, 0); err != nil || v != 5 {
		t.Fatal(v, err)
	}
	if v, err := s.IncrBy(sl, n, -10, 0); err != nil || v != -5 {
		t.Fatal(v, err)
	}
	set(s, "n", "9223372036854775806", SetOptions{ExpireAt: 100}, 0)
	if _, err := s.IncrBy(sl, n, 2, 0); err != ErrOverflow {
		t.Fatal(err)
	}
	if v, err := s.IncrBy(sl, n, 1, 0); err != nil || v != 1<<63-1 || s.TTL(sl, n, 0) != 100 {
		t.Fatal("incr must keep ttl", v, err)
	}
	for _, bad := range []string{"abc", " 1", "01", "1.5", ""} {
		set(s, "n", bad, SetOptions{}, 0)
		if _, err := s.IncrBy(sl, n, 1, 0); err != ErrNotInteger {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	set(s, "n", "-9223372036854775808", SetOptions{}, 0)
	if _, err := s.IncrBy(sl, n, -1, 0); err != ErrOverflow {
		t.Fatal(err)
	}

	a := b("a")
	as := slotOf("a")
	if s.Append(as, a, b("he"), 0) != 2 {
		t.Fatal("append new")
	}
	v1, _ := s.Get(as, a, 0)
	s.Append(as, a, b("llo"), 0)
	v2, _ := s.Get(as, a, 0)
	s.Append(as, a, b(" world"), 0)
	v3, _ := s.Get(as, a, 0)
	if string(v1) != "he" || string(v2) != "hello" || string(v3) != "hello world" {
		t.Fatalf("append views %q %q %q", v1, v2, v3)
	}
	if cap(v2) != len(v2) {
		t.Fatal("returned value not capped")
	}
}

func TestSlotsDumpLoadScan(t *testing.T) {
	s := New()
	const n = 5000
	for i := range n {
		set(s, "key:"+strconv.Itoa(i), "v"+strconv.Itoa(i), SetOptions{}, 0)
	}
	// Hash-tagged keys pile into one slot.
	for i := range 300 {
		set(s, "{tag}"+strconv.Itoa(i), "t", SetOptions{}, 0)
	}
	tag := slotOf("{tag}")
	if got := s.CountKeysInSlot(tag); got < 300 {
		t.Fatalf("count %d", got)
	}
	if len(s.GetKeysInSlot(tag, 10)) != 10 {
		t.Fatal("getkeysinslot")
	}

	// A full scan with concurrent churn returns every stable key once.
	seen := map[string]int{}
	cursor, calls := uint64(0), 0
	for {
		var keys [][]byte
		cursor, keys = s.Scan(cursor, 37, nil, 0)
		for _, k := range keys {
			seen[string(k)]++
		}
		calls++
		set(s, "churn:"+strconv.Itoa(calls), "x", SetOptions{}, 0)
		s.Del(slotOf("churn:"+strconv.Itoa(calls-1)), b("churn:"+strconv.Itoa(calls-1)), 0)
		if cursor == 0 {
			break
		}
	}
	for i := range n {
		if c := seen["key:"+strconv.Itoa(i)]; c != 1 {
			t.Fatalf("key:%d seen %d times", i, c)
		}
	}
	for i := range 300 {
		if c := seen["{tag}"+strconv.Itoa(i)]; c != 1 {
			t.Fatalf("{tag}%d seen %d times", i, c)
		}
	}
	if calls < (n+300)/37 {
		t.Fatalf("scan finished in %d calls", calls)
	}

	_, keys := s.Scan(0, 1<<30, func(k []byte) bool { return Match(b("key:1?"), k, false) }, 0)
	if len(keys) != 10 {
		t.Fatalf("match: %d", len(keys))
	}

	// Move the tag slot to another store.
	dst := New()
	if got := dst.LoadSlot(tag, s.DumpSlot(tag, 0), 0); got != s.CountKeysInSlot(tag) {
		t.Fatalf("loaded %d", got)
	}
	if s.DeleteSlot(tag) != dst.CountKeysInSlot(tag) || s.CountKeysInSlot(tag) != 0 {
		t.Fatal("delete slot")
	}
	if v, ok := dst.Get(tag, b("{tag}7"), 0); !ok || string(v) != "t" {
		t.Fatal("moved key")
	}
	s.FlushAll()
	if s.Len() != 0 {
		t.Fatal("flushall")
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"a*", "bac", false},
		{"h?llo", "hello", true}, {"h?llo", "hllo", false}, {"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false}, {"h[^e]llo", "hallo", true}, {"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true}, {"h[b-a]llo", "hallo", true}, {"h[a-b]llo", "hcllo", false},
		{`h\*llo`, "h*llo", true}, {`h\*llo`, "hello", false}, {"*a*b*c*", "xxaxxbxxcxx", true},
		{"*a*b*c*", "xxaxxcxxbxx", false}, {"a*b", "ab", true}, {"a*b", "aXbXb", true}, {"a*b", "aXbX", false},
		{"[abc", "b", true}, {`[\]]`, "]", true}, {"", "", true}, {"", "a", false}, {`ab\`, `ab\`, true},
		{"cluster-*", "cluster-enabled", true}, {"*max*", "maxmemory", true},
	}
	for _, tt := range tests {
		if got := Match(b(tt.p), b(tt.s), false); got != tt.want {
			t.Errorf("Match(%q, %q) = %v", tt.p, tt.s, got)
		}
	}
	if !Match(b("MAX*"), b("maxmemory"), true) || Match(b("MAX*"), b("maxmemory"), false) {
		t.Error("nocase")
	}
}

func TestConcurrent(t *testing.T) {
	s := New()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := b(fmt.Sprintf("k%d", i%100))
				sl := ring.KeySlot(k)
				switch (i + g) % 6 {
				case 0:
					s.Set(sl, k, b("v"), SetOptions{ExpireAt: int64(i + 10)}, int64(i))
				case 1:
					s.Get(sl, k, int64(i))
				case 2:
					s.Append(sl, k, b("xy"), int64(i))
				case 3:
					s.Del(sl, k, int64(i))
				case 4:
					s.ExpireCycle(int64(i), 50)
				case 5:
					s.Scan(0, 10, nil, int64(i))
				}
			}
		}()
	}
	wg.Wait()
}

var sink []byte

// BenchmarkMemoryPerKey reports the heap bytes each key costs, with 16-byte
// keys and 32-byte values (1e6 keys per iteration; run with -benchtime=1x).
func BenchmarkMemoryPerKey(bb *testing.B) {
	const n = 1_000_000
	val := make([]byte, 32)
	var perKey, accounted float64
	for bb.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := New()
		var key [16]byte
		for i := range n {
			k := strconv.AppendInt(append(key[:0], "key:"...), int64(100000000000+i), 10)
			s.Set(ring.KeySlot(k), k, val, SetOptions{}, 0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perKey = float64(after.HeapAlloc-before.HeapAlloc) / n
		accounted = float64(s.UsedMemory()) / n
		runtime.KeepAlive(s)
	}
	bb.ReportMetric(perKey, "bytes/key")
	// What maxmemory counts for the same keys (UsedMemory), to keep its
	// per-key estimate honest against the heap.
	bb.ReportMetric(accounted, "accounted-bytes/key")
}

func benchKeys(n int) ([][]byte, []uint16) {
	keys := make([][]byte, n)
	slots := make([]uint16, n)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key:%012d", i))
		slots[i] = ring.KeySlot(keys[i])
	}
	return keys, slots
}

func BenchmarkGet(bb *testing.B) {
	s := New()
	keys, slots := benchKeys(100_000)
	val := make([]byte, 32)
	for i := range keys {
		s.Set(slots[i], keys[i], val, SetOptions{}, 0)
	}
	bb.ReportAllocs()
	i := 0
	for bb.Loop() {
		j := i % len(keys)
		sink, _ = s.Get(slots[j], keys[j], 0)
		i++
	}
	bb.ReportMetric(float64(bb.N)/bb.Elapsed().Seconds(), "keys/s")
}

func BenchmarkSetOverwrite(bb *testing.B) {
	s := New()
	keys, slots := benchKeys(100_000)
	val := make([]byte, 32)
	bb.ReportAllocs()
	i := 0
	for bb.Loop() {
		j := i % len(keys)
		s.Set(slots[j], keys[j], val, SetOptions{}, 0)
		i++
	}
	bb.ReportMetric(float64(bb.N)/bb.Elapsed().Seconds(), "keys/s")
}

func BenchmarkGetParallel(bb *testing.B) {
	s := New()
	keys, slots := benchKeys(100_000)
	val := make([]byte, 32)
	for i := range keys {
		s.Set(slots[i], keys[i], val, SetOptions{}, 0)
	}
	bb.ReportAllocs()
	bb.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			j := i % len(keys)
			s.Get(slots[j], keys[j], 0)
			i += 7
		}
	})
	bb.ReportMetric(float64(bb.N)/bb.Elapsed().Seconds(), "keys/s")
}

// BenchmarkSetHotKeyParallel is redis-benchmark's SET: every writer (event
// loop) overwrites the same key, so they share one slot lock.
func BenchmarkSetHotKeyParallel(bb *testing.B) {
	s := New()
	key := []byte("key:__rand_int__")
	slot := ring.KeySlot(key)
	val := []byte("xxx")
	bb.ReportAllocs()
	bb.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Set(slot, key, val, SetOptions{}, 0)
		}
	})
	bb.ReportMetric(float64(bb.N)/bb.Elapsed().Seconds(), "keys/s")
}
