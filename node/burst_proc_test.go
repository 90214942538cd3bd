package node_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/internal/testenv"
)

// TestBurstMemoryReturned: a client that queues a few hundred megabytes
// of replies (under its output limit, so it is not dropped) and then
// closes leaves the node's RSS back near where it was within a few
// seconds: the freed buffers go back to the OS, not only to Go's heap.
// Before, RSS stayed above 9 GB minutes after such a client closed.
func TestBurstMemoryReturned(t *testing.T) {
	testenv.SkipShort(t, "starts a node process and moves hundreds of megabytes through it")
	p := startOneNodeCluster(t)
	big := strings.Repeat("x", 10<<20)
	if r, err := rawCommand(p.addr(), "SET", "big", big); r != "+OK" {
		t.Fatalf("SET big: %q %v", r, err)
	}
	time.Sleep(500 * time.Millisecond)
	base := rssKB(t, p)
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).SetReadBuffer(64 << 10)
	if _, err := c.Write([]byte(strings.Repeat("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", 40))); err != nil {
		t.Fatal(err)
	}
	peak := base
	for range 30 {
		time.Sleep(50 * time.Millisecond)
		peak = max(peak, rssKB(t, p))
	}
	c.Close()
	closed := time.Now()
	bound := 2*base + 50*1024
	took := waitFor(t, 10*time.Second, "RSS falls back after the client closed", func() (bool, string) {
		r := rssKB(t, p)
		return r < bound, fmt.Sprintf("%d kB (before %d kB, bound %d kB)", r, base, bound)
	})
	t.Logf("RSS %d kB before, %d kB peak with 400 MB of replies queued, %d kB (bound %d kB) %v after the close",
		base, peak, rssKB(t, p), bound, max(took, time.Since(closed)).Round(time.Millisecond))
	if peak < base+100*1024 {
		t.Fatalf("the burst never raised RSS (%d → %d kB): the test did not test", base, peak)
	}
}
