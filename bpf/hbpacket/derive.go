package hbpacket

import (
	"crypto/hmac"
	"crypto/sha256"
)

// keyLabel domain-separates the heartbeat key from the bus's HMAC use of
// the same cluster secret.
const keyLabel = "hearsay heartbeat key v1"

// DeriveKey turns the cluster secret (the contents of
// --cluster-secret-file) into the 16-byte SipHash heartbeat key: the first
// 16 bytes of HMAC-SHA256(secret, "hearsay heartbeat key v1"). Every node
// with the same secret derives the same key. An empty secret means no
// authentication and yields nil.
func DeriveKey(secret []byte) *Key {
	if len(secret) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(keyLabel))
	var k Key
	copy(k[:], m.Sum(nil))
	return &k
}
