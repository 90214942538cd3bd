package compare

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hearsay/hearsay/bench/childproc"
)

// stopTimeout is how long a child gets after SIGTERM before SIGKILL.
const stopTimeout = 5 * time.Second

// procs tracks every child the harness starts, so that one deferred call
// stops them all, whatever failed.
type procs struct {
	mu   sync.Mutex
	list []*childproc.Proc
}

// start runs argv with childproc.Start and tracks it.
func (ps *procs) start(name, logPath string, argv ...string) (*childproc.Proc, error) {
	p, err := childproc.Start(name, logPath, argv...)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

// stopAll stops every tracked child (childproc.StopAll) and returns how
// many had to be killed.
func (ps *procs) stopAll() int {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	return childproc.StopAll(stopTimeout, list...)
}

// exited returns an error if p is no longer running.
func exited(p *childproc.Proc) error {
	select {
	case <-p.Done:
		return fmt.Errorf("%s exited (%v); its log:\n%s", p.Name, p.Err, childproc.Tail(p.Log, 15))
	default:
		return nil
	}
}

// runCmd runs argv to completion under ctx in its own process group and
// returns its stdout; stderr is appended to the error on failure.
func runCmd(ctx context.Context, timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%v (%v)", err, ctx.Err())
		}
		return stdout.String(), fmt.Errorf("%s: %v\nstdout: %s\nstderr: %s", strings.Join(argv, " "),
			err, clip(stdout.String(), 2000), clip(stderr.String(), 2000))
	}
	return stdout.String(), nil
}

// busOffset is the distance from a client port to its bus port, the same
// for Redis and hearsay.
const busOffset = 10000

// portBlock finds n consecutive client ports whose bus ports (+10000) are
// free too, for TCP and UDP. Both ranges stay below the kernel's
// ephemeral range (32768 and up), so no outbound connection of anyone
// can take a port inside them and be counted as bus traffic.
func portBlock(n int) (int, error) {
	const lo, hi = 12000, 18000 // bus ports 22000-27999; the process tests use other ranges
	for try := 0; try < 50; try++ {
		base := lo + rand.IntN(hi-lo-n)
		free := true
		for i := 0; i < n && free; i++ {
			free = childproc.PortFree(base+i) == nil && childproc.PortFree(base+i+busOffset) == nil
		}
		if free {
			return base, nil
		}
	}
	return 0, errors.New("no block of free ports found in 12000-27999")
}

// waitReady waits until every port answers PING, failing early when a
// child exits.
func waitReady(ctx context.Context, ports []int, ps []*childproc.Proc) error {
	deadline := time.Now().Add(20 * time.Second)
	for i, port := range ports {
		for {
			r, err := respCall(ctx, port, "PING")
			if err == nil && r == "PONG" {
				break
			}
			if err := exited(ps[i]); err != nil {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s does not answer PING after 20s (%v); its log:\n%s", ps[i].Name, err, childproc.Tail(ps[i].Log, 15))
			}
			if err := sleep(ctx, 50*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
