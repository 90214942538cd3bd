// Package browsertest starts the headless Chromium that the web view's
// browser tests and benchmarks drive with chromedp.
package browsertest

import (
	"context"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/hearsay/hearsay/internal/testenv"
)

// Names are the programs looked for on PATH, in order.
var Names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Find returns the path of the first of Names on PATH, or skips tb (fails
// it under HEARSAY_CI_STRICT=1) when none is installed.
func Find(tb testing.TB) string {
	tb.Helper()
	for _, name := range Names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Skipf(tb, "needs Chromium for the web view's browser tests (apt-get install chromium; see .ci/run)")
	return ""
}

// New starts a headless Chromium with a window of width×height and
// returns a chromedp context on its first tab; the browser is closed
// when tb ends. Without Chromium it skips, as Find does.
func New(tb testing.TB, width, height int) context.Context {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(Find(tb)), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(width, height), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}
