package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hearsay/hearsay/bench/childproc"
	"github.com/hearsay/hearsay/internal/procs"
	"github.com/hearsay/hearsay/internal/testenv"
)

// TestDemo runs `hearsay demo` as a user would: it waits for the cluster
// table, checks the cluster with `hearsay cluster check`, stops the demo
// with SIGINT and checks that the temp dirs are gone.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("process test; skipped with -short")
	}
	bin := hearsayBinary(t)
	base := 0
	for try := 0; try < 50 && base == 0; try++ {
		// 18000-19899 (bus 28000-29899): below the ephemeral range and
		// apart from the ranges the node and compare tests use.
		b := 18000 + rand.IntN(1900)
		ok := true
		for i := 0; i < 6 && ok; i++ {
			ok = childproc.PortFree(b+i) == nil && childproc.PortFree(b+i+10000) == nil
		}
		ok = ok && childproc.PortFree(b+6+10000) == nil // the web view
		if ok {
			base = b
		}
	}
	if base == 0 {
		testenv.Skipf(t, "no 6 free consecutive loopback ports found")
	}
	cmd := exec.Command(bin, "demo", "--base-port", fmt.Sprint(base), "--node-timeout", "1s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out []string
	timeout := time.After(60 * time.Second)
	for ready := false; !ready; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited early:\n%s\nstderr: %s", strings.Join(out, "\n"), stderr.String())
			}
			out = append(out, l)
			ready = l == fmt.Sprintf("connect with: redis-cli -c -p %d", base)
		case <-timeout:
			t.Fatalf("no 'connect with' line after 60s:\n%s\nstderr: %s", strings.Join(out, "\n"), stderr.String())
		}
	}
	text := strings.Join(out, "\n")
	if n := len(regexp.MustCompile(`(?m)^127\.0\.0\.1:\d+ +[0-9a-f]{8} +master `).FindAllString(text, -1)); n != 3 {
		t.Errorf("%d master rows in the table, want 3:\n%s", n, text)
	}
	web := fmt.Sprintf("web view:     http://127.0.0.1:%d/", base+6+10000)
	if !strings.Contains(text, web) {
		t.Errorf("no %q line:\n%s", web, text)
	} else if resp, err := http.Get(strings.TrimSpace(strings.TrimPrefix(web, "web view:")) + "api/view"); err != nil {
		t.Errorf("web view: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("web view /api/view: %s", resp.Status)
		}
	}
	// Each node process runs with the default timer slack on every thread
	// (re-executed to get it), or, on a host where its loops get more than
	// one P, with the slack it inherited.
	wantSlack, _ := effectiveTimerSlack(timerSlackFor(procs.Planned(max(1, runtime.NumCPU()/2))), time.Second)
	if wantSlack == 0 {
		var err error
		if wantSlack, err = procs.TimerSlack(); err != nil {
			t.Fatal(err)
		}
	}
	nodes := childPIDs(t, cmd.Process.Pid)
	if len(nodes) != 6 {
		t.Errorf("the demo has %d child processes, want 6 nodes", len(nodes))
	}
	for _, pid := range nodes {
		// Executing itself again kept the process's name.
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || strings.TrimSpace(string(comm)) != "hearsay" {
			t.Errorf("node pid %d is named %q (%v), want hearsay", pid, comm, err)
		}
		slacks, err := procs.ThreadSlacks(pid)
		if err != nil {
			t.Fatal(err)
		}
		for tid, ns := range slacks {
			if ns != wantSlack {
				t.Errorf("node pid %d thread %d: timer slack %d ns, want %d", pid, tid, int64(ns), int64(wantSlack))
			}
		}
	}
	if !strings.Contains(text, "[OK] 6 nodes agree") {
		t.Errorf("no agreement line:\n%s", text)
	}
	dir := regexp.MustCompile(`data and logs in (\S+)\)`).FindStringSubmatch(text)
	if dir == nil {
		t.Fatalf("no temp dir in the output:\n%s", text)
	}
	// The nodes share a secret only this user can read, so a forged
	// frame on their buses is refused.
	if st, err := os.Stat(filepath.Join(dir[1], "cluster.secret")); err != nil || st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Errorf("cluster.secret: %v %v", st, err)
	}

	check, err := exec.Command(bin, "cluster", "check", fmt.Sprintf("127.0.0.1:%d", base+4)).CombinedOutput()
	if err != nil || !strings.Contains(string(check), "all 16384 slots covered") {
		t.Errorf("cluster check: %v\n%s", err, check)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("demo exit after SIGINT: %v; stderr: %s", err, stderr.String())
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still there after the demo stopped (%v)", dir[1], err)
	}
	for i := 0; i < 6; i++ {
		if err := childproc.PortFree(base + i); err != nil {
			t.Errorf("port %d still in use after the demo stopped: %v", base+i, err)
		}
	}
}

// childPIDs lists the processes that any thread of pid started.
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range strings.Fields(string(b)) {
			var p int
			fmt.Sscan(w, &p)
			out = append(out, p)
		}
	}
	return out
}
