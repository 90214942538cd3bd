package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// sseReader reads one server-sent-event stream message by message.
type sseReader struct{ sc *bufio.Scanner }

// next returns the next message's event name and data.
func (r *sseReader) next() (event, data string, err error) {
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "":
			if event != "" || data != "" {
				return event, data, nil
			}
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
	if err = r.sc.Err(); err == nil {
		err = fmt.Errorf("stream ended")
	}
	return "", "", err
}

// fakeTicks makes h pace its clients by ticks the test sends.
func fakeTicks(h *Hub) chan time.Time {
	ch := make(chan time.Time)
	h.ticker = func(time.Duration) (<-chan time.Time, func()) { return ch, func() {} }
	return ch
}

func openStream(t testing.TB, ctx context.Context, url string) *sseReader {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %s %q", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	r := &sseReader{bufio.NewScanner(resp.Body)}
	r.sc.Buffer(nil, 1<<20)
	if ev, _, err := r.next(); err != nil || ev != "hello" {
		t.Fatalf("first message %q, %v; want hello", ev, err)
	}
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHubPacing publishes thousands of events between pacing ticks and
// checks that each tick yields at most one message per client, that
// repeats coalesce into counts, and that what does not fit the queue is
// dropped and counted, not waited for.
func TestHubPacing(t *testing.T) {
	const queue = 50
	h := NewHub(time.Hour, queue)
	ticks := fakeTicks(h)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := openStream(t, ctx, srv.URL)
	waitFor(t, "the client to subscribe", func() bool { return h.Clients() == 1 })

	const rounds, perRound = 5, 2000
	published := 0
	for round := 0; round < rounds; round++ {
		for i := 0; i < perRound; i++ {
			// Half repeat one event (coalesced), half are distinct.
			if i%2 == 0 {
				h.Publish(Event{Kind: "node-pfail", Node: "aaaa"})
			} else {
				h.Publish(Event{Kind: "slots-changed", Node: fmt.Sprint(round, "-", i)})
			}
			published++
		}
		ticks <- time.Now() // the handler is waiting on it: one message
		ev, data, err := r.next()
		if err != nil || ev != "batch" {
			t.Fatalf("round %d: %q %v", round, ev, err)
		}
		var b Batch
		if err := json.Unmarshal([]byte(data), &b); err != nil {
			t.Fatal(err)
		}
		if len(b.Events) > queue {
			t.Fatalf("round %d: %d events in one message, queue is %d", round, len(b.Events), queue)
		}
		got := uint64(0)
		for _, e := range b.Events {
			got += uint64(e.Count)
		}
		if got+b.Dropped != perRound {
			t.Fatalf("round %d: %d delivered + %d dropped, want %d", round, got, b.Dropped, perRound)
		}
		if b.Events[0].Kind != "node-pfail" || b.Events[0].Count != perRound/2 {
			t.Fatalf("round %d: first event %+v, want node-pfail coalesced x%d", round, b.Events[0], perRound/2)
		}
		if b.Dropped == 0 {
			t.Fatalf("round %d: nothing dropped for %d distinct events", round, perRound/2)
		}
	}
	// The handler counts a message after writing it.
	waitFor(t, "the last message to be counted", func() bool { _, _, sent := h.Stats(); return sent == rounds })
	pub, dropped, sent := h.Stats()
	if pub != uint64(published) || sent != rounds || dropped == 0 {
		t.Fatalf("stats published %d dropped %d sent %d; want %d, >0, %d", pub, dropped, sent, published, rounds)
	}
}

// TestHubRealPace counts messages over real time with the real ticker:
// events published as fast as possible reach a client in at most one
// message per interval (plus the one already due when they started).
func TestHubRealPace(t *testing.T) {
	const interval = 50 * time.Millisecond
	h := NewHub(interval, 0)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := openStream(t, ctx, srv.URL)
	waitFor(t, "the client to subscribe", func() bool { return h.Clients() == 1 })
	start := time.Now()
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			h.Publish(Event{Kind: "node-alive", Node: fmt.Sprint(i % 1000)})
		}
	}()
	msgs := 0
	for time.Since(start) < 500*time.Millisecond {
		if _, _, err := r.next(); err != nil {
			t.Fatal(err)
		}
		msgs++
	}
	close(stop)
	elapsed := time.Since(start)
	if limit := int(elapsed/interval) + 2; msgs > limit {
		t.Fatalf("%d messages in %v at one per %v; at most %d allowed", msgs, elapsed, interval, limit)
	}
	if msgs == 0 {
		t.Fatal("no message")
	}
}

// TestHubSlowClient checks that a client that never reads blocks no
// publisher: Publish returns at once however full its queue is.
func TestHubSlowClient(t *testing.T) {
	h := NewHub(time.Millisecond, 10)
	c := h.subscribe() // a client whose stream never drains
	defer h.unsubscribe(c)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100000; i++ {
			h.Publish(Event{Kind: "slots-changed", Node: fmt.Sprint(i)})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a client that does not read")
	}
	if _, dropped, _ := h.Stats(); dropped != 100000-10 {
		t.Fatalf("dropped %d, want %d", dropped, 100000-10)
	}
	if b := h.take(c); len(b.Events) != 10 || b.Dropped != 100000-10 {
		t.Fatalf("queue %d events, %d dropped", len(b.Events), b.Dropped)
	}
}

func TestHubIdle(t *testing.T) {
	h := NewHub(0, 0)
	h.Publish(Event{Kind: "node-added"}) // no client: nothing kept
	if pub, _, _ := h.Stats(); pub != 0 || h.Active() {
		t.Fatalf("published %d with no client", pub)
	}
}

func TestCheckBind(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true},
		{"[::1]:8080", "", true},
		{"localhost:8080", "", true},
		{"127.1.2.3:8080", "", true},
		{":8080", "", false},
		{"0.0.0.0:8080", "", false},
		{"[::]:8080", "", false},
		{"10.0.0.5:8080", "", false},
		{"example.com:8080", "", false},
		{"0.0.0.0:8080", "s3cret", true},
		{"10.0.0.5:8080", "s3cret", true},
		{"nonsense", "", false},
	} {
		err := CheckBind(tc.addr, tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("CheckBind(%q, %q) = %v, want ok=%v", tc.addr, tc.token, err, tc.ok)
		}
		if err != nil && tc.token == "" && !strings.Contains(err.Error(), "--http-auth") && tc.addr != "nonsense" {
			t.Errorf("CheckBind(%q): error %q does not name --http-auth", tc.addr, err)
		}
	}
}

func TestAuth(t *testing.T) {
	view := map[string]any{"id": "abc"}
	h := Handler(http.NewServeMux(), Config{View: func() any { return view }, Hub: NewHub(0, 0), Token: "s3cret"})
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path, header string) int {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path, header string
		want         int
	}{
		{"/", "", 401},
		{"/api/view", "", 401},
		{"/api/view", "Bearer wrong", 401},
		{"/api/view?token=wrong", "", 401},
		{"/api/events", "", 401},
		{"/api/view", "Bearer s3cret", 200},
		{"/api/view?token=s3cret", "", 200},
		{"/?token=s3cret", "", 200},
		{"/static/app.js", "", 200}, // the embedded assets carry nothing about the cluster
		{"/static/style.css", "", 200},
	} {
		if got := get(tc.path, tc.header); got != tc.want {
			t.Errorf("GET %s (Authorization %q): %d, want %d", tc.path, tc.header, got, tc.want)
		}
	}
}

func TestHandlerView(t *testing.T) {
	h := Handler(http.NewServeMux(), Config{View: func() any { return map[string]int{"n": 3} }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + PathView)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]int
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v["n"] != 3 {
		t.Fatalf("view %v, %v", v, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	page, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer page.Body.Close()
	b := new(strings.Builder)
	_, _ = bufio.NewReader(page.Body).WriteTo(b)
	for _, want := range []string{`id="members"`, `id="slotmap"`, `id="events"`, `static/app.js`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(b.String(), "http://") || strings.Contains(b.String(), "https://") {
		t.Error("page refers to another site; it must work offline")
	}
}
