package scale

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/bench/childproc"
	"github.com/hearsay/hearsay/internal/testenv"
)

func TestParseCounters(t *testing.T) {
	js := `{"nftables": [{"metainfo": {"version": "1.0.6"}},
		{"counter": {"family": "inet", "name": "bus_tcp", "table": "hearsay_scale", "handle": 2, "packets": 10, "bytes": 1500}},
		{"counter": {"family": "inet", "name": "bus_udp", "table": "hearsay_scale", "handle": 3, "packets": 4, "bytes": 300}},
		{"counter": {"family": "inet", "name": "bus_tcp", "table": "other", "handle": 2, "packets": 99, "bytes": 99}}]}`
	got, err := ParseCounters(js)
	want := Bytes{TCPBytes: 1500, TCPPackets: 10, UDPBytes: 300, UDPPackets: 4}
	if err != nil || got != want {
		t.Fatalf("ParseCounters = %+v, %v; want %+v", got, err, want)
	}
	if _, err := ParseCounters(`{"nftables": [{"counter": {"name": "bus_tcp", "table": "hearsay_scale"}}]}`); err == nil {
		t.Error("a missing bus_udp counter is not an error")
	}
}

// TestSampleProc reads this test process, which has threads, switches
// context and resident memory.
func TestSampleProc(t *testing.T) {
	s, err := SampleProc("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSBytes == 0 || s.PSSBytes == 0 || s.AnonBytes == 0 || s.Threads < 1 || s.CtxSwitches == 0 {
		t.Fatalf("sample %+v: want RSS, PSS, anonymous RSS, threads and context switches", s)
	}
	if hz := childproc.ClockTicks(); hz == 0 || hz > 10000 {
		t.Fatalf("ClockTicks = %d", hz)
	}
}

// TestRun runs the harness at N = 3 for both systems with a short window
// and checks that every figure is there and that nothing is left behind.
func TestRun(t *testing.T) {
	testenv.SkipShort(t, "starts 3 hearsay and 3 redis-server nodes (about 15 s)")
	testenv.RequireBinary(t, "redis-server", "redis-cli")
	hearsay := filepath.Join(t.TempDir(), "hearsay")
	if out, err := exec.Command("go", "build", "-o", hearsay, "github.com/hearsay/hearsay/cmd/hearsay").CombinedOutput(); err != nil {
		t.Fatalf("building hearsay: %v\n%s", err, out)
	}
	var prog bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{Hearsay: hearsay, Sizes: []int{3}, Settle: time.Second, Window: 2 * time.Second,
		KnownTimeout: 30 * time.Second, Progress: &prog})
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, prog.String())
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", md.String())
	root := os.Geteuid() == 0
	if root != strings.HasPrefix(rep.Counting, "nftables") {
		t.Errorf("running as root %v, but counting: %s", root, rep.Counting)
	}
	if len(rep.Rows) != 2 || rep.Rows[0].System != "hearsay" || rep.Rows[1].System != "redis" {
		t.Fatalf("rows %+v, want hearsay then redis", rep.Rows)
	}
	for _, r := range rep.Rows {
		if r.Nodes != 3 || r.CreateS <= 0 || r.AllKnownS <= 0 || r.WindowS < 2 {
			t.Errorf("%s: nodes %d, create %vs, all known %vs, window %vs", r.System, r.Nodes, r.CreateS, r.AllKnownS, r.WindowS)
		}
		// An idle Redis node may use less than one clock tick in 2 s, so
		// CPU is only checked for not being negative.
		if r.RSSBytesPerNode < 1<<20 || r.ThreadsPerNode < 1 || r.CtxSwitchesPerNodeS <= 0 || r.CPUPercentPerNode < 0 {
			t.Errorf("%s: rss %v, threads %v, ctx switches %v/s, cpu %v%%", r.System, r.RSSBytesPerNode, r.ThreadsPerNode,
				r.CtxSwitchesPerNodeS, r.CPUPercentPerNode)
		}
		if len(r.Notes) > 0 {
			t.Errorf("%s: notes %q", r.System, r.Notes)
		}
		if !root {
			continue
		}
		// Both send TCP bus pings; only hearsay sends UDP heartbeats.
		if !r.Counted || r.TCPBytesPerNodeS <= 0 || (r.System == "hearsay") != (r.UDPBytesPerNodeS > 0) {
			t.Errorf("%s: bus bytes counted %v, tcp %v/node/s, udp %v/node/s", r.System, r.Counted, r.TCPBytesPerNodeS, r.UDPBytesPerNodeS)
		}
	}
	if !strings.Contains(md.String(), "| hearsay | 3 |") || !strings.Contains(md.String(), "| redis | 3 |") {
		t.Errorf("markdown lacks the rows:\n%s", md.String())
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Rows) != 2 || back.Rows[0].Nodes != 3 {
		t.Errorf("JSON does not read back: %v\n%s", err, js.String())
	}

	// Nothing is left: no child process of this one, no nftables table.
	if kids := children(os.Getpid()); len(kids) > 0 {
		t.Errorf("child processes still running: %v", kids)
	}
	if nft, err := lookNft("nft"); root && err == nil {
		if out, err := exec.Command(nft, "list", "table", "inet", Table).CombinedOutput(); err == nil {
			t.Errorf("nftables table %s is still there:\n%s", Table, out)
		}
	}
}

// children lists the processes whose parent is pid.
func children(pid int) []string {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if fields := strings.Fields(s[i+1:]); len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, s[:i+1])
		}
	}
	return out
}

// A row that could not be measured shows in the table with its reason,
// and the rows around it keep their figures.
func TestReportFailedRow(t *testing.T) {
	rep := &Report{Rows: []Row{
		{System: "hearsay", Nodes: 200, CreateS: 1.5, AllKnownS: 1.2, RSSBytesPerNode: 1 << 20},
		{System: "redis", Nodes: 200, Failed: "redis-cli --cluster create did not finish within 5m0s"},
	}}
	var b strings.Builder
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"| redis | 200 | — |", "failed (note)", "note (200 redis nodes): not measured: redis-cli --cluster create did not finish", "| hearsay | 200 |"} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %q in:\n%s", want, out)
		}
	}
}
