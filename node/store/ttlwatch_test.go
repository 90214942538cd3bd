package store

import (
	"sync"
	"testing"
)

func ready(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Active expiry sleeps on WaitTTL while no key has an expiry; it must be
// woken by the first key that gets one, and by nothing else.
func TestWaitTTLWakesOnFirstExpiry(t *testing.T) {
	s := New()
	ch := s.WaitTTL()
	set(s, "plain", "v", SetOptions{}, 1000)
	if ready(ch) {
		t.Fatal("a key without an expiry woke the wait")
	}
	set(s, "ttl", "v", SetOptions{ExpireAt: 5000}, 1000)
	if !ready(ch) {
		t.Fatal("a key given an expiry did not wake the wait")
	}
	// With a TTL key present, a new wait returns at once.
	if !ready(s.WaitTTL()) {
		t.Fatal("WaitTTL with a TTL key already present did not fire")
	}
	// Once the key is gone the wait sleeps again.
	s.Del(slotOf("ttl"), []byte("ttl"), 1000)
	if ready(s.WaitTTL()) {
		t.Fatal("WaitTTL fired with no key holding an expiry")
	}
}

// A full sync installs keys wholesale; keys with an expiry among them
// must wake the wait too.
func TestWaitTTLWakesOnReplaceAll(t *testing.T) {
	s, src := New(), New()
	set(src, "ttl", "v", SetOptions{ExpireAt: 5000}, 1000)
	ch := s.WaitTTL()
	s.ReplaceAll(src)
	if !ready(ch) {
		t.Fatal("ReplaceAll with a TTL key did not wake the wait")
	}
}

// Concurrent writers and a sleeper re-arming its wait: whenever a TTL key
// exists after a wait was armed, the wait fires (run with -race).
func TestWaitTTLNoLostWakeup(t *testing.T) {
	for round := 0; round < 200; round++ {
		s := New()
		ch := s.WaitTTL()
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				set(s, "k"+string(rune('a'+w)), "v", SetOptions{ExpireAt: 5000}, 1000)
			}(w)
		}
		wg.Wait()
		if !ready(ch) {
			t.Fatalf("round %d: %d TTL keys set and the wait never fired", round, s.LenWithTTL())
		}
	}
}
