package procs

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Timer slack is how late the kernel may fire a thread's timers so that it
// can wake for several at once (50 µs by default). An idle node's wakeups
// are mostly the runtime's monitor thread (sysmon): while any P is busy it
// sleeps 20 µs at a time, and each of those sleeps is a context switch. With
// a slack of a few milliseconds those sleeps stretch to the slack, so a
// node that is busy for a millisecond at each heartbeat round wakes the
// monitor once or twice instead of about twenty times. Every timer of the
// process may then fire up to the slack late; I/O still wakes at once.

// slackExecEnv marks the process image that ApplyTimerSlack started, so a
// kernel that drops the slack across exec cannot make it loop.
const slackExecEnv = "HEARSAY_TIMER_SLACK_EXEC"

// TimerSlack returns the calling thread's timer slack.
func TimerSlack() (time.Duration, error) {
	ns, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("timer slack: %w", err)
	}
	return time.Duration(ns), nil
}

// ThreadSlacks returns the timer slack of every thread of process pid, by
// thread ID. Linux shows a thread's slack under /proc/<tid> only, not
// under /proc/<pid>/task/<tid>.
func ThreadSlacks(pid int) (map[int]time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, fmt.Errorf("threads of %d: %w", pid, err)
	}
	out := make(map[int]time.Duration, len(tasks))
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", tid))
		if err != nil {
			return nil, err
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("thread %d: timerslack_ns %q: %w", tid, b, err)
		}
		out[tid] = time.Duration(ns)
	}
	return out, nil
}

// ApplyTimerSlack gives every thread of the process the timer slack d. A
// thread passes its slack to the threads it creates and execve keeps it,
// but the Go runtime starts its own threads before main runs, and setting
// another thread's slack needs CAP_SYS_NICE. So unless this thread has d
// already, ApplyTimerSlack sets it here and executes the binary again with
// the same arguments and environment: the new image's threads all descend
// from this one. It returns only when the slack is in place (nil) or could
// not be (an error; the process runs on with the slack it has).
func ApplyTimerSlack(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("timer slack: %v is not positive", d)
	}
	cur, err := TimerSlack()
	if err != nil {
		return err
	}
	if cur == d {
		os.Unsetenv(slackExecEnv) // children start afresh
		return nil
	}
	if os.Getenv(slackExecEnv) == strconv.FormatInt(int64(d), 10) {
		return fmt.Errorf("timer slack: set to %v before exec, found %v after it", d, cur)
	}
	// The slack is the thread's, and exec keeps the thread that calls it:
	// both must happen on one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(d), 0, 0, 0); err != nil {
		return fmt.Errorf("timer slack: %w", err)
	}
	env := append(os.Environ(), slackExecEnv+"="+strconv.FormatInt(int64(d), 10))
	err = syscall.Exec(selfExe(), os.Args, env)
	return fmt.Errorf("timer slack: exec: %w", err)
}

// selfExe is the path to execute this binary again by. The kernel names a
// process after the file it executes, so the binary's own path keeps
// "hearsay" in ps and top; /proc/self/exe (which would name it "exe") is
// the fallback when that path no longer holds this very file, as after an
// upgrade that replaced it.
func selfExe() string {
	const self = "/proc/self/exe"
	p, err := os.Executable()
	if err != nil {
		return self
	}
	a, errA := os.Stat(p)
	b, errB := os.Stat(self)
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		return self
	}
	return p
}
