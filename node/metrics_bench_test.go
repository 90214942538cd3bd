package node

import (
	"testing"

	"github.com/hearsay/hearsay/node/command"
)

// BenchmarkObserve is the per-command metrics cost of a pipelined GET
// (durations sampled away): by Command.ID, and through the map fallback
// (what every command paid before Command.ID).
func BenchmarkObserve(b *testing.B) {
	get := command.New(nil, command.Options{}).Lookup([]byte("get"))
	for _, bc := range []struct {
		name  string
		byMap bool
	}{{"id", false}, {"map", true}} {
		b.Run(bc.name, func(b *testing.B) {
			m := newMetrics(&Node{})
			if bc.byMap {
				m.cmdByID = nil
			}
			b.ReportAllocs()
			for b.Loop() {
				m.observe(get, 1, -1)
			}
		})
	}
}
