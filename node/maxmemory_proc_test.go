package node_test

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/internal/testenv"
)

// startOneNodeCluster starts a node owning every slot and waits until it
// takes writes.
func startOneNodeCluster(t *testing.T, extra ...string) *proc {
	t.Helper()
	p := startNode(t, freePort(t), t.TempDir(), extra...)
	if r, err := rawCommand(p.addr(), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); r != "+OK" {
		t.Fatalf("ADDSLOTSRANGE: %q %v", r, err)
	}
	waitFor(t, 10*time.Second, "DEL on the one-node cluster", func() (bool, string) {
		r, err := rawCommand(p.addr(), "DEL", "probe")
		return r == ":0", fmt.Sprint(r, err)
	})
	return p
}

// pipelineValues sends n SETs of prefix+i to val over c and returns the
// replies' first lines.
func pipelineValues(t *testing.T, c net.Conn, r *bufio.Reader, prefix, val string, from, n int) []string {
	t.Helper()
	w := bufio.NewWriterSize(c, 1<<16)
	for i := from; i < from+n; i++ {
		k := prefix + strconv.Itoa(i)
		fmt.Fprintf(w, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(val), val)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out := make([]string, n)
	for i := range out {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		out[i] = strings.TrimRight(line, "\r\n")
	}
	return out
}

// TestMaxmemoryAllkeysLRU: a node with --maxmemory 2mb and allkeys-lru
// takes 10 MB of writes (5× the limit, in 10,240 values of 1 KB)
// without an error, its used_memory never passes the limit by more than
// one write, and it evicts.
func TestMaxmemoryAllkeysLRU(t *testing.T) {
	testenv.SkipShort(t, "starts a node process")
	const limit = 2 << 20
	p := startOneNodeCluster(t, "--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru")
	if got := infoField(t, p.addr(), "memory", "maxmemory_policy"); got != "allkeys-lru" {
		t.Fatalf("maxmemory_policy %q", got)
	}
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	val := strings.Repeat("x", 1024)
	const total, batch = 10 << 10, 512 // 10 MB in 1 KB values
	peak := 0
	for from := 0; from < total; from += batch {
		for i, rep := range pipelineValues(t, c, r, "key:", val, from, batch) {
			if rep != "+OK" {
				t.Fatalf("SET key:%d: %q", from+i, rep)
			}
		}
		used, _ := strconv.Atoi(infoField(t, p.addr(), "memory", "used_memory"))
		peak = max(peak, used)
	}
	evicted, _ := strconv.Atoi(infoField(t, p.addr(), "stats", "evicted_keys"))
	keys, _ := rawCommand(p.addr(), "DBSIZE")
	t.Logf("wrote %d MB over a %d MB limit: peak used_memory %d bytes, %d keys evicted, DBSIZE %s, RSS %d kB",
		total>>10, limit>>20, peak, evicted, keys, rssKB(t, p))
	if peak > limit+4096 {
		t.Fatalf("used_memory reached %d, over the %d limit by more than one write", peak, limit)
	}
	if evicted < total/2 {
		t.Fatalf("evicted_keys %d after writing %d keys over a limit that holds a fifth", evicted, total)
	}
}

// TestMaxmemoryNoevictionOOM: with noeviction a node over its limit
// answers writes with Redis's exact OOM error, over raw RESP and through
// redis-cli, and still serves GET and DEL.
func TestMaxmemoryNoevictionOOM(t *testing.T) {
	testenv.SkipShort(t, "starts a node process")
	p := startOneNodeCluster(t, "--maxmemory", "1mb")
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	const oom = "-OOM command not allowed when used memory > 'maxmemory'."
	reps := pipelineValues(t, c, r, "key:", strings.Repeat("x", 1024), 0, 2048)
	if reps[0] != "+OK" || reps[len(reps)-1] != oom {
		t.Fatalf("first and last of 2048 SETs of 1 KB under a 1 MB limit: %q, %q", reps[0], reps[len(reps)-1])
	}
	if got, err := rawCommand(p.addr(), "SET", "more", "v"); got != oom {
		t.Fatalf("SET over the limit: %q %v", got, err)
	}
	if got, err := rawCommand(p.addr(), "GET", "more"); got != "$-1" {
		t.Fatalf("GET: %q %v", got, err)
	}
	cli := testenv.RequireBinary(t, "redis-cli")
	out, _ := exec.Command(cli, "-p", strconv.Itoa(p.port), "SET", "more", "v").CombinedOutput()
	if got := strings.TrimSpace(string(out)); got != oom[1:] { // redis-cli drops "(error) " when not on a terminal
		t.Fatalf("redis-cli SET: %q", got)
	}
	if got, err := rawCommand(p.addr(), "DEL", "key:0"); got != ":1" {
		t.Fatalf("DEL: %q %v", got, err)
	}
	if got, err := rawCommand(p.addr(), "SET", "more", "v"); got != "+OK" {
		t.Fatalf("SET after DEL made room: %q %v", got, err)
	}
}
