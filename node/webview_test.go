package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/internal/browsertest"
	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/ring"
)

// webBenchID is the i-th node ID of the benchmark cluster.
func webBenchID(i int) wire.NodeID {
	var id wire.NodeID
	id[0], id[1], id[2] = 0xbe, byte(i>>8), byte(i)
	id[len(id)-1] = 1
	return id
}

// newWebViewNode returns a node, not running, whose config file holds a
// formed cluster of nodes nodes (half masters owning equal slot ranges,
// half replicas, this node the first master) and whose heartbeat driver
// has fed the core a sample from every peer (odd ones answered by their
// XDP program, even ones by userspace): the state a node of that
// cluster publishes, without the other processes.
func newWebViewNode(tb testing.TB, nodes int) *Node {
	tb.Helper()
	masters := nodes / 2
	st := &gossip.State{ID: webBenchID(0), CurrentEpoch: uint64(masters), ConfigEpoch: 1}
	for i := range nodes {
		rec := wire.NodeRecord{ID: webBenchID(i), Flags: wire.FlagMaster, ConfigEpoch: uint64(i + 1), Version: 1,
			Addr: wire.Addr{IP: netip.AddrFrom4([4]byte{127, 0, 0, 1}), Port: uint16(7000 + i), BusPort: uint16(17000 + i)}}
		if i >= masters {
			rec.Flags, rec.Master, rec.ConfigEpoch = wire.FlagReplica, webBenchID(i-masters), uint64(i-masters+1)
		}
		st.Nodes = append(st.Nodes, rec)
	}
	for m := range masters {
		st.Claims = append(st.Claims, wire.SlotClaim{Owner: webBenchID(m), ConfigEpoch: uint64(m + 1), Version: 1,
			Ranges: []wire.SlotRange{{Start: uint16(m * ring.Slots / masters), End: uint16((m+1)*ring.Slots/masters - 1)}}})
	}
	dir := tb.TempDir()
	b, err := encodeState(st, 7000, 17000, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), b, 0o600); err != nil {
		tb.Fatal(err)
	}
	f := &fakeHeartbeats{}
	n, err := New(Config{Dir: dir, Port: 7000, NodeTimeout: 5 * time.Second, Heartbeats: f,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	now := n.now()
	for i := 1; i < nodes; i++ {
		// Odd peers answer in the kernel, even ones in userspace.
		f.samples = append(f.samples, HeartbeatSample{Peer: webBenchID(i), Sample: gossip.HeartbeatSample{
			PongsRecv: 10, LastPong: now, RTT: time.Duration(100+i) * time.Microsecond, Progress: 10}, Kernel: i%2 == 1})
	}
	n.hb.feed(now)
	n.hb.tick(now)
	n.publish()
	if v := n.WebView(); len(v.Nodes) != nodes || len(v.Slots) != masters {
		tb.Fatalf("the view has %d nodes and %d slot ranges, want %d and %d", len(v.Nodes), len(v.Slots), nodes, masters)
	}
	return n
}

// TestWebViewPeerPath: each peer's heartbeat row says which path of the
// peer answered its last PONG, from the sample's Kernel bit, and its RTT.
func TestWebViewPeerPath(t *testing.T) {
	n := newWebViewNode(t, 6)
	v := n.WebView()
	for i, wn := range v.Nodes {
		if wn.Myself {
			if wn.Heartbeat != nil {
				t.Errorf("self has a heartbeat row: %+v", wn.Heartbeat)
			}
			continue
		}
		want := HeartbeatUDP
		if wn.ID == webBenchID(1).String() || wn.ID == webBenchID(3).String() || wn.ID == webBenchID(5).String() {
			want = HeartbeatXDP
		}
		if hb := wn.Heartbeat; hb == nil || hb.Path != want || !hb.Answering || hb.RTTMicros < 100 {
			t.Errorf("node %d (%s): heartbeat %+v, want path %s, answering, an RTT", i, wn.ID[:8], hb, want)
		}
	}
	// Before any PONG there is no path to tell.
	n.hb.hb.(*fakeHeartbeats).samples = []HeartbeatSample{{Peer: webBenchID(1), Kernel: true}}
	n.hb.publishedAt = -time.Hour
	n.hb.feed(n.now())
	for _, wn := range n.WebView().Nodes {
		if wn.ID == webBenchID(1).String() && (wn.Heartbeat == nil || wn.Heartbeat.Path != "" || wn.Heartbeat.LastAgoMs != -1) {
			t.Errorf("a peer that never answered: %+v", wn.Heartbeat)
		}
	}
}

// BenchmarkWebView200 builds /api/view's document for a 200-node cluster.
func BenchmarkWebView200(b *testing.B) {
	n := newWebViewNode(b, 200)
	for b.Loop() {
		_ = n.WebView()
	}
}

// BenchmarkWebViewHTTP200 is one GET /api/view of a 200-node cluster over
// loopback HTTP: the view built, JSON-encoded, sent and read. cpu-ns/op
// is the process's CPU time per request, the test's client included; the
// page asks once a second.
func BenchmarkWebViewHTTP200(b *testing.B) {
	n := newWebViewNode(b, 200)
	srv := httptest.NewServer(n.webHandler())
	defer srv.Close()
	var size int64
	cpu0 := testenv.CPUTime(b)
	for b.Loop() {
		resp, err := http.Get(srv.URL + "/api/view")
		if err != nil {
			b.Fatal(err)
		}
		size, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("GET /api/view: %v %v", resp.Status, err)
		}
	}
	b.ReportMetric(float64(testenv.CPUTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(size), "bytes/view")
}

// firstPaintProbe runs in the page before its own script: it notes when
// the membership table first holds want rows (rows_ms, a DOM mutation) and
// when the frame after that has been painted (painted_ms: the first task
// after the next animation frame), in ms since navigation start.
const firstPaintProbe = `(() => {
  const want = %d;
  const mo = new MutationObserver(() => {
    const body = document.querySelector("#members tbody");
    if (!body || body.children.length < want || window.__rows_ms) return;
    window.__rows_ms = performance.now();
    requestAnimationFrame(() => setTimeout(() => { window.__painted_ms = performance.now(); }, 0));
    mo.disconnect();
  });
  mo.observe(document, { childList: true, subtree: true });
})();`

// BenchmarkWebViewFirstPaint200 opens the page of a 200-node cluster in
// headless Chromium, cache disabled, once per op: fcp-ms is the browser's
// first contentful paint (the page's frame), rows-ms the moment the
// membership table holds all 200 nodes, painted-ms the end of the frame
// that shows them (the slot map is drawn in the same task). The issue's
// target is under 1 s for the last. Without Chromium it skips (fails
// under HEARSAY_CI_STRICT=1).
func BenchmarkWebViewFirstPaint200(b *testing.B) {
	const nodes = 200
	ctx := browsertest.New(b, 1400, 1300)
	n := newWebViewNode(b, nodes)
	srv := httptest.NewServer(n.webHandler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	probe := fmt.Sprintf(firstPaintProbe, nodes)
	if err := chromedp.Run(ctx, network.Enable(), network.SetCacheDisabled(true),
		chromedp.ActionFunc(func(ctx context.Context) error {
			_, err := page.AddScriptToEvaluateOnNewDocument(probe).Do(ctx)
			return err
		})); err != nil {
		b.Fatal(err)
	}
	var fcp, rows, painted float64
	for b.Loop() {
		var r struct{ FCP, Rows, Painted float64 }
		var raw string
		err := chromedp.Run(ctx,
			chromedp.Navigate(srv.URL+"/"),
			chromedp.Poll(`window.__painted_ms !== undefined`, nil, chromedp.WithPollingTimeout(30*time.Second)),
			chromedp.Evaluate(`JSON.stringify({FCP: (performance.getEntriesByName("first-contentful-paint")[0] || {startTime: -1}).startTime,
				Rows: window.__rows_ms, Painted: window.__painted_ms})`, &raw))
		if err == nil {
			err = json.Unmarshal([]byte(raw), &r)
		}
		if err != nil {
			b.Fatalf("loading the page: %v", err)
		}
		fcp += r.FCP
		rows += r.Rows
		painted += r.Painted
	}
	nf := float64(b.N)
	b.ReportMetric(fcp/nf, "fcp-ms")
	b.ReportMetric(rows/nf, "rows-ms")
	b.ReportMetric(painted/nf, "painted-ms")
	if painted/nf > 1000 {
		b.Logf("the page took %.0f ms to show %d nodes: over the 1 s target", painted/nf, nodes)
	}
}
