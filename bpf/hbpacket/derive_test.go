package hbpacket

import (
	"encoding/hex"
	"testing"
)

func TestDeriveKey(t *testing.T) {
	if DeriveKey(nil) != nil || DeriveKey([]byte{}) != nil {
		t.Fatal("an empty secret must mean no key")
	}
	a, b := DeriveKey([]byte("s3cret")), DeriveKey([]byte("s3cret"))
	if a == nil || *a != *b {
		t.Fatal("the same secret must give the same key")
	}
	if c := DeriveKey([]byte("s3cret2")); *c == *a {
		t.Fatal("different secrets gave the same key")
	}
	// Pinned so that nodes built from different versions agree:
	// HMAC-SHA256("s3cret", "hearsay heartbeat key v1")[:16].
	if got, want := hex.EncodeToString(a[:]), derivedS3cret; got != want {
		t.Fatalf("DeriveKey(s3cret) = %s, want %s", got, want)
	}
}

// derivedS3cret was computed independently with Python's hmac module.
const derivedS3cret = "f12412779ef0bf0d8b18068b67342b9a"
