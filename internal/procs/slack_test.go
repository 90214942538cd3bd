package procs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// childEnv makes the test binary run TestApplyTimerSlack's child half.
const childEnv = "HEARSAY_SLACK_TEST_CHILD"

// TestApplyTimerSlack runs this test binary as a child that applies a 3 ms
// slack, starts more threads, and reports every thread's slack: all must
// have it, the runtime's own threads (started before main) included.
func TestApplyTimerSlack(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		if err := ApplyTimerSlack(3 * time.Millisecond); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for i := 0; i < 4; i++ { // busy goroutines make the runtime add threads
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						time.Sleep(time.Microsecond)
					}
				}
			}()
		}
		time.Sleep(50 * time.Millisecond)
		slacks, err := ThreadSlacks(os.Getpid())
		close(stop)
		wg.Wait()
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		for tid, s := range slacks {
			fmt.Printf("thread %d %d\n", tid, int64(s))
		}
		fmt.Printf("exec marker %q\n", os.Getenv(slackExecEnv))
		comm, _ := os.ReadFile("/proc/self/comm")
		fmt.Printf("comm %s\n", strings.TrimSpace(string(comm)))
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestApplyTimerSlack$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	threads := 0
	for _, line := range strings.Split(string(out), "\n") {
		var tid int
		var slack string
		if n, _ := fmt.Sscanf(line, "thread %d %s", &tid, &slack); n != 2 {
			continue
		}
		threads++
		if slack != "3000000" {
			t.Errorf("thread %d has slack %s ns, want 3000000", tid, slack)
		}
	}
	if threads < 3 {
		t.Fatalf("the child reported %d threads, want the runtime's several:\n%s", threads, out)
	}
	// The kernel truncates a name to 15 bytes, as "procs.test" is not.
	if want := "comm " + filepath.Base(os.Args[0]); !strings.Contains(string(out), want[:min(len(want), len("comm ")+15)]) {
		t.Errorf("the re-executed child is not named after the binary (%q):\n%s", want, out)
	}
	if !strings.Contains(string(out), `exec marker ""`) {
		t.Errorf("the exec marker stayed in the environment:\n%s", out)
	}
}

func TestApplyTimerSlackRefusesNonPositive(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Millisecond} {
		if err := ApplyTimerSlack(d); err == nil {
			t.Errorf("ApplyTimerSlack(%v) accepted", d)
		}
	}
}

// TestApplyTimerSlackStopsWhenExecLosesIt: an image started by
// ApplyTimerSlack that still lacks the slack reports it rather than
// executing itself again.
func TestApplyTimerSlackStopsWhenExecLosesIt(t *testing.T) {
	cur, err := TimerSlack()
	if err != nil {
		t.Fatal(err)
	}
	want := cur + time.Millisecond
	t.Setenv(slackExecEnv, fmt.Sprint(int64(want)))
	if err := ApplyTimerSlack(want); err == nil || !strings.Contains(err.Error(), "after it") {
		t.Fatalf("ApplyTimerSlack with the marker set: %v, want the lost-slack error", err)
	}
}
