package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hearsay/hearsay/bench/childproc"
)

// Config is one comparison run. Zero fields take the defaults of the
// issue's targets (see Defaults).
type Config struct {
	// Binaries; bare names are looked up in PATH.
	Hearsay, RedisServer, RedisCLI, RedisBenchmark string

	// Throughput: redis-benchmark -t set,get -n Requests -P Pipeline -c
	// Clients, Rounds times per system, alternating hearsay and redis.
	Requests, Pipeline, Clients, Rounds int

	// Idle bus traffic: one cluster per size (half masters, half
	// replicas) for Redis and for each hearsay heartbeat mode.
	Sizes       []int
	Heartbeats  []string
	NodeTimeout time.Duration
	Settle      time.Duration // after the cluster is ok everywhere
	Window      time.Duration // measured

	SkipThroughput, SkipBus bool

	// Progress receives one line per step (nil: discarded).
	Progress io.Writer
}

// Defaults returns the full run the Targets describe.
func Defaults() Config {
	return Config{
		Hearsay: "bin/hearsay", RedisServer: "redis-server", RedisCLI: "redis-cli", RedisBenchmark: "redis-benchmark",
		Requests: 1000000, Pipeline: 16, Clients: 50, Rounds: 2,
		Sizes: []int{6, 30}, Heartbeats: []string{"off", "udp"},
		NodeTimeout: time.Second, Settle: 5 * time.Second, Window: 15 * time.Second,
	}
}

// Results is everything a run measured.
type Results struct {
	Config       Config
	Start        time.Time
	Elapsed      time.Duration
	RedisVersion string
	HearsayRev   string
	CPUs         int
	// LoadStart and LoadEnd are /proc/loadavg's 1-minute figure: other
	// work on the machine is the main source of noise.
	LoadStart, LoadEnd string
	Throughput         []ThroughputRow
	Bus                []BusRow
	// Method says how bus bytes were counted.
	Method string
}

// ThroughputRow is one redis-benchmark test: requests per second per
// round for each system, and the CPU seconds each server used in that
// round (hearsay and Redis: the whole process; the ceiling: its thread).
type ThroughputRow struct {
	Test                             string
	Hearsay, Redis, Ceiling          []float64
	HearsayCPU, RedisCPU, CeilingCPU []float64
}

// CPUPerRequest is the median over rounds of a server's CPU microseconds
// per request.
func (t ThroughputRow) CPUPerRequest(cpu []float64, requests int) float64 {
	return median(cpu) / float64(requests) * 1e6
}

// BusRow is one idle cluster measured for Window.
type BusRow struct {
	Nodes     int
	System    string // "hearsay" or "redis"
	Heartbeat string // hearsay's --heartbeat; "" for redis
	Window    time.Duration

	Captured bool    // Traffic is valid (the AF_PACKET capture ran)
	Traffic  Traffic // bus packets during the window
	Drops    uint64  // packets the capture missed
	SS       SSDelta // TCP bytes by ss snapshots, the cross-check
	SSOK     bool
	Msgs     int64 // delta of the sum of cluster_stats_messages_sent
	Notes    []string
}

// Setup names the row's system: "hearsay_off", "hearsay_udp", "redis".
func (b BusRow) Setup() string {
	if b.System == "redis" {
		return "redis"
	}
	return "hearsay_" + b.Heartbeat
}

// BytesPerNodeSec is the headline figure: bus payload bytes (TCP and UDP)
// per node per second, from the capture, or from ss (TCP only) without it.
func (b BusRow) BytesPerNodeSec() float64 {
	if b.Captured {
		return b.perNodeSec(b.Traffic.TCPPayload + b.Traffic.UDPPayload)
	}
	return b.perNodeSec(b.SS.Bytes)
}

func (b BusRow) perNodeSec(v uint64) float64 {
	return float64(v) / float64(b.Nodes) / b.Window.Seconds()
}

// runner holds the state of one Run.
type runner struct {
	cfg  Config
	dir  string
	prog io.Writer
}

func (r *runner) step(format string, args ...any) {
	fmt.Fprintf(r.prog, "compare: "+format+"\n", args...)
}

// Run runs the comparison. It stops every process it started and removes
// its temporary directory before it returns, also when ctx is cancelled.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	d := Defaults()
	if cfg.Hearsay == "" {
		cfg.Hearsay = d.Hearsay
	}
	if cfg.RedisServer == "" {
		cfg.RedisServer = d.RedisServer
	}
	if cfg.RedisCLI == "" {
		cfg.RedisCLI = d.RedisCLI
	}
	if cfg.RedisBenchmark == "" {
		cfg.RedisBenchmark = d.RedisBenchmark
	}
	for _, p := range []*int{&cfg.Requests, &cfg.Pipeline, &cfg.Clients, &cfg.Rounds} {
		if *p <= 0 {
			return nil, errors.New("compare: requests, pipeline, clients and rounds must be positive")
		}
	}
	for _, n := range cfg.Sizes {
		if n < 6 || n%2 != 0 {
			return nil, fmt.Errorf("compare: cluster size %d: need an even number of at least 6 (masters + one replica each)", n)
		}
	}
	for _, hb := range cfg.Heartbeats {
		switch hb {
		case "off", "udp", "auto", "xdp":
		default:
			return nil, fmt.Errorf("compare: heartbeat mode %q: want off, udp, auto or xdp", hb)
		}
	}
	if cfg.NodeTimeout <= 0 || cfg.Window <= 0 || cfg.Settle < 0 {
		return nil, errors.New("compare: node timeout and window must be positive, settle not negative")
	}
	prog := cfg.Progress
	if prog == nil {
		prog = io.Discard
	}
	for _, bin := range []*string{&cfg.Hearsay, &cfg.RedisServer, &cfg.RedisCLI, &cfg.RedisBenchmark} {
		p, err := exec.LookPath(*bin)
		if err != nil {
			return nil, fmt.Errorf("compare: %v", err)
		}
		if p, err = filepath.Abs(p); err == nil {
			*bin = p
		}
	}

	res := &Results{Config: cfg, Start: time.Now(), CPUs: runtime.NumCPU(), HearsayRev: GitRev(), LoadStart: LoadAvg()}
	if v, err := childproc.Run(ctx, 5*time.Second, cfg.RedisServer, "--version"); err == nil {
		res.RedisVersion = RedisVersion(v)
	}
	dir, err := os.MkdirTemp("", "hearsay-compare-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// Each phase stops its own processes before the next starts.
	r := &runner{cfg: cfg, dir: dir, prog: prog}

	if !cfg.SkipThroughput {
		if res.Throughput, err = r.throughput(ctx); err != nil {
			return nil, fmt.Errorf("throughput: %w", err)
		}
	}
	if !cfg.SkipBus {
		res.Method = "ss"
		for _, n := range cfg.Sizes {
			setups := [][2]string{}
			// Redis between the hearsay modes, so slow drift in the machine
			// does not favour one system.
			for i, hb := range cfg.Heartbeats {
				setups = append(setups, [2]string{"hearsay", hb})
				if i == 0 {
					setups = append(setups, [2]string{"redis", ""})
				}
			}
			if len(cfg.Heartbeats) == 0 {
				setups = append(setups, [2]string{"redis", ""})
			}
			for _, s := range setups {
				row, err := r.bus(ctx, s[0], s[1], n)
				if err != nil {
					return nil, fmt.Errorf("bus traffic, %d-node %s: %w", n, s[0], err)
				}
				if row.Captured {
					res.Method = "capture"
				}
				res.Bus = append(res.Bus, row)
			}
		}
	}
	res.Elapsed = time.Since(res.Start)
	res.LoadEnd = LoadAvg()
	return res, nil
}

// throughput runs redis-benchmark against one hearsay node owning every
// slot, one standalone redis-server and the ceiling responder, in turn,
// one test at a time so that each test's server CPU is its own.
func (r *runner) throughput(ctx context.Context) ([]ThroughputRow, error) {
	cfg := r.cfg
	base, err := childproc.PortBlock(3)
	if err != nil {
		return nil, err
	}
	hp, rp, cp := base, base+1, base+2
	hdir, rdir := filepath.Join(r.dir, "tp-hearsay"), filepath.Join(r.dir, "tp-redis")
	for _, d := range []string{hdir, rdir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	ps := &procs{}
	defer ps.stopAll()
	r.step("throughput: starting hearsay on %d, redis-server on %d and the ceiling responder on %d", hp, rp, cp)
	h, err := ps.start("hearsay node :"+strconv.Itoa(hp), filepath.Join(hdir, "node.log"), cfg.Hearsay, "node",
		"--port", strconv.Itoa(hp), "--dir", hdir, "--node-timeout", cfg.NodeTimeout.String(),
		"--heartbeat", "off", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	rs, err := ps.start("redis-server :"+strconv.Itoa(rp), filepath.Join(rdir, "redis.log"), cfg.RedisServer,
		"--port", strconv.Itoa(rp), "--bind", "127.0.0.1", "--dir", rdir, "--save", "", "--appendonly", "no")
	if err != nil {
		return nil, err
	}
	ceil, err := startCeiling(cp)
	if err != nil {
		return nil, err
	}
	defer ceil.Stop()
	if err := waitReady(ctx, []int{hp, rp}, []*childproc.Proc{h, rs}); err != nil {
		return nil, err
	}
	// hearsay always runs in cluster mode: one node that owns every slot
	// never redirects, which is what a standalone server does.
	if _, err := respCall(ctx, hp, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		return nil, fmt.Errorf("CLUSTER ADDSLOTSRANGE on hearsay: %v", err)
	}
	if err := waitClusterOK(ctx, []int{hp}, 1, 0, 10*time.Second); err != nil {
		return nil, err
	}

	rows := []ThroughputRow{{Test: "SET"}, {Test: "GET"}}
	systems := []struct {
		name string
		port int
		p    *childproc.Proc // nil for the ceiling, which runs in this process
		cpu  func() (float64, error)
		tp   func(*ThroughputRow) *[]float64
		used func(*ThroughputRow) *[]float64
	}{
		{"hearsay", hp, h, pidCPU(h), func(t *ThroughputRow) *[]float64 { return &t.Hearsay }, func(t *ThroughputRow) *[]float64 { return &t.HearsayCPU }},
		{"redis", rp, rs, pidCPU(rs), func(t *ThroughputRow) *[]float64 { return &t.Redis }, func(t *ThroughputRow) *[]float64 { return &t.RedisCPU }},
		{"ceiling", cp, nil, ceil.CPUSeconds, func(t *ThroughputRow) *[]float64 { return &t.Ceiling }, func(t *ThroughputRow) *[]float64 { return &t.CeilingCPU }},
	}
	timeout := 10*time.Minute + time.Duration(cfg.Requests)*20*time.Microsecond
	for round := 1; round <= cfg.Rounds; round++ {
		for _, sys := range systems {
			for i := range rows {
				tr := &rows[i]
				r.step("throughput: round %d/%d, %s %s", round, cfg.Rounds, sys.name, tr.Test)
				before, err := sys.cpu()
				if err != nil {
					return nil, err
				}
				out, err := childproc.Run(ctx, timeout, cfg.RedisBenchmark, "-h", "127.0.0.1", "-p", strconv.Itoa(sys.port),
					"-t", strings.ToLower(tr.Test), "-n", strconv.Itoa(cfg.Requests), "-P", strconv.Itoa(cfg.Pipeline),
					"-c", strconv.Itoa(cfg.Clients), "--csv")
				if err != nil {
					if sys.p != nil {
						if e := sys.p.Exited(); e != nil {
							return nil, e
						}
					}
					return nil, err
				}
				after, err := sys.cpu()
				if err != nil {
					return nil, err
				}
				res, err := ParseBenchmark(out)
				if err != nil {
					return nil, err
				}
				if len(res) != 1 || res[0].Test != tr.Test {
					return nil, fmt.Errorf("redis-benchmark -t %s against %s printed %+v", tr.Test, sys.name, res)
				}
				*sys.tp(tr) = append(*sys.tp(tr), res[0].RPS)
				*sys.used(tr) = append(*sys.used(tr), after-before)
			}
		}
	}
	return rows, nil
}

// pidCPU reads the CPU time a child has used so far, in seconds.
func pidCPU(p *childproc.Proc) func() (float64, error) {
	return func() (float64, error) {
		return procCPU(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	}
}

// bus starts an n-node cluster of the system, lets it settle and counts
// its bus traffic for the window.
func (r *runner) bus(ctx context.Context, system, hb string, n int) (BusRow, error) {
	cfg := r.cfg
	row := BusRow{Nodes: n, System: system, Heartbeat: hb}
	base, err := childproc.PortBlock(n)
	if err != nil {
		return row, err
	}
	dir, err := os.MkdirTemp(r.dir, fmt.Sprintf("bus-%d-%s%s-", n, system, hb))
	if err != nil {
		return row, err
	}
	ps := &procs{}
	defer func() {
		if k := ps.stopAll(); k > 0 {
			r.step("bus: %d nodes did not stop within %v of SIGTERM and were killed", k, stopTimeout)
		}
	}()
	label := system
	if hb != "" {
		label += " --heartbeat " + hb
	}
	r.step("bus: %d-node %s cluster on ports %d-%d (bus %d-%d)", n, label, base, base+n-1, base+childproc.BusOffset, base+childproc.BusOffset+n-1)
	ports := make([]int, n)
	nodes := make([]*childproc.Proc, n)
	addrs := make([]string, n)
	for i := range ports {
		port := base + i
		ports[i], addrs[i] = port, "127.0.0.1:"+strconv.Itoa(port)
		nd := filepath.Join(dir, strconv.Itoa(port))
		if err := os.Mkdir(nd, 0o755); err != nil {
			return row, err
		}
		var argv []string
		if system == "hearsay" {
			argv = []string{cfg.Hearsay, "node", "--port", strconv.Itoa(port), "--dir", nd,
				"--node-timeout", cfg.NodeTimeout.String(), "--heartbeat", hb, "--log-level", "warn"}
		} else {
			argv = []string{cfg.RedisServer, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", nd,
				"--cluster-enabled", "yes", "--cluster-node-timeout", strconv.FormatInt(cfg.NodeTimeout.Milliseconds(), 10),
				"--cluster-config-file", filepath.Join(nd, "nodes.conf"), "--save", "", "--appendonly", "no"}
		}
		if nodes[i], err = ps.start(system+" :"+strconv.Itoa(port), filepath.Join(nd, "node.log"), argv...); err != nil {
			return row, err
		}
	}
	if err := waitReady(ctx, ports, nodes); err != nil {
		return row, err
	}
	var create []string
	if system == "hearsay" {
		create = append(append([]string{cfg.Hearsay, "cluster", "create"}, addrs...), "--replicas", "1", "--yes")
	} else {
		create = append(append([]string{cfg.RedisCLI, "--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")
	}
	t := time.Now()
	if _, err := childproc.Run(ctx, 3*time.Minute, create...); err != nil {
		return row, err
	}
	if err := waitClusterOK(ctx, ports, n, n/2, 2*time.Minute); err != nil {
		return row, err
	}
	r.step("bus: cluster ok on every node %v after create started; settling %v", time.Since(t).Round(time.Millisecond), cfg.Settle)
	if err := childproc.Sleep(ctx, cfg.Settle); err != nil {
		return row, err
	}

	busLo, busHi := base+childproc.BusOffset, base+childproc.BusOffset+n-1
	capt, err := StartCapture(busLo, busHi)
	if err != nil {
		row.Notes = append(row.Notes, "no packet capture, TCP bytes from ss only: "+err.Error())
	} else {
		defer func() {
			if capt != nil {
				capt.Close()
			}
		}()
		// Let packets queued before the filter was attached drain.
		if err := childproc.Sleep(ctx, 200*time.Millisecond); err != nil {
			return row, err
		}
	}
	msgs0, err := sumMsgsSent(ctx, ports)
	if err != nil {
		return row, err
	}
	ss0, ssErr := ssSnapshot(ctx, busLo, busHi)
	var tr0 Traffic
	if capt != nil {
		tr0, _ = capt.Snapshot()
	}
	t0 := time.Now()
	r.step("bus: measuring for %v", cfg.Window)
	if err := childproc.Sleep(ctx, cfg.Window); err != nil {
		return row, err
	}
	var tr1 Traffic
	if capt != nil {
		tr1, err = capt.Snapshot()
		if err != nil {
			return row, fmt.Errorf("capture: %v", err)
		}
	}
	row.Window = time.Since(t0)
	ss1, ssErr1 := ssSnapshot(ctx, busLo, busHi)
	msgs1, err := sumMsgsSent(ctx, ports)
	if err != nil {
		return row, err
	}
	if capt != nil {
		row.Drops = capt.Close()
		capt = nil
		row.Captured = true
		row.Traffic = tr1.Sub(tr0)
		if row.Drops > 0 {
			row.Notes = append(row.Notes, fmt.Sprintf("capture dropped %d packets; bytes are a lower bound", row.Drops))
		}
	}
	if ssErr == nil && ssErr1 == nil {
		row.SS, row.SSOK = DiffSS(ss0, ss1, busLo, busHi), true
		if row.SS.Gone > 0 {
			row.Notes = append(row.Notes, fmt.Sprintf("ss: %d bus sockets closed during the window; their last bytes are missing from the ss figure", row.SS.Gone))
		}
	} else {
		row.Notes = append(row.Notes, fmt.Sprintf("ss unavailable: %v", errors.Join(ssErr, ssErr1)))
	}
	row.Msgs = msgs1 - msgs0
	// The figure only means "idle cluster" if the cluster stayed whole.
	for _, p := range nodes {
		if err := p.Exited(); err != nil {
			return row, fmt.Errorf("during the window: %v", err)
		}
	}
	if err := waitClusterOK(ctx, ports, n, n/2, 0); err != nil {
		row.Notes = append(row.Notes, "cluster not ok right after the window: "+err.Error())
	}
	if system == "hearsay" && hb != "off" && row.Captured && row.Traffic.UDPPackets == 0 {
		note := "no UDP heartbeat packets seen on the bus ports"
		if logMentions(nodes[0].Log, "not wired") {
			note += " (the node logs that XDP/UDP heartbeats are not wired yet and uses bus pings)"
		}
		row.Notes = append(row.Notes, note)
	}
	return row, nil
}

// waitClusterOK waits until every node reports cluster_state:ok, knows n
// nodes and, when size > 0, counts size slot-owning masters. A zero
// timeout checks once.
func waitClusterOK(ctx context.Context, ports []int, n, size int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := func() error {
			for _, port := range ports {
				m, err := clusterInfo(ctx, port)
				if err != nil {
					return err
				}
				if m["cluster_state"] != "ok" || m["cluster_known_nodes"] != strconv.Itoa(n) ||
					(size > 0 && m["cluster_size"] != strconv.Itoa(size)) {
					return fmt.Errorf("node %d: cluster_state:%s cluster_known_nodes:%s cluster_size:%s, want ok, %d, %d",
						port, m["cluster_state"], m["cluster_known_nodes"], m["cluster_size"], n, size)
				}
			}
			return nil
		}()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not settled after %v: %v", timeout, err)
		}
		if err := childproc.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// sumMsgsSent adds cluster_stats_messages_sent over the nodes.
func sumMsgsSent(ctx context.Context, ports []int) (int64, error) {
	var sum int64
	for _, port := range ports {
		m, err := clusterInfo(ctx, port)
		if err != nil {
			return 0, err
		}
		v, _ := strconv.ParseInt(m["cluster_stats_messages_sent"], 10, 64)
		sum += v
	}
	return sum, nil
}

// clusterInfo returns the parsed CLUSTER INFO of the node on port.
func clusterInfo(ctx context.Context, port int) (map[string]string, error) {
	s, err := respText(ctx, port, "CLUSTER", "INFO")
	if err != nil {
		return nil, fmt.Errorf("node %d: CLUSTER INFO: %v", port, err)
	}
	return ParseInfo(s), nil
}

// ssSnapshot lists the TCP sockets with an end in [lo, hi].
func ssSnapshot(ctx context.Context, lo, hi int) (map[SockKey]SockBytes, error) {
	filter := fmt.Sprintf("( sport >= :%d and sport <= :%d ) or ( dport >= :%d and dport <= :%d )", lo, hi, lo, hi)
	out, err := childproc.Run(ctx, 10*time.Second, "ss", "-tinH", filter)
	if err != nil {
		return nil, err
	}
	return ParseSS(out)
}

func logMentions(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

// LoadAvg returns the 1-minute load average, or "?": other work on the
// machine is the main source of noise in a same-run comparison.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// GitRev is the short commit of the working directory, or "unknown", so a
// report says which code it measured.
func GitRev() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// RedisVersion extracts 7.0.15 from "Redis server v=7.0.15 sha=...".
func RedisVersion(s string) string {
	for _, f := range strings.Fields(s) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return strings.TrimSpace(s)
}
