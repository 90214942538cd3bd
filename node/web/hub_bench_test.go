package web

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hearsay/hearsay/internal/testenv"
)

// benchEvent is a typical log line: a node marked PFAIL.
var benchEvent = Event{Kind: "node-pfail", Node: "be00c8000000000000000000000000000000c801"}

// BenchmarkEventStream is the cost of one event on the page's stream in
// the pacing's worst case, one event per message: each op publishes an
// event, lets the client's pacing tick fire, and reads the server-sent
// message on a loopback HTTP connection. cpu-ns/op is the process's CPU
// time per op (getrusage), the test's own SSE client included, so it is
// an upper bound of the node's share; pct-core@10ev/s is that cost at 10
// events a second, as a percentage of one core.
func BenchmarkEventStream(b *testing.B) {
	h := NewHub(0, 0)
	ticks := fakeTicks(h)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := openStream(b, ctx, srv.URL)
	cpu0 := testenv.CPUTime(b)
	for b.Loop() {
		h.Publish(benchEvent)
		ticks <- time.Now()
		if ev, _, err := r.next(); err != nil || ev != "batch" {
			b.Fatalf("message %q: %v", ev, err)
		}
	}
	per := float64(testenv.CPUTime(b)-cpu0) / float64(b.N)
	b.ReportMetric(per, "cpu-ns/op")
	b.ReportMetric(per*10/1e9*100, "pct-core@10ev/s")
}

// BenchmarkEventStreamRealtime runs the stream as a node does, in real
// time with the real 250 ms pacing: one client connected, first idle for
// a window (the reference), then 10 events a second for the same window.
// It reports the process's CPU time in each as a percentage of one core;
// the difference is what the events cost. Run it with -benchtime 1x: each
// op is a 2×5 s run.
func BenchmarkEventStreamRealtime(b *testing.B) {
	const window = 5 * time.Second
	h := NewHub(0, 0)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := openStream(b, ctx, srv.URL)
	got := make(chan int, 1024)
	go func() {
		for {
			ev, _, err := r.next()
			if err != nil {
				close(got)
				return
			}
			if ev == "batch" {
				got <- 1
			}
		}
	}()
	var idle, busy time.Duration
	var msgs int
	for b.Loop() {
		c0 := testenv.CPUTime(b)
		time.Sleep(window)
		c1 := testenv.CPUTime(b)
		tick := time.NewTicker(100 * time.Millisecond)
		for end := time.Now().Add(window); time.Now().Before(end); {
			<-tick.C
			h.Publish(benchEvent)
		}
		tick.Stop()
		idle += c1 - c0
		busy += testenv.CPUTime(b) - c1
	}
	for len(got) > 0 {
		msgs += <-got
	}
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(time.Duration(b.N)*window) }
	b.ReportMetric(pct(idle), "pct-core-idle")
	b.ReportMetric(pct(busy), "pct-core@10ev/s")
	b.ReportMetric(float64(msgs)/float64(b.N), "msgs/op")
}
