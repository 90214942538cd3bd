package repl

import (
	"strconv"
	"strings"
	"testing"
)

// TestEvictionPropagatesAsDel: keys a master evicts for maxmemory reach
// its replica as DELs (as expired keys do), so the replica, which never
// evicts on its own, keeps the master's keyspace.
func TestEvictionPropagatesAsDel(t *testing.T) {
	master := newTestNode(t, Config{})
	replica := newTestNode(t, Config{})
	replica.m.SetRole(true, master.addr)
	val := strings.Repeat("v", 200)
	for i := range 500 {
		master.exec("SET", "k"+strconv.Itoa(i), val)
	}
	waitCaughtUp(t, master, replica)
	if got := master.exec("CONFIG", "SET", "maxmemory", "20000", "maxmemory-policy", "allkeys-lru"); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET: %q", got)
	}
	for i := range 500 {
		if got := master.exec("SET", "n"+strconv.Itoa(i), val); got != "+OK\r\n" {
			t.Fatalf("SET n%d: %q", i, got)
		}
	}
	if master.st.EvictedCount() < 900 {
		t.Fatalf("master evicted %d keys, want most of the 1000", master.st.EvictedCount())
	}
	waitCaughtUp(t, master, replica)
	sameKeyspace(t, master, replica)
	if replica.st.EvictedCount() != 0 {
		t.Fatalf("the replica evicted %d keys itself", replica.st.EvictedCount())
	}
}
