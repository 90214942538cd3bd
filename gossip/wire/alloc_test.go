//go:build !race

package wire

import "testing"

// TestSteadyStateAllocs checks that encoding into a buffer with capacity and
// decoding into a reused Message allocate nothing, with and without HMAC,
// and that refusing a bad frame does not allocate either.
func TestSteadyStateAllocs(t *testing.T) {
	for _, secret := range [][]byte{nil, []byte("k")} {
		enc, dec := NewEncoder(secret), NewDecoder(secret)
		buf := make([]byte, 0, MaxFrame)
		var m Message
		for _, s := range samples() {
			frame, err := enc.AppendFrame(buf[:0], &s.m)
			if err != nil {
				t.Fatal(err)
			}
			if err := dec.Decode(frame, &m); err != nil { // grow m once
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(50, func() {
				frame, _ = enc.AppendFrame(buf[:0], &s.m)
				if err := dec.Decode(frame, &m); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s (secret %v): %v allocs per encode+decode", s.name, secret != nil, allocs)
			}
			bad := append([]byte(nil), frame...)
			bad[len(bad)-1] ^= 1
			if a := testing.AllocsPerRun(20, func() { _ = dec.Decode(bad, &m) }); a != 0 {
				t.Errorf("%s: %v allocs refusing a bad frame", s.name, a)
			}
		}
	}
}
