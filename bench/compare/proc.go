package compare

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopTimeout is how long a child gets after SIGTERM before SIGKILL.
const stopTimeout = 5 * time.Second

// proc is one child process, in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // exit status, once done is closed
}

// procs tracks every child the harness starts, so that one deferred call
// stops them all, whatever failed.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

// start runs argv with stdout and stderr appended to logPath. The child
// gets its own process group (a Ctrl-C on the terminal reaches the
// harness only, which then stops it) and SIGKILL if the harness dies.
func (ps *procs) start(name, logPath string, argv ...string) (*proc, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

// stopAll sends SIGTERM to every child's process group, waits up to
// stopTimeout, then SIGKILLs the groups still alive. It returns how many
// had to be killed.
func (ps *procs) stopAll() int {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	for _, p := range list {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	}
	killed := 0
	deadline := time.After(stopTimeout)
	for _, p := range list {
		select {
		case <-p.done:
		case <-deadline:
		}
	}
	for _, p := range list {
		select {
		case <-p.done:
		default:
			killed++
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	return killed
}

// exited returns an error if p is no longer running.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); its log:\n%s", p.name, p.err, tailFile(p.log, 15))
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

// tailFile returns the last n lines of the file at path, indented.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "    (" + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 64<<10 {
		_, _ = f.Seek(-64<<10, io.SeekEnd)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
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
			free = portFree(base+i) == nil && portFree(base+i+busOffset) == nil
		}
		if free {
			return base, nil
		}
	}
	return 0, errors.New("no block of free ports found in 12000-27999")
}

func portFree(port int) error {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	return pc.Close()
}

// waitReady waits until every port answers PING, failing early when a
// child exits.
func waitReady(ctx context.Context, ports []int, ps []*proc) error {
	deadline := time.Now().Add(20 * time.Second)
	for i, port := range ports {
		for {
			r, err := respCall(ctx, port, "PING")
			if err == nil && r == "PONG" {
				break
			}
			if err := ps[i].exited(); err != nil {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s does not answer PING after 20s (%v); its log:\n%s", ps[i].name, err, tailFile(ps[i].log, 15))
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
