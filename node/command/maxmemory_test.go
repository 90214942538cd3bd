package command

import (
	"strconv"
	"strings"
	"testing"

	"github.com/hearsay/hearsay/node/store"
)

const oomReply = "-OOM command not allowed when used memory > 'maxmemory'.\r\n"

// fillUntilOOM SETs prefix0, prefix1... to 100 bytes each until one gets
// the OOM error; it fails the test if that takes more than 100 keys.
func fillUntilOOM(h *harness, prefix string) {
	h.t.Helper()
	for i := 0; ; i++ {
		got := h.do("SET", prefix+strconv.Itoa(i), strings.Repeat("x", 100))
		if got == oomReply {
			return
		}
		if got != ok || i > 100 {
			h.t.Fatalf("SET %s%d = %q", prefix, i, got)
		}
	}
}

// TestMaxmemoryNoeviction: over the limit with noeviction, the writes that
// may grow memory get Redis's exact OOM error while reads, DEL and
// EXPIRE still work; once DEL brought memory under, SET works again.
func TestMaxmemoryNoeviction(t *testing.T) {
	h := newHarness(t, Options{MaxMemory: 2000})
	fillUntilOOM(h, "k")
	run(t, h, []step{
		{"SET more v", oomReply},
		{"APPEND k0 x", oomReply},
		{"INCR n", oomReply},
		{"MSET {a}1 1 {a}2 2", oomReply},
		{"SETNX x 1", oomReply},
		{"GETSET k0 v", oomReply},
		{"GET k0", bulk(strings.Repeat("x", 100))},
		{"EXPIRE k0 100", num(1)},
		{"DEL k0", num(1)},
		{"DEL k1", num(1)},
		{"UNLINK k2", num(1)},
		{"SET more v", ok},
	})
	info := h.do("INFO", "memory")
	for _, want := range []string{"maxmemory:2000\r\n", "maxmemory_human:1.95K\r\n", "maxmemory_policy:noeviction\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO memory lacks %q:\n%s", want, info)
		}
	}
}

// TestMaxmemoryLRU: with allkeys-lru the same writes succeed, used memory
// stays at the limit plus one write, and evicted_keys counts the keys
// that made room; a key read all along survives.
func TestMaxmemoryLRU(t *testing.T) {
	h := newHarness(t, Options{MaxMemory: 20000, MaxMemoryPolicy: store.AllKeysLRU})
	h.do("SET", "hot", "v")
	val := strings.Repeat("x", 100)
	for i := range 2000 {
		h.now += 100
		if got := h.do("SET", "k"+strconv.Itoa(i), val); got != ok {
			t.Fatalf("SET #%d = %q", i, got)
		}
		h.do("GET", "hot")
		if used := h.d.Store().UsedMemory(); used > 20000+300 {
			t.Fatalf("after SET #%d used memory is %d, limit 20000", i, used)
		}
	}
	if got := h.do("GET", "hot"); got != bulk("v") {
		t.Errorf("the key read all along was evicted: %q", got)
	}
	info := h.do("INFO", "stats")
	if !strings.Contains(info, "evicted_keys:") || strings.Contains(info, "evicted_keys:0\r\n") {
		t.Errorf("INFO stats: %s", info)
	}
}

// TestMaxmemoryVolatileTTL: volatile-ttl evicts keys with a TTL and
// answers OOM once only keys without one are left.
func TestMaxmemoryVolatileTTL(t *testing.T) {
	h := newHarness(t, Options{MaxMemory: 3000, MaxMemoryPolicy: store.VolatileTTL})
	for i := range 10 {
		h.do("SET", "t"+strconv.Itoa(i), strings.Repeat("x", 100), "EX", strconv.Itoa(1000+i))
	}
	fillUntilOOM(h, "p")
	if n := h.d.Store().LenWithTTL(); n != 0 {
		t.Fatalf("OOM with %d TTL keys left to evict", n)
	}
}

// TestConfigSetMaxmemory: CONFIG SET takes sizes and policies as
// redis.conf writes them, all or nothing, CONFIG GET and INFO show them,
// and lowering the limit evicts at once.
func TestConfigSetMaxmemory(t *testing.T) {
	h := newHarness(t, Options{})
	for i := range 100 {
		h.do("SET", "k"+strconv.Itoa(i), strings.Repeat("x", 100))
	}
	run(t, h, []step{
		{"CONFIG GET maxmemory-policy", "*2\r\n" + bulk("maxmemory-policy") + bulk("noeviction")},
		{"CONFIG SET maxmemory 1mb", ok},
		{"CONFIG GET maxmemory", "*2\r\n" + bulk("maxmemory") + bulk("1048576")},
		{"CONFIG SET maxmemory-policy allkeys-lfu", "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: noeviction, allkeys-lru, allkeys-random, volatile-lru, volatile-random, volatile-ttl\r\n"},
		{"CONFIG SET maxmemory 5000 maxmemory-policy nope", "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: noeviction, allkeys-lru, allkeys-random, volatile-lru, volatile-random, volatile-ttl\r\n"},
		{"CONFIG GET maxmemory", "*2\r\n" + bulk("maxmemory") + bulk("1048576")},
		{"CONFIG SET maxmemory lots", "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value\r\n"},
		{"CONFIG SET maxmemory-samples 0", "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-samples') - argument must be between 1 and 64 inclusive\r\n"},
		{"CONFIG SET maxmemory", "-ERR wrong number of arguments for 'config|set' command\r\n"},
		{"CONFIG SET MAXMEMORY-POLICY ALLKEYS-LRU maxmemory-samples 10", ok},
		{"CONFIG GET maxmemory-samples", "*2\r\n" + bulk("maxmemory-samples") + bulk("10")},
		{"CONFIG SET maxmemory 5000", ok},
	})
	if used := h.d.Store().UsedMemory(); used > 5000 {
		t.Fatalf("used memory %d after lowering maxmemory to 5000", used)
	}
	info := h.do("INFO", "memory")
	if !strings.Contains(info, "maxmemory_policy:allkeys-lru\r\n") || !strings.Contains(info, "maxmemory:5000\r\n") {
		t.Errorf("INFO memory:\n%s", info)
	}
}

// TestMaxmemoryReplica: a replica's own clients and its master's stream
// are never refused or evicted for memory.
func TestMaxmemoryReplica(t *testing.T) {
	h := newHarness(t, Options{MaxMemory: 1, Role: func() string { return "slave" }})
	if got := h.do("SET", "a", "1"); got != ok {
		t.Fatalf("replica SET = %q", got)
	}
	h2 := newHarness(t, Options{MaxMemory: 1})
	h2.c.Master = true
	if got := h2.do("SET", "a", "1"); got != ok {
		t.Fatalf("SET from the master link = %q", got)
	}
}

// TestDenyOOMFlag: COMMAND INFO reports denyoom where Redis does.
func TestDenyOOMFlag(t *testing.T) {
	for name, want := range map[string]bool{"set": true, "append": true, "incr": true, "mset": true, "restore": true,
		"get": false, "del": false, "expire": false, "getdel": false, "persist": false} {
		if got := defaultTable[name].Flags&FlagDenyOOM != 0; got != want {
			t.Errorf("%s denyoom = %v, want %v", name, got, want)
		}
	}
}

// TestNoEvictionDuringWritePause: while writes are paused for a manual
// failover nothing is evicted (the DELs would move the offset the replica
// must reach); the write is let through to park, and evicts when it runs
// again after the pause.
func TestNoEvictionDuringWritePause(t *testing.T) {
	h := newHarness(t, Options{MaxMemory: 1 << 20, MaxMemoryPolicy: store.AllKeysLRU})
	for i := range 100 {
		h.do("SET", "k"+strconv.Itoa(i), strings.Repeat("x", 1000))
	}
	h.d.maxMemory.Store(1000)
	h.d.PauseWrites()
	if !h.d.freeMemory(h.now) || h.d.Store().EvictedCount() != 0 {
		t.Fatalf("evicted %d keys during a write pause", h.d.Store().EvictedCount())
	}
	h.d.ResumeWrites()
	if !h.d.freeMemory(h.now) || h.d.Store().EvictedCount() == 0 {
		t.Fatal("nothing evicted after the pause")
	}
}
