package node_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestWebViewHeartbeatPath runs four nodes on one lo, three with
// --heartbeat xdp (sharing the program) and one with --heartbeat udp, and
// checks the per-peer path in /api/view of an XDP node and of the UDP
// node: a peer whose kernel answers shows "xdp", the UDP node "udp". The
// signal is the PONG's FlagKernel bit, set only by the XDP program, so
// each node sees how the other side answered, whatever its own transport.
func TestWebViewHeartbeatPath(t *testing.T) {
	requireHeartbeatRoot(t)
	if os.Getenv("HEARSAY_LO_CHILD") != "1" {
		runInOwnNetns(t, "TestWebViewHeartbeatPath")
		return
	}
	httpX, httpU := freePort(t), freePort(t)
	ps := make([]*proc, 4)
	for i := range ps {
		args := []string{"--heartbeat", "xdp", "--node-timeout", "1s"}
		switch i {
		case 0:
			args = append(args, "--http", "127.0.0.1:"+strconv.Itoa(httpX))
		case 3:
			args = []string{"--heartbeat", "udp", "--node-timeout", "1s", "--http", "127.0.0.1:" + strconv.Itoa(httpU)}
		}
		ps[i] = startNodeArgs(t, "", "127.0.0.1", freePort(t), t.TempDir(), args...)
	}
	createCluster(t, ps)
	udpID := do(t, ps[3], "CLUSTER", "MYID").(string)

	for _, c := range []struct {
		name string
		url  string
		self string
		want func(id string) string // the path expected for peer id
	}{
		{"xdp node", "http://127.0.0.1:" + strconv.Itoa(httpX), "xdp", func(id string) string {
			if id == udpID {
				return "udp"
			}
			return "xdp"
		}},
		{"udp node", "http://127.0.0.1:" + strconv.Itoa(httpU), "udp", func(string) string { return "xdp" }},
	} {
		var last string
		waitFor(t, 15*time.Second, c.name+": every peer answering on its own path", func() (bool, string) {
			v := getView(t, c.url)
			if v.Heartbeat.Mode != c.self {
				return false, "mode " + v.Heartbeat.Mode
			}
			got, ok := "", 0
			for _, n := range v.Nodes {
				if n.Myself {
					continue
				}
				if n.Heartbeat == nil {
					got += fmt.Sprintf(" %s:none", n.ID[:8])
					continue
				}
				got += fmt.Sprintf(" %s:%s/%v/%.0fus", n.ID[:8], n.Heartbeat.Path, n.Heartbeat.Answering, n.Heartbeat.RTTMicros)
				if n.Heartbeat.Answering && n.Heartbeat.Path == c.want(n.ID) && n.Heartbeat.RTTMicros > 0 {
					ok++
				}
			}
			last = got
			return ok == 3, got
		})
		t.Logf("%s sees (peer:path/answering/rtt):%s", c.name, last)
	}
}
