package node_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// binary is the hearsay binary built once by TestMain.
var binary string

// procs tracks every child so TestMain can kill leftovers.
var (
	procsMu sync.Mutex
	procs   = map[*proc]struct{}{}
)

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		// Fuzzing runs no process test, and every fuzz worker would
		// otherwise build the binary again.
		os.Exit(m.Run())
	}
	if b := os.Getenv("HEARSAY_TEST_BINARY"); b != "" {
		// A child test run (one re-executed inside its own network
		// namespace) uses its parent's binary.
		binary = b
		code := m.Run()
		killLeftovers()
		os.Exit(code)
	}
	dir, err := os.MkdirTemp("", "hearsay-node-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "hearsay")
	// HEARSAY_TEST_RACE=1 builds the nodes with the race detector, so the
	// process tests also check the runtime's goroutines for data races.
	args := []string{"build", "-o", binary}
	if os.Getenv("HEARSAY_TEST_RACE") != "" {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/hearsay")...)
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building hearsay:", err)
		os.Exit(1)
	}
	code := m.Run()
	killLeftovers()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// killLeftovers kills every child a test left running.
func killLeftovers() {
	procsMu.Lock()
	defer procsMu.Unlock()
	for p := range procs {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// usedPorts keeps this process from handing out a port twice.
var (
	portsMu   sync.Mutex
	usedPorts = map[int]bool{}
)

// freePort picks a client port p in 20000-40000 such that p and p+10000
// (its bus port) are both free now.
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		// Client ports 20000-21999 and bus ports 30000-31999 stay below
		// the kernel's ephemeral range (32768 up), so no outgoing
		// connection of a parallel test can take one between this check
		// and the node's bind.
		p := 20000 + rand.IntN(2000)
		if usedPorts[p] || usedPorts[p+10000] || usedPorts[p-10000] {
			continue
		}
		if !portFree(p) || !portFree(p+10000) {
			continue
		}
		usedPorts[p], usedPorts[p+10000] = true, true
		return p
	}
	t.Fatal("no free port pair")
	return 0
}

func portFree(p int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// proc is one running `hearsay node`.
type proc struct {
	port int
	dir  string
	cmd  *exec.Cmd
	log  string
	rc   *redis.Client
}

// spawnNode starts argv (a hearsay node command line) with its output in a
// log file under dir, registers it for TestMain's cleanup, and kills it and
// checks its log when the test ends.
func spawnNode(t *testing.T, port int, dir string, argv []string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, fmt.Sprintf("node-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{port: port, dir: dir, cmd: cmd, log: logPath}
	procsMu.Lock()
	procs[p] = struct{}{}
	procsMu.Unlock()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT) // a test that failed while it was stopped
		p.kill()
		p.checkLog(t)
	})
	return p
}

func (p *proc) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// startNode starts a node on port with its state in dir and waits until
// it answers PING. extra flags are appended to the command line.
func startNode(t *testing.T, port int, dir string, extra ...string) *proc {
	t.Helper()
	args := append([]string{binary, "node", "--port", strconv.Itoa(port), "--dir", dir,
		"--node-timeout", "1s", "--heartbeat", "off", "--log-level", "info"}, extra...)
	p := spawnNode(t, port, dir, args)
	logPath := p.log
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r, err := rawCommand(p.addr(), "PING"); err == nil && r == "+PONG" {
			return p
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("node on %d did not start:\n%s", port, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a graceful exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.closeClient()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("node %d exited with %v", p.port, err)
		}
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		t.Errorf("node %d did not stop on SIGTERM", p.port)
	}
	procsMu.Lock()
	delete(procs, p)
	procsMu.Unlock()
	p.checkLog(t)
}

// checkLog fails the test if the node's log shows a data race or a panic.
func (p *proc) checkLog(t *testing.T) {
	b, _ := os.ReadFile(p.log)
	for _, bad := range []string{"WARNING: DATA RACE", "panic:"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("node %d log contains %q:\n%s", p.port, bad, b)
		}
	}
}

func (p *proc) kill() {
	p.closeClient()
	procsMu.Lock()
	_, alive := procs[p]
	delete(procs, p)
	procsMu.Unlock()
	if alive {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// rawCommand sends one command over a fresh connection and returns the
// first reply line without its CRLF.
func rawCommand(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// client returns p's go-redis client, created on first use and closed when
// the process is stopped.
func client(_ *testing.T, p *proc) *redis.Client {
	if p.rc == nil {
		p.rc = redis.NewClient(&redis.Options{Addr: p.addr(), Protocol: 2, DialTimeout: time.Second, ReadTimeout: 5 * time.Second})
	}
	return p.rc
}

func (p *proc) closeClient() {
	if p.rc != nil {
		_ = p.rc.Close()
		p.rc = nil
	}
}

// do runs a command and fails the test on error.
func do(t *testing.T, p *proc, args ...any) any {
	t.Helper()
	v, err := client(t, p).Do(context.Background(), args...).Result()
	if err != nil {
		t.Fatalf("%v on %d: %v", args, p.port, err)
	}
	return v
}

// signature is a node's view of the cluster's shape: every node's ID,
// role, master and slots, sorted. Nodes agree when their signatures match.
func signature(nodesText string) (string, bool) {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(nodesText), "\n") {
		f := strings.Fields(l)
		if len(f) < 8 {
			return "", false
		}
		flags := strings.ReplaceAll(f[2], "myself,", "")
		if strings.Contains(flags, "handshake") || strings.Contains(flags, "fail") {
			return "", false
		}
		lines = append(lines, f[0]+" "+f[1]+" "+flags+" "+f[3]+" "+strings.Join(f[8:], " "))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), true
}

// waitAgree waits until every node reports cluster_state:ok, knows all the
// others, and has the same signature; it returns that signature.
func waitAgree(t *testing.T, ps []*proc, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []string
	for {
		sigs := map[string]bool{}
		ok := true
		last = last[:0]
		for _, p := range ps {
			info, err1 := client(t, p).ClusterInfo(context.Background()).Result()
			nodes, err2 := client(t, p).ClusterNodes(context.Background()).Result()
			sig, good := signature(nodes)
			last = append(last, fmt.Sprintf("%d: %v %v\n%s", p.port, err1, err2, nodes))
			if err1 != nil || err2 != nil || !good || !strings.Contains(info, "cluster_state:ok") ||
				strings.Count(strings.TrimSpace(nodes), "\n")+1 != len(ps) {
				ok = false
				break
			}
			sigs[sig] = true
		}
		if ok && len(sigs) == 1 {
			for s := range sigs {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes did not agree within %v:\n%s", timeout, strings.Join(last, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rawPipeline sends several commands on one connection and returns one
// reply line per command (bulk replies as their "$len" header and body).
func rawPipeline(addr string, cmds ...[]string) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	for _, args := range cmds {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	var out []string
	for range cmds {
		line, err := r.ReadString('\n')
		if err != nil {
			return out, err
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "$") && line != "$-1" {
			body, err := r.ReadString('\n')
			if err != nil {
				return out, err
			}
			line += " " + strings.TrimRight(body, "\r\n")
		}
		out = append(out, line)
	}
	return out, nil
}

// stopProc sends SIGSTOP and waits until every thread of the process is
// stopped: the signal is delivered asynchronously, and a thread still
// running could answer one more request.
func stopProc(t *testing.T, p *proc) {
	t.Helper()
	pid := p.cmd.Process.Pid
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		stopped := len(tasks) > 0
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			// The state follows the command name, which is in parentheses.
			if i := bytes.LastIndexByte(b, ')'); i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not stop within 5s of SIGSTOP", pid)
		}
		time.Sleep(time.Millisecond)
	}
}
