package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/ring"
)

// idleWakeupBound is the most voluntary context switches a second an idle
// node of a 3-node cluster may make. It is generous, about four times the
// 104-119 it made with the batched raw-syscall UDP reader (144 before it),
// measured with the machine's load average at 90, and far below the 2,800
// that a fixed 20 ms bus tick with the Go runtime's default GOMAXPROCS
// cost measured the same way, so it catches a node that wakes on a timer
// of its own again, not a slow machine.
const idleWakeupBound = 450

// An idle node sleeps until its core's next deadline: measured from the
// kernel's counters of its threads' voluntary context switches.
func TestIdleNodeWakeups(t *testing.T) {
	testenv.SkipShort(t, "starts 3 node processes and measures them idle for 3 s")
	ps := make([]*proc, 3)
	for i := range ps {
		ps[i] = startNode(t, freePort(t), t.TempDir(), "--heartbeat", "udp")
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
	time.Sleep(2 * time.Second) // handshakes and the first syncs settle
	pid := ps[0].cmd.Process.Pid
	before := voluntarySwitches(t, pid)
	const window = 3 * time.Second
	time.Sleep(window)
	rate := float64(voluntarySwitches(t, pid)-before) / window.Seconds()
	t.Logf("idle node: %.0f voluntary context switches a second (bound %d)", rate, idleWakeupBound)
	if rate > idleWakeupBound {
		t.Fatalf("an idle node made %.0f voluntary context switches a second, more than %d: something wakes it on a fixed timer", rate, idleWakeupBound)
	}
}

// voluntarySwitches sums voluntary_ctxt_switches over every thread of pid.
func voluntarySwitches(t *testing.T, pid int) int64 {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of %d: %v", pid, err)
	}
	var sum int64
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that exited
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					t.Fatalf("%s: %q: %v", f, line, err)
				}
				sum += n
			}
		}
	}
	return sum
}
