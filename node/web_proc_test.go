package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/node"
	"github.com/hearsay/hearsay/node/web"
)

// webCluster starts 4 nodes with the UDP heartbeat transport, the first
// with --http (and extra flags), and returns them and the web view's base
// URL; the cluster is not created yet.
func webCluster(t *testing.T, extra ...string) ([]*proc, string) {
	t.Helper()
	return webClusterOf(t, 4, extra...)
}

// webClusterOf is webCluster with n nodes.
func webClusterOf(t *testing.T, n int, extra ...string) ([]*proc, string) {
	t.Helper()
	httpPort := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	ps := make([]*proc, n)
	for i := range ps {
		args := []string{"--heartbeat", "udp"}
		if i == 0 {
			args = append(args, "--http", "127.0.0.1:"+strconv.Itoa(httpPort))
			args = append(args, extra...)
		}
		ps[i] = startNode(t, freePort(t), t.TempDir(), args...)
	}
	return ps, base
}

// getView reads /api/view.
func getView(t *testing.T, url string) node.WebView {
	t.Helper()
	resp, err := http.Get(url + web.PathView)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", web.PathView, resp.Status)
	}
	var v node.WebView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// viewSettled reports whether v shows the 4-node cluster of
// createCluster: every slot owned, a replica with its lag, every peer
// answering heartbeats.
func viewSettled(v node.WebView) (bool, string) {
	if len(v.Nodes) != 4 || v.ClusterState != "ok" {
		return false, "nodes " + strconv.Itoa(len(v.Nodes)) + " state " + v.ClusterState
	}
	assigned, replicas, answering := 0, 0, 0
	for _, r := range v.Slots {
		assigned += int(r.End) - int(r.Start) + 1
	}
	for _, n := range v.Nodes {
		if n.Role == "replica" && n.Master != "" && n.ReplLag != nil {
			replicas++
		}
		if n.Heartbeat != nil && n.Heartbeat.Answering && n.Heartbeat.Path == "udp" && n.Heartbeat.Pongs > 0 {
			answering++
		}
	}
	if assigned != 16384 || replicas != 1 || answering != 3 {
		return false, "assigned " + strconv.Itoa(assigned) + " replicas " + strconv.Itoa(replicas) + " answering " + strconv.Itoa(answering)
	}
	return true, ""
}

// TestWebViewJSON checks /api/view against a real 4-node cluster and the
// event stream's first messages.
func TestWebViewJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 4 node processes; skipped in -short")
	}
	ps, url := webCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+web.PathEvents, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events Content-Type %q", ct)
	}
	kinds := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var b web.Batch
				if json.Unmarshal([]byte(d), &b) == nil {
					for _, e := range b.Events {
						kinds <- e.Kind
					}
				}
			}
		}
	}()

	createCluster(t, ps)
	waitFor(t, 20*time.Second, "the web view to show the cluster", func() (bool, string) { return viewSettled(getView(t, url)) })

	// A migrating slot shows with its target.
	target := do(t, ps[1], "CLUSTER", "MYID").(string)
	do(t, ps[0], "CLUSTER", "SETSLOT", 100, "MIGRATING", target)
	waitFor(t, 5*time.Second, "slot 100 to show as migrating", func() (bool, string) {
		v := getView(t, url)
		for _, m := range v.Migrating {
			if m.Slot == 100 && m.Peer == target {
				return true, ""
			}
		}
		return false, "migrating " + strconv.Itoa(len(v.Migrating))
	})
	v := getView(t, url)
	self := v.Nodes[0]
	for _, n := range v.Nodes {
		if n.Myself {
			self = n
		}
	}
	if !self.Myself || self.ID != v.ID || self.SlotCount == 0 || self.Role != "master" || v.Heartbeat.Mode != "udp" {
		t.Fatalf("self row %+v, view %+v", self, v)
	}

	seen := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for !seen["node-added"] || !seen["slots-changed"] {
		select {
		case k := <-kinds:
			seen[k] = true
		case <-deadline:
			t.Fatalf("events seen %v; want node-added and slots-changed", seen)
		}
	}
	// The handler counts a message after writing it: read the counters
	// once the events have arrived.
	if v = getView(t, url); v.Events.Clients != 1 || v.Events.Sent == 0 {
		t.Fatalf("event stats %+v", v.Events)
	}
}

// TestWebViewAuth checks that a non-loopback --http without a token is
// refused at start, and that with a token every request needs it.
func TestWebViewAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes; skipped in -short")
	}
	dir := t.TempDir()
	port, httpPort := freePort(t), freePort(t)
	out, err := exec.Command(binary, "node", "--port", strconv.Itoa(port), "--dir", dir, "--heartbeat", "off",
		"--http", "0.0.0.0:"+strconv.Itoa(httpPort)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--http-auth") {
		t.Fatalf("a non-loopback --http without a token started or said nothing useful: %v\n%s", err, out)
	}

	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startNode(t, port, dir, "--http", "0.0.0.0:"+strconv.Itoa(httpPort), "--http-auth-file", tokenFile)
	url := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	get := func(path, bearer string) int {
		req, _ := http.NewRequest("GET", url+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/", web.PathView, "/metrics", "/status", "/debug/pprof/"} {
		if c := get(path, ""); c != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", path, c)
		}
		if c := get(path, "wrong"); c != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", path, c)
		}
		if c := get(path, "s3cret"); c != http.StatusOK {
			t.Errorf("GET %s with the token: %d, want 200", path, c)
		}
	}
	if c := get(web.PathView+"?token=s3cret", ""); c != http.StatusOK {
		t.Errorf("GET %s?token=: %d, want 200", web.PathView, c)
	}
}
