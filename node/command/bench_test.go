package command

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/node/store"
)

func benchServe(b *testing.B, in []byte, cmds int) { benchServeOpts(b, in, cmds, Options{}) }

func benchServeOpts(b *testing.B, in []byte, cmds int, o Options) {
	d := New(store.New(), o)
	c := d.NewConn()
	// Preload the keys the GET benchmarks read.
	pre := resp.AppendCommand(nil, []byte("SET"), []byte("key:000000012345"), []byte(strings.Repeat("v", 32)))
	d.Serve(c, pre, nil)
	out := make([]byte, 0, 64<<10)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		n, o, _ := d.Serve(c, in, out[:0])
		if n != len(in) {
			b.Fatalf("consumed %d of %d", n, len(in))
		}
		out = o
	}
	b.ReportMetric(float64(b.N)*float64(cmds)/b.Elapsed().Seconds(), "cmds/s")
}

func BenchmarkServeGet(b *testing.B) {
	benchServe(b, resp.AppendCommand(nil, []byte("GET"), []byte("key:000000012345")), 1)
}

func BenchmarkServeSet(b *testing.B) {
	benchServe(b, resp.AppendCommand(nil, []byte("SET"), []byte("key:000000012345"), []byte(strings.Repeat("v", 32))), 1)
}

// BenchmarkServePipeline16 is redis-benchmark -P 16 shaped: 8 SETs and 8
// GETs per Serve call.
func BenchmarkServePipeline16(b *testing.B) {
	var in []byte
	for i := range 8 {
		k := []byte("key:00000001234" + strconv.Itoa(i))
		in = resp.AppendCommand(in, []byte("SET"), k, []byte(strings.Repeat("v", 32)))
		in = resp.AppendCommand(in, []byte("GET"), k)
	}
	benchServe(b, in, 16)
}

func BenchmarkServePing(b *testing.B) {
	benchServe(b, []byte("*1\r\n$4\r\nPING\r\n"), 1)
}

// BenchmarkServeGetCachedClock is BenchmarkServeGet with Options.Now reading
// a cached clock (as a runtime that updates the time once per loop tick
// would), which removes the clock read from the per-request cost.
func BenchmarkServeGetCachedClock(b *testing.B) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixMilli())
	benchServeOpts(b, resp.AppendCommand(nil, []byte("GET"), []byte("key:000000012345")), 1, Options{Now: clock.Load})
}

// BenchmarkServeGet16Observed is a 16-GET pipeline per Serve on parallel
// connections (one per goroutine) whose Observe adds to one shared
// counter, as the node's metrics do.
func BenchmarkServeGet16Observed(b *testing.B) {
	var calls atomic.Int64
	d := New(store.New(), Options{Observe: func(_ *Command, n int, _ time.Duration) { calls.Add(int64(n)) }})
	pre := resp.AppendCommand(nil, []byte("SET"), []byte("key:000000012345"), []byte("xxx"))
	d.Serve(d.NewConn(), pre, nil)
	var in []byte
	for range 16 {
		in = resp.AppendCommand(in, []byte("GET"), []byte("key:000000012345"))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := d.NewConn()
		out := make([]byte, 0, 4096)
		for pb.Next() {
			_, out, _ = d.Serve(c, in, out[:0])
		}
	})
	b.ReportMetric(float64(calls.Load())/b.Elapsed().Seconds(), "cmds/s")
}
