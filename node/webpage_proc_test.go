package node_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hearsay/hearsay/internal/browsertest"
)

// TestWebViewPage loads the web view in headless Chromium against a real
// 6-node cluster and checks that the membership table and the slot map
// render and that events arrive over server-sent events; then a replica is
// killed and the page, without a reload, must show it FAIL. It saves a
// screenshot in the temporary directory (its path is logged), and with
// HEARSAY_WEB_SCREENSHOT=<file.png> also there (the README's).
func TestWebViewPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 6 node processes and a browser; skipped in -short")
	}
	ctx := browsertest.New(t, 1400, 1300)
	ps, url := webClusterOf(t, 6)
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()

	// Open the page first, so that the cluster's creation is pushed to
	// it as events.
	var stream string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(`#members tbody tr`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#stream").textContent === "events: live"`, nil, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Text(`#stream`, &stream, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	createCluster(t, ps)
	target := do(t, ps[1], "CLUSTER", "MYID").(string)
	do(t, ps[0], "CLUSTER", "SETSLOT", 100, "MIGRATING", target)

	var rows int
	var assigned, info, received, log string
	err := chromedp.Run(ctx,
		// The membership table: one row per node, a replica among them.
		chromedp.Poll(`document.querySelectorAll("#members tbody tr").length === 6 &&
			[...document.querySelectorAll("#members td.role")].some(td => td.textContent === "replica")`,
			nil, chromedp.WithPollingTimeout(40*time.Second)),
		// The slot map: all 16384 slots drawn, slot 100 migrating.
		chromedp.Poll(`document.querySelector("#slotmap").dataset.assigned === "16384" &&
			document.querySelector("#slotinfo").textContent.includes("1 migrating")`,
			nil, chromedp.WithPollingTimeout(30*time.Second)),
		// Events over SSE: the joins and slot changes of the creation.
		chromedp.Poll(`[...document.querySelectorAll("#events li")].some(li => li.className === "k-node-added")`,
			nil, chromedp.WithPollingTimeout(30*time.Second)),
		// Heartbeats: every peer answers on the UDP path.
		chromedp.Poll(`document.querySelectorAll("#heartbeats tbody tr[data-id][data-path=udp]").length === 5`,
			nil, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Evaluate(`document.querySelectorAll("#members tbody tr").length`, &rows),
		chromedp.Evaluate(`document.querySelector("#slotmap").dataset.assigned`, &assigned),
		chromedp.Text(`#slotinfo`, &info, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("#events").dataset.received`, &received),
		chromedp.Text(`#events`, &log, chromedp.ByQuery),
	)
	if err != nil {
		var body string
		_ = chromedp.Run(context.WithoutCancel(ctx), chromedp.Text(`body`, &body, chromedp.ByQuery))
		t.Fatalf("the page did not render the cluster: %v\npage text:\n%s", err, body)
	}
	// A pixel of the slot map has the owner's colour, not the background.
	var px []int
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...document.querySelector("#slotmap").getContext("2d").getImageData(1, 1, 1, 1).data]`, &px)); err != nil {
		t.Fatal(err)
	}
	if len(px) != 4 || (px[0] == 0x2a && px[1] == 0x30 && px[2] == 0x38) {
		t.Errorf("slot 0 is drawn as unassigned: %v", px)
	}
	if n, _ := strconv.Atoi(received); n == 0 || !strings.Contains(log, "node-added") {
		t.Errorf("events received %q, log:\n%s", received, log)
	}
	t.Logf("page: %d member rows, %s slots assigned, %s; %s events; stream %q", rows, assigned, info, received, stream)

	// A node stops: the open page shows it FAIL from its next polls.
	victim := do(t, ps[5], "CLUSTER", "MYID").(string)
	ps[5].kill()
	if err := chromedp.Run(ctx, chromedp.Poll(`document.querySelector('#members tr[data-id="`+victim+`"] .flag.fail') !== null`,
		nil, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		var body string
		_ = chromedp.Run(context.WithoutCancel(ctx), chromedp.Text(`#members`, &body, chromedp.ByQuery))
		t.Fatalf("the page never showed the stopped node FAIL: %v\nmembers:\n%s", err, body)
	}
	var shot []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&shot, 100)); err != nil {
		t.Fatal(err)
	}
	// The nodes' directories go with the test; the picture stays.
	shotPath := filepath.Join(os.TempDir(), "hearsay-web-view-"+strconv.Itoa(os.Getpid())+".png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot with the stopped node FAIL: %s", shotPath)

	if path := os.Getenv("HEARSAY_WEB_SCREENSHOT"); path != "" {
		// Let a second poll and a few heartbeats land, for a settled picture.
		time.Sleep(2 * time.Second)
		var png []byte
		if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s", path)
	}
}
