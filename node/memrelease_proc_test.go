package node_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/ring"
)

// Once a node's membership has changed (here: three nodes meet) and then
// stayed quiet, the node returns its free heap to the OS once, so the
// memory that forming the cluster took is not kept by an idle node; and it
// does not go on collecting while nothing changes.
func TestMembershipSettleReleasesMemory(t *testing.T) {
	testenv.SkipShort(t, "waits for the membership to stay quiet for 10 s")
	httpPort := freePort(t)
	ps := []*proc{startNode(t, freePort(t), t.TempDir(), "--http", "127.0.0.1:"+strconv.Itoa(httpPort))}
	for range 2 {
		ps = append(ps, startNode(t, freePort(t), t.TempDir()))
	}
	per := ring.Slots / 3
	for i, p := range ps {
		end := (i+1)*per - 1
		if i == 2 {
			end = ring.Slots - 1
		}
		do(t, p, "CLUSTER", "ADDSLOTSRANGE", i*per, end)
		do(t, p, "CLUSTER", "SET-CONFIG-EPOCH", i+1)
	}
	for _, p := range ps[1:] {
		do(t, ps[0], "CLUSTER", "MEET", "127.0.0.1", p.port)
	}
	waitAgree(t, ps, 20*time.Second)
	releases := func() int {
		t.Helper()
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(httpPort) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "hearsay_memory_releases_total "); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				return n
			}
		}
		t.Fatalf("no hearsay_memory_releases_total in /metrics")
		return 0
	}
	// A bound for a node that never releases, not a timing requirement.
	deadline := time.Now().Add(60 * time.Second)
	for releases() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no memory release a minute after the membership settled")
		}
		time.Sleep(200 * time.Millisecond)
	}
	first := releases()
	time.Sleep(3 * time.Second)
	if n := releases(); n != first {
		t.Fatalf("releases went from %d to %d while the membership stayed the same", first, n)
	}
}
