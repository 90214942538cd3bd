package main

import (
	"testing"

	"github.com/hearsay/hearsay/node"
)

func TestParseOutputLimits(t *testing.T) {
	l := node.DefaultOutputLimits
	if err := parseOutputLimits("normal 64mb 16mb 10 slave 0 0 0", &l); err != nil {
		t.Fatal(err)
	}
	if l.Normal != (node.OutputLimit{Hard: 64 << 20, Soft: 16 << 20, SoftSeconds: 10}) || l.Replica != (node.OutputLimit{}) ||
		l.Pubsub != node.DefaultOutputLimits.Pubsub {
		t.Fatalf("parsed %+v", l)
	}
	for _, bad := range []string{"", "normal 1 2", "client 1 2 3", "normal x 0 0", "normal 0 -1 0", "normal 0 0 -1", "normal 0 0 1.5"} {
		if err := parseOutputLimits(bad, &l); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// FuzzParseOutputLimits: any input parses or errors, never panics, and a
// value that parses prints back to the same limits.
func FuzzParseOutputLimits(f *testing.F) {
	f.Add("normal 0 0 0 replica 256mb 64mb 60 pubsub 32mb 8mb 60")
	f.Add("normal 1gb 256mb 60")
	f.Fuzz(func(t *testing.T, s string) {
		var l node.OutputLimits
		if parseOutputLimits(s, &l) != nil {
			return
		}
		for _, c := range []node.OutputLimit{l.Normal, l.Replica, l.Pubsub} {
			if c.Hard < 0 || c.Soft < 0 || c.SoftSeconds < 0 {
				t.Fatalf("%q gave negative limits %+v", s, l)
			}
		}
	})
}
