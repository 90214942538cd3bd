// Package scale runs N real hearsay nodes and N real redis-server 7 nodes
// on one host, one system at a time, and reports what a cluster of each
// costs when it is idle (issue 10, scope item 3). `make scale` runs it
// (command bench/scale/cmd/scale) for N = 30, 100 and 200.
//
// For each N and each system, in this order: N nodes start on loopback
// (`hearsay node --heartbeat udp` or `redis-server --cluster-enabled yes`,
// node timeout 1000 ms, no persistence, each in its own directory);
// `redis-cli --cluster create <all> --cluster-replicas 0 --cluster-yes`
// joins them, the same command for both; then, after a settle period,
// the harness measures an idle window. The cluster is stopped before the
// next one starts, so two systems never share the CPU while measured.
//
// The figures:
//
//   - create time: how long the redis-cli command ran.
//   - all-known time: from the start of that command until every node
//     reports cluster_known_nodes equal to N and lists no node in handshake
//     (polled every 100 ms on the nodes not yet there, during the create).
//   - idle bus bytes per node per second, TCP and UDP apart: counted in
//     the kernel by nftables counters on the system's bus ports (client
//     port + 10000, where hearsay's UDP heartbeats go too) over the window,
//     divided by N and the window. Bytes are whole IP packets. This needs
//     root (CAP_NET_ADMIN); without it these columns say n/a.
//   - idle CPU per node: utime+stime of every node process
//     (/proc/<pid>/stat) over the window, divided by the window and by N,
//     as a percentage of one core.
//   - context switches per node per second: voluntary plus nonvoluntary
//     switches summed over /proc/<pid>/task/*/status, the same way.
//   - RSS per node: the mean VmRSS at the end of the window.
//
// Every child runs in its own process group with SIGKILL as its
// parent-death signal, and Run stops them, deletes the nftables table and
// removes its temporary directory on every return path, including
// cancellation by SIGINT or SIGTERM in the command. The harness starts no
// child from a goroutine that locks its OS thread (see childproc).
package scale

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
	"sync"
	"syscall"
	"time"

	"github.com/hearsay/hearsay/bench/childproc"
	"github.com/hearsay/hearsay/bench/compare"
	"github.com/hearsay/hearsay/bench/internal/testcluster"
)

// Config is one run. Zero fields take the values of Defaults.
type Config struct {
	// Binaries; bare names are looked up in PATH.
	Hearsay, RedisServer, RedisCLI, Nft string
	// Sizes are the cluster sizes N, each run for every system.
	Sizes []int
	// Systems are "hearsay" and/or "redis", measured in this order.
	Systems []string
	// NodeTimeout is both systems' node timeout.
	NodeTimeout time.Duration
	// Settle is the wait after every node knows all N, before the window.
	Settle time.Duration
	// Window is the idle time measured.
	Window time.Duration
	// KnownTimeout bounds the create and the wait for every node to know
	// all N.
	KnownTimeout time.Duration
	// Progress receives one line per step (nil: discarded).
	Progress io.Writer
}

// Defaults returns the run of issue 10.
func Defaults() Config {
	return Config{
		Hearsay: "bin/hearsay", RedisServer: "redis-server", RedisCLI: "redis-cli", Nft: "nft",
		Sizes: []int{30, 100, 200}, Systems: []string{"hearsay", "redis"},
		NodeTimeout: time.Second, Settle: 10 * time.Second, Window: 20 * time.Second, KnownTimeout: 5 * time.Minute,
	}
}

// Row is one idle cluster measured.
type Row struct {
	System string `json:"system"`
	Nodes  int    `json:"nodes"`
	// CreateS is the redis-cli --cluster create duration, in seconds.
	CreateS float64 `json:"create_s"`
	// AllKnownS is the time from the start of create until every node knew
	// all N, in seconds.
	AllKnownS float64 `json:"all_known_s"`
	// WindowS is the measured window as it ran, in seconds.
	WindowS float64 `json:"window_s"`
	// Counted says the kernel counted the bus bytes (the Bus fields hold).
	Counted bool `json:"kernel_counted"`
	// Bus is the window's total on the cluster's bus ports.
	Bus Bytes `json:"bus"`
	// TCPBytesPerNodeS and UDPBytesPerNodeS are Bus per node per second.
	TCPBytesPerNodeS float64 `json:"tcp_bytes_per_node_s"`
	UDPBytesPerNodeS float64 `json:"udp_bytes_per_node_s"`
	// CPUPercentPerNode is per node, as a percentage of one core.
	CPUPercentPerNode float64 `json:"cpu_percent_per_node"`
	// CtxSwitchesPerNodeS is context switches per node per second.
	CtxSwitchesPerNodeS float64 `json:"ctx_switches_per_node_s"`
	// RSSBytesPerNode is the mean VmRSS at the end of the window.
	RSSBytesPerNode float64 `json:"rss_bytes_per_node"`
	// PSSBytesPerNode and AnonBytesPerNode are the mean Pss and RssAnon at
	// the end of the window (see ProcSample).
	PSSBytesPerNode  float64 `json:"pss_bytes_per_node"`
	AnonBytesPerNode float64 `json:"anon_bytes_per_node"`
	// ThreadsPerNode is the mean number of OS threads at the end.
	ThreadsPerNode float64 `json:"threads_per_node"`
	// Notes are anything that qualifies the figures.
	Notes []string `json:"notes,omitempty"`
	// Failed is why the system could not be measured at this size (for
	// example its cluster did not form in time); the figures are then
	// zero. A failure is a result, so the run goes on with the next row.
	Failed string `json:"failed,omitempty"`
}

// Report is everything a run measured.
type Report struct {
	Start        time.Time `json:"start"`
	ElapsedS     float64   `json:"elapsed_s"`
	HearsayRev   string    `json:"hearsay_rev"`
	RedisVersion string    `json:"redis_version"`
	CPUs         int       `json:"cpus"`
	// LoadStart and LoadEnd are /proc/loadavg's 1-minute figure.
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
	// Counting says how bus bytes were counted, or why they were not.
	Counting     string  `json:"counting"`
	NodeTimeoutS float64 `json:"node_timeout_s"`
	SettleS      float64 `json:"settle_s"`
	WindowS      float64 `json:"window_s"`
	Rows         []Row   `json:"rows"`
}

// Run runs every size for every system and returns the report. On error
// the report holds the rows measured until then. It stops every process it
// started, deletes its nftables table and removes its temporary directory
// before it returns, also when ctx is cancelled.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := fill(cfg)
	if err != nil {
		return nil, err
	}
	prog := cfg.Progress
	if prog == nil {
		prog = io.Discard
	}
	step := func(format string, args ...any) { fmt.Fprintf(prog, "scale: "+format+"\n", args...) }
	// N nodes of each need some 2N descriptors for bus links; the children
	// inherit this process's soft limit once it is set explicitly (the Go
	// runtime otherwise restores the original soft limit in children).
	if err := raiseNofile(); err != nil {
		step("could not raise RLIMIT_NOFILE: %v", err)
	}
	rep := &Report{Start: time.Now(), HearsayRev: compare.GitRev(), CPUs: runtime.NumCPU(), LoadStart: compare.LoadAvg(),
		NodeTimeoutS: cfg.NodeTimeout.Seconds(), SettleS: cfg.Settle.Seconds(), WindowS: cfg.Window.Seconds()}
	if v, err := childproc.Run(ctx, 5*time.Second, cfg.RedisServer, "--version"); err == nil {
		rep.RedisVersion = compare.RedisVersion(v)
	}
	dir, err := os.MkdirTemp("", "hearsay-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	var ctr *counter
	switch nft, lookErr := lookNft(cfg.Nft); {
	case os.Geteuid() != 0:
		rep.Counting = "not counted: nftables counters need root (run as root for the TCP and UDP bus bytes)"
	case lookErr != nil:
		rep.Counting = "not counted: " + lookErr.Error()
	default:
		if ctr, err = newCounter(nft, dir); err != nil {
			rep.Counting = "not counted: nft failed: " + err.Error()
			ctr = nil
		} else {
			rep.Counting = "nftables counters (table inet " + Table + ", output hook) on the bus ports, whole IP packets"
			defer func() {
				if err := ctr.close(); err != nil {
					step("deleting nftables table %s: %v", Table, err)
				}
			}()
		}
	}
	if ctr == nil {
		step("bus bytes will not be measured: %s", rep.Counting)
	}
	m := &measurer{cfg: cfg, dir: dir, ctr: ctr, step: step, hz: childproc.ClockTicks()}
	defer func() {
		rep.ElapsedS = time.Since(rep.Start).Seconds()
		rep.LoadEnd = compare.LoadAvg()
	}()
	var failed []error
	for _, n := range cfg.Sizes {
		for _, sys := range cfg.Systems {
			row, err := m.measure(ctx, sys, n)
			if err != nil {
				if ctx.Err() != nil {
					return rep, err
				}
				err = fmt.Errorf("%d-node %s: %w", n, sys, err)
				failed = append(failed, err)
				row = Row{System: sys, Nodes: n, Failed: childproc.Clip(err.Error(), 300)}
			}
			rep.Rows = append(rep.Rows, row)
		}
	}
	return rep, errors.Join(failed...)
}

// fill applies the defaults, checks the config and resolves the binaries.
func fill(cfg Config) (Config, error) {
	d := Defaults()
	for _, f := range []struct {
		v *string
		d string
	}{
		{&cfg.Hearsay, d.Hearsay}, {&cfg.RedisServer, d.RedisServer}, {&cfg.RedisCLI, d.RedisCLI}, {&cfg.Nft, d.Nft},
	} {
		if *f.v == "" {
			*f.v = f.d
		}
	}
	if cfg.Sizes == nil {
		cfg.Sizes = d.Sizes
	}
	if cfg.Systems == nil {
		cfg.Systems = d.Systems
	}
	for _, f := range []struct{ v, d *time.Duration }{
		{&cfg.NodeTimeout, &d.NodeTimeout}, {&cfg.Settle, &d.Settle}, {&cfg.Window, &d.Window}, {&cfg.KnownTimeout, &d.KnownTimeout},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	for _, n := range cfg.Sizes {
		// redis-cli --cluster create wants at least three masters.
		if n < 3 {
			return cfg, fmt.Errorf("cluster size %d: redis-cli --cluster create needs at least 3 nodes", n)
		}
	}
	for _, s := range cfg.Systems {
		if s != "hearsay" && s != "redis" {
			return cfg, fmt.Errorf("system %q: want hearsay or redis", s)
		}
	}
	if cfg.NodeTimeout < 0 || cfg.Window < 0 || cfg.Settle < 0 || cfg.KnownTimeout < 0 {
		return cfg, errors.New("durations must be positive")
	}
	bins := []*string{&cfg.RedisCLI}
	for _, s := range cfg.Systems {
		bins = append(bins, map[string]*string{"hearsay": &cfg.Hearsay, "redis": &cfg.RedisServer}[s])
	}
	for _, bin := range bins {
		p, err := exec.LookPath(*bin)
		if err != nil {
			return cfg, fmt.Errorf("%v", err)
		}
		if p, err = filepath.Abs(p); err == nil {
			*bin = p
		}
	}
	return cfg, nil
}

// lookNft finds nft, which lives in /usr/sbin, outside many users' PATH.
func lookNft(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	if p, err2 := exec.LookPath("/usr/sbin/" + name); err2 == nil {
		return p, nil
	}
	return "", err
}

// raiseNofile sets the soft open-file limit to the hard one.
func raiseNofile() error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	l.Cur = l.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}

// measurer holds the state shared by the measurements of one Run.
type measurer struct {
	cfg  Config
	dir  string
	ctr  *counter // nil: bus bytes not counted
	step func(format string, args ...any)
	hz   uint64 // clock ticks per second of /proc/<pid>/stat
}

// measure starts an n-node cluster of sys, creates it, waits until every
// node knows all n, lets it settle and measures the idle window. The
// cluster is stopped before it returns.
func (m *measurer) measure(ctx context.Context, sys string, n int) (Row, error) {
	cfg := m.cfg
	row := Row{System: sys, Nodes: n}
	dir, err := os.MkdirTemp(m.dir, fmt.Sprintf("%s-%d-", sys, n))
	if err != nil {
		return row, err
	}
	m.step("%d %s nodes: starting", n, sys)
	c, err := testcluster.Launch(testcluster.Options{System: sys, Hearsay: cfg.Hearsay, Server: cfg.RedisServer, CLI: cfg.RedisCLI,
		Dir: dir, NodeTimeout: cfg.NodeTimeout, Heartbeat: "udp"}, n)
	if err != nil {
		return row, err
	}
	defer func() {
		m.step("%d %s nodes: stopping", n, sys)
		if k := childproc.StopAll(5*time.Second, c.Procs...); k > 0 {
			m.step("%d %s nodes: %d did not stop within 5s of SIGTERM and were killed", n, sys, k)
		}
		for _, cl := range c.Clients {
			_ = cl.Close()
		}
	}()
	lo, hi := c.Ports[0]+childproc.BusOffset, c.Ports[n-1]+childproc.BusOffset
	m.step("%d %s nodes: ports %d-%d (bus %d-%d); redis-cli --cluster create --cluster-replicas 0", n, sys, c.Ports[0], c.Ports[n-1], lo, hi)

	// The poll runs alongside the create: redis-cli itself waits for the
	// join, so a node may know all n before the command returns.
	t0 := time.Now()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var known time.Duration
	var knownErr error
	var wg sync.WaitGroup
	wg.Go(func() { known, knownErr = allKnown(pctx, c, n, t0, cfg.KnownTimeout) })
	// redis-cli waits for the join without a limit of its own.
	cctx, ccancel := context.WithTimeout(ctx, cfg.KnownTimeout)
	create, err := c.Create(cctx, cfg.RedisCLI, 0)
	ccancel()
	if err != nil {
		if cctx.Err() != nil {
			err = fmt.Errorf("redis-cli --cluster create did not finish within %v: %w", cfg.KnownTimeout, err)
		}
		cancel()
		wg.Wait()
		return row, errors.Join(err, exitedAny(c))
	}
	wg.Wait()
	if knownErr != nil {
		return row, errors.Join(fmt.Errorf("not every node knew all %d: %w", n, knownErr), exitedAny(c))
	}
	row.CreateS, row.AllKnownS = create.Seconds(), known.Seconds()
	m.step("%d %s nodes: create %.2fs, every node knows all %d after %.2fs; settling %v", n, sys, row.CreateS, n, row.AllKnownS, cfg.Settle)
	if err := childproc.Sleep(ctx, cfg.Settle); err != nil {
		return row, err
	}

	if m.ctr != nil {
		if err := m.ctr.watch(lo, hi); err != nil {
			return row, err
		}
	}
	m.step("%d %s nodes: measuring %v idle", n, sys, cfg.Window)
	var b0, b1 Bytes
	if m.ctr != nil {
		if b0, err = m.ctr.read(); err != nil {
			return row, err
		}
	}
	s0, err := m.sampleAll(c)
	if err != nil {
		return row, err
	}
	w0 := time.Now()
	if err := childproc.Sleep(ctx, cfg.Window); err != nil {
		return row, err
	}
	s1, err := m.sampleAll(c)
	if err != nil {
		return row, errors.Join(err, exitedAny(c))
	}
	if m.ctr != nil {
		if b1, err = m.ctr.read(); err != nil {
			return row, err
		}
	}
	win := time.Since(w0)
	row.WindowS = win.Seconds()
	per := func(v float64) float64 { return v / float64(n) / win.Seconds() }
	var cpu, ctxs, rss, pss, anon, threads float64
	for i := range s0 {
		cpu += float64(s1[i].CPUTicks - s0[i].CPUTicks)
		// A thread that exited in the window takes its switches with it.
		ctxs += float64(int64(s1[i].CtxSwitches - s0[i].CtxSwitches))
		rss += float64(s1[i].RSSBytes)
		pss += float64(s1[i].PSSBytes)
		anon += float64(s1[i].AnonBytes)
		threads += float64(s1[i].Threads)
	}
	row.CPUPercentPerNode = per(cpu/float64(m.hz)) * 100
	row.CtxSwitchesPerNodeS = per(ctxs)
	row.RSSBytesPerNode = rss / float64(n)
	row.PSSBytesPerNode, row.AnonBytesPerNode = pss/float64(n), anon/float64(n)
	row.ThreadsPerNode = threads / float64(n)
	if m.ctr != nil {
		row.Counted, row.Bus = true, b1.Sub(b0)
		row.TCPBytesPerNodeS, row.UDPBytesPerNodeS = per(float64(row.Bus.TCPBytes)), per(float64(row.Bus.UDPBytes))
		if sys == "hearsay" && row.Bus.UDPPackets == 0 {
			row.Notes = append(row.Notes, "no UDP packets on the bus ports: the heartbeats did not run over UDP")
		}
	}
	// The figures describe an idle, whole cluster only if it stayed one.
	if err := stillWhole(ctx, c, n); err != nil {
		row.Notes = append(row.Notes, "after the window: "+err.Error())
	}
	bus := "bus bytes not counted"
	if row.Counted {
		bus = fmt.Sprintf("tcp %.0f B/node/s, udp %.0f B/node/s", row.TCPBytesPerNodeS, row.UDPBytesPerNodeS)
	}
	m.step("%d %s nodes: %s, cpu %.2f%%, %.0f ctx switches/node/s, rss %.1f MiB, %.1f threads/node",
		n, sys, bus, row.CPUPercentPerNode, row.CtxSwitchesPerNodeS, row.RSSBytesPerNode/(1<<20), row.ThreadsPerNode)
	return row, nil
}

// sampleAll samples every node process, in port order.
func (m *measurer) sampleAll(c *testcluster.Cluster) ([]ProcSample, error) {
	out := make([]ProcSample, len(c.Procs))
	for i, p := range c.Procs {
		s, err := SampleProc("/proc", p.Cmd.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p.Name, err)
		}
		out[i] = s
	}
	return out, nil
}

// allKnown polls until every node reports cluster_known_nodes n and lists
// no node in handshake, and returns the time since t0. A node that got
// there is not asked again, so the poll's own load shrinks as the cluster
// forms.
func allKnown(ctx context.Context, c *testcluster.Cluster, n int, t0 time.Time, timeout time.Duration) (time.Duration, error) {
	want := strconv.Itoa(n)
	left := make(map[int]bool, n)
	for i := range c.Clients {
		left[i] = true
	}
	deadline := t0.Add(timeout)
	for {
		for i := range left {
			cl := c.Clients[i]
			info, err := cl.ClusterInfo(ctx).Result()
			if err != nil || compare.ParseInfo(info)["cluster_known_nodes"] != want {
				continue
			}
			// cluster_known_nodes counts nodes still in handshake, which a
			// MEET creates under a random ID, so confirm with the list.
			nodes, err := cl.ClusterNodes(ctx).Result()
			if err == nil && !strings.Contains(nodes, "handshake") && strings.Count(strings.TrimSpace(nodes), "\n")+1 == n {
				delete(left, i)
			}
		}
		if len(left) == 0 {
			return time.Since(t0), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d nodes did not within %v", len(left), n, timeout)
		}
		if err := childproc.Sleep(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// stillWhole checks that every node is alive, reports cluster_state:ok and
// knows all n.
func stillWhole(ctx context.Context, c *testcluster.Cluster, n int) error {
	if err := exitedAny(c); err != nil {
		return err
	}
	for i, cl := range c.Clients {
		info, err := cl.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("node %d: CLUSTER INFO: %v", c.Ports[i], err)
		}
		m := compare.ParseInfo(info)
		if m["cluster_state"] != "ok" || m["cluster_known_nodes"] != strconv.Itoa(n) {
			return fmt.Errorf("node %d: cluster_state:%s cluster_known_nodes:%s, want ok and %d",
				c.Ports[i], m["cluster_state"], m["cluster_known_nodes"], n)
		}
	}
	return nil
}

// exitedAny returns the Exited error of the first node process that has
// exited, or nil.
func exitedAny(c *testcluster.Cluster) error {
	for _, p := range c.Procs {
		if err := p.Exited(); err != nil {
			return err
		}
	}
	return nil
}
