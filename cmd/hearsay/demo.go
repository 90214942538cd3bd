package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hearsay/hearsay/bench/childproc"
	"github.com/hearsay/hearsay/node/admin"
)

func init() {
	subcommands["demo"] = subcommand{
		summary: "run a local 6-node cluster (3 masters, 3 replicas) until Ctrl-C",
		run:     runDemo,
	}
}

// demoStopTimeout is how long a child gets to exit after SIGTERM before it
// is killed.
const demoStopTimeout = 5 * time.Second

func runDemo(args []string) int {
	fs := flag.NewFlagSet("hearsay demo", flag.ContinueOnError)
	basePort := fs.Int("base-port", 7000, "client port of the first node; node i listens on base-port+i (bus: +10000)")
	nodes := fs.Int("nodes", 6, "number of nodes")
	replicas := fs.Int("replicas", 1, "replicas per master")
	timeout := fs.Duration("node-timeout", 2*time.Second, "node timeout passed to every node")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "hearsay demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *basePort < 1 || demoHTTPPort(*basePort, *nodes) > 65535 {
		fmt.Fprintf(os.Stderr, "hearsay demo: --base-port %d leaves no room for %d nodes, their bus ports (+10000) and the web view\n", *basePort, *nodes)
		return 2
	}
	if _, err := admin.MakePlan(demoAddrs(*basePort, *nodes), *replicas); err != nil {
		fmt.Fprintf(os.Stderr, "hearsay demo: --nodes %d --replicas %d: %v\n", *nodes, *replicas, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d := &demo{base: *basePort, n: *nodes, replicas: *replicas, nodeTimeout: *timeout,
		p: newPrinter(os.Stdout, detectMode(os.Stdout)), stderr: os.Stderr}
	return d.run(ctx)
}

// demoHTTPPort is the web view's port (the first node's --http): the one
// after the last bus port.
func demoHTTPPort(base, n int) int { return base + n + 10000 }

func demoAddrs(base, n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(base+i)
	}
	return addrs
}

type demo struct {
	base, n, replicas int
	nodeTimeout       time.Duration
	p                 *printer
	stderr            io.Writer

	dir      string
	children []*child
}

// child is one node process and its client port.
type child struct {
	port int
	*childproc.Proc
}

func (d *demo) fail(format string, args ...any) int {
	d.p.endBar()
	fmt.Fprintf(d.stderr, "hearsay demo: "+format+"\n", args...)
	return 1
}

func (d *demo) run(ctx context.Context) int {
	// Every port must be free before anything starts.
	for i := 0; i < d.n; i++ {
		for _, port := range []int{d.base + i, d.base + i + 10000} {
			if err := childproc.PortFree(port); err != nil {
				return d.fail("port %d is busy (%v); stop what uses it, or pick other ports with --base-port", port, err)
			}
		}
	}
	if port := demoHTTPPort(d.base, d.n); childproc.PortFree(port) != nil {
		return d.fail("port %d (the web view) is busy; stop what uses it, or pick other ports with --base-port", port)
	}
	exe, err := os.Executable()
	if err != nil {
		return d.fail("cannot find my own binary: %v", err)
	}
	d.dir, err = os.MkdirTemp("", "hearsay-demo-")
	if err != nil {
		return d.fail("%v", err)
	}
	defer d.cleanup()

	// One secret for the whole cluster, as a real deployment has: the
	// nodes authenticate every bus frame with it, so even on loopback
	// nothing but the demo's own nodes can talk to their buses.
	if err := d.makeSecret(); err != nil {
		return d.fail("making the cluster secret: %v", err)
	}
	d.p.headf("Starting %d nodes on ports %d-%d (data and logs in %s)", d.n, d.base, d.base+d.n-1, d.dir)
	for i := 0; i < d.n; i++ {
		if err := d.start(exe, d.base+i); err != nil {
			return d.fail("%v", err)
		}
	}
	for _, c := range d.children {
		if err := d.waitReady(ctx, c); err != nil {
			return d.fail("%v", err)
		}
	}

	addrs := demoAddrs(d.base, d.n)
	d.p.headf("Creating the cluster: %d masters, %d replica(s) each", d.n/(d.replicas+1), d.replicas)
	tool := &admin.Tool{Wait: 30 * time.Second, Progress: d.p.step, Count: d.p.count}
	if _, err := tool.Create(ctx, addrs, d.replicas); err != nil {
		if ctx.Err() != nil {
			return 1
		}
		return d.fail("creating the cluster: %v", err)
	}
	rep, err := tool.Check(ctx, addrs[0])
	if err != nil {
		return d.fail("checking the cluster: %v", err)
	}
	d.p.line("")
	printCluster(d.p, rep.Cluster)
	printVerdict(d.p, rep)
	fmt.Fprintln(d.p.w)
	fmt.Fprintf(d.p.w, "web view:     http://127.0.0.1:%d/\n", demoHTTPPort(d.base, d.n))
	fmt.Fprintf(d.p.w, "connect with: redis-cli -c -p %d\n", d.base)
	fmt.Fprintf(d.p.w, "check with:   %s cluster check 127.0.0.1:%d\n", os.Args[0], d.base)
	fmt.Fprintln(d.p.w, "Press Ctrl-C to stop the cluster.")

	// Run until a signal, or until a node dies on its own.
	exited := make(chan *child, len(d.children))
	for _, c := range d.children {
		go func() {
			<-c.Done
			exited <- c
		}()
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(d.p.w)
		return 0
	case c := <-exited:
		return d.fail("node %d exited unexpectedly (%v); its log:\n%s", c.port, c.Err, childproc.Tail(c.Log, 20))
	}
}

// secretFile is the cluster secret the demo's nodes share.
func (d *demo) secretFile() string { return filepath.Join(d.dir, "cluster.secret") }

// makeSecret writes 32 random bytes to secretFile, readable by this user
// only.
func (d *demo) makeSecret() error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	return os.WriteFile(d.secretFile(), b, 0o600)
}

func (d *demo) start(exe string, port int) error {
	dir := filepath.Join(d.dir, strconv.Itoa(port))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	// Own process group: Ctrl-C reaches the demo only, which then stops the
	// children in order.
	argv := []string{exe, "node", "--port", strconv.Itoa(port), "--dir", dir, "--node-timeout", d.nodeTimeout.String(), "--log-level", "warn",
		"--cluster-secret-file", d.secretFile()}
	if port == d.base {
		// The first node serves the web view (loopback only).
		argv = append(argv, "--http", "127.0.0.1:"+strconv.Itoa(demoHTTPPort(d.base, d.n)))
	}
	p, err := childproc.Start("node "+strconv.Itoa(port), filepath.Join(dir, "node.log"), argv...)
	if err != nil {
		return err
	}
	d.children = append(d.children, &child{port, p})
	return nil
}

// waitReady waits until the child accepts connections on its client port.
func (d *demo) waitReady(ctx context.Context, c *child) error {
	deadline := time.Now().Add(15 * time.Second)
	addr := "127.0.0.1:" + strconv.Itoa(c.port)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-c.Done:
			return fmt.Errorf("node %d exited before accepting connections (%v); its log:\n%s", c.port, c.Err, childproc.Tail(c.Log, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %d does not accept connections after 15s; its log:\n%s", c.port, childproc.Tail(c.Log, 20))
		}
	}
}

// cleanup stops every child (SIGTERM, then SIGKILL after demoStopTimeout)
// and removes the temporary directory.
func (d *demo) cleanup() {
	procs := make([]*childproc.Proc, len(d.children))
	for i, c := range d.children {
		procs[i] = c.Proc
	}
	killed := childproc.StopAll(demoStopTimeout, procs...)
	if len(d.children) > 0 {
		msg := fmt.Sprintf("stopped %d nodes", len(d.children))
		if killed > 0 {
			msg += fmt.Sprintf(" (%d killed after %v)", killed, demoStopTimeout)
		}
		d.p.step(msg)
	}
	if d.dir != "" {
		if err := os.RemoveAll(d.dir); err != nil {
			fmt.Fprintf(d.stderr, "hearsay demo: removing %s: %v\n", d.dir, err)
		} else {
			d.p.step("removed " + d.dir)
		}
	}
}
