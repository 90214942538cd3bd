package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Event is one line of the page's event log.
type Event struct {
	Time  int64  `json:"t"`              // unix milliseconds
	Kind  string `json:"kind"`           // node-pfail, failover, ...
	Node  string `json:"node,omitempty"` // the node it is about
	Text  string `json:"text,omitempty"`
	Count int    `json:"count,omitempty"` // > 1 when repeats were coalesced
}

// Batch is one server-sent message: the events since the previous one,
// and how many this client lost because it fell behind.
type Batch struct {
	Events  []Event `json:"events"`
	Dropped uint64  `json:"dropped,omitempty"`
}

// Defaults for Hub.
const (
	// DefaultInterval spaces a client's messages: at most 4 a second.
	DefaultInterval = 250 * time.Millisecond
	// DefaultQueue is how many distinct events wait for one client;
	// more are dropped and counted.
	DefaultQueue = 256
)

// Hub fans events out to the page's server-sent-event streams. Publish
// never blocks and never writes to a network connection: each client has
// a bounded queue that its own goroutine drains, at most once an
// Interval, into one message. Repeats of the same kind and node in one
// interval are coalesced into a count; events past the queue's bound are
// dropped and counted, so a slow or stuck client costs the node nothing
// but its queue.
type Hub struct {
	interval time.Duration
	queue    int
	// ticker makes the pacing clock; tests replace it.
	ticker func(time.Duration) (<-chan time.Time, func())

	mu      sync.Mutex
	clients map[*client]struct{}
	nclient atomic.Int32

	published atomic.Uint64
	dropped   atomic.Uint64
	sent      atomic.Uint64
}

type client struct {
	pending []Event
	index   map[string]int // kind+node -> index in pending
	dropped uint64
	wake    chan struct{} // 1-buffered: events are waiting
}

// NewHub returns a hub that sends each client at most one message per
// interval, holding at most queue distinct events per client. Zero
// values take the defaults.
func NewHub(interval time.Duration, queue int) *Hub {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if queue <= 0 {
		queue = DefaultQueue
	}
	return &Hub{interval: interval, queue: queue, clients: map[*client]struct{}{},
		ticker: func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}}
}

// Active reports whether any client listens, so that publishers can skip
// building events nobody reads.
func (h *Hub) Active() bool { return h != nil && h.nclient.Load() > 0 }

// Stats returns the events published, dropped (summed over clients) and
// the messages sent.
func (h *Hub) Stats() (published, dropped, sent uint64) {
	return h.published.Load(), h.dropped.Load(), h.sent.Load()
}

// Clients returns the number of connected streams.
func (h *Hub) Clients() int { return int(h.nclient.Load()) }

// Publish queues e for every client. It takes one short lock and never
// blocks on a client.
func (h *Hub) Publish(e Event) {
	if !h.Active() {
		return
	}
	if e.Time == 0 {
		e.Time = time.Now().UnixMilli()
	}
	if e.Count == 0 {
		e.Count = 1
	}
	h.published.Add(1)
	key := e.Kind + "\x00" + e.Node + "\x00" + e.Text
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if i, ok := c.index[key]; ok {
			c.pending[i].Count += e.Count
			c.pending[i].Time = e.Time
		} else if len(c.pending) >= h.queue {
			c.dropped++
			h.dropped.Add(1)
			continue
		} else {
			c.index[key] = len(c.pending)
			c.pending = append(c.pending, e)
		}
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

func (h *Hub) subscribe() *client {
	c := &client{index: map[string]int{}, wake: make(chan struct{}, 1)}
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	h.nclient.Add(1)
	return c
}

func (h *Hub) unsubscribe(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
	h.nclient.Add(-1)
}

// take swaps out c's pending events.
func (h *Hub) take(c *client) Batch {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := Batch{Events: c.pending, Dropped: c.dropped}
	c.pending, c.dropped = nil, 0
	clear(c.index)
	return b
}

// ServeHTTP streams events as server-sent events ("event: batch", data a
// Batch), at most one message per interval.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	c := h.subscribe()
	defer h.unsubscribe(c)
	rc := http.NewResponseController(w)
	// A hello, so the page knows the stream is up before any event.
	fmt.Fprintf(w, "retry: 2000\nevent: hello\ndata: {\"interval_ms\":%d}\n\n", h.interval.Milliseconds())
	fl.Flush()
	tick, stop := h.ticker(h.interval)
	defer stop()
	ctx := r.Context()
	for {
		// Wait for events, then for the next tick: one message per
		// interval at most, however many events arrived.
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		b := h.take(c)
		if len(b.Events) == 0 && b.Dropped == 0 {
			continue
		}
		data, err := json.Marshal(b)
		if err != nil {
			return
		}
		// A client that cannot take a message within 10 s is dropped;
		// its queue stays bounded meanwhile.
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "event: batch\ndata: %s\n\n", data); err != nil {
			return
		}
		fl.Flush()
		h.sent.Add(1)
	}
}
