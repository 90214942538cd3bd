// Package childproc starts and stops the local server processes of the
// bench harnesses and `hearsay demo`: each child runs in its own process
// group with its output in a log file, so a Ctrl-C on the terminal reaches
// the parent only, which then stops the children in order.
//
// Every child gets SIGKILL as its parent-death signal. Linux sends it when
// the thread that forked the child exits, not the process: a caller must
// not start children from a goroutine that holds runtime.LockOSThread and
// then returns, or the runtime ends that thread and the children with it.
package childproc

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
	"syscall"
	"time"
)

// Proc is one child process, in its own process group.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string        // the file holding its stdout and stderr
	Done chan struct{} // closed when the process has exited
	Err  error         // its exit status, once Done is closed
}

// Start runs argv with stdout and stderr appended to logPath. The child
// gets its own process group and SIGKILL if the parent dies.
func Start(name, logPath string, argv ...string) (*Proc, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child holds its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %v", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, Done: make(chan struct{})}
	go func() {
		p.Err = cmd.Wait()
		close(p.Done)
	}()
	return p, nil
}

// Exited returns an error naming p, its exit status and the end of its log
// if p is no longer running, and nil while it runs: a harness waiting on a
// child should fail at once, with the reason, when the child dies.
func (p *Proc) Exited() error {
	select {
	case <-p.Done:
		return fmt.Errorf("%s exited (%v); its log:\n%s", p.Name, p.Err, Tail(p.Log, 15))
	default:
		return nil
	}
}

// StopAll sends SIGTERM to every child's process group, waits up to
// timeout, then SIGKILLs the groups still alive. It returns how many had
// to be killed.
func StopAll(timeout time.Duration, list ...*Proc) (killed int) {
	for _, p := range list {
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	}
	deadline := time.After(timeout)
	for _, p := range list {
		select {
		case <-p.Done:
		case <-deadline:
		}
	}
	for _, p := range list {
		select {
		case <-p.Done:
		default:
			killed++
			_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
			<-p.Done
		}
	}
	return killed
}

// PortFree reports whether port can be bound on loopback for TCP and UDP
// (a bus port carries UDP heartbeats).
func PortFree(port int) error {
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

// Tail returns the last n lines of the file at path, indented. It reads at
// most the last 64 KiB, so a long log costs no more than a short one.
func Tail(path string, n int) string {
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

// Run runs argv to completion under ctx, at most timeout, in its own
// process group (killed whole on timeout or cancellation, so a tool's own
// children cannot outlive it) and returns its stdout; stderr is appended
// to the error on failure.
func Run(ctx context.Context, timeout time.Duration, argv ...string) (string, error) {
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
			err, Clip(stdout.String(), 2000), Clip(stderr.String(), 2000))
	}
	return stdout.String(), nil
}

// Clip shortens s to n bytes, marking the cut, so that an error quoting a
// tool's output stays readable.
func Clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// BusOffset is the distance from a client port to its bus port, the same
// for Redis and hearsay.
const BusOffset = 10000

// PortBlock finds n consecutive client ports whose bus ports (+BusOffset)
// are free too, for TCP and UDP. Both ranges stay below the kernel's
// ephemeral range (32768 and up), so no outbound connection of anyone
// can take a port inside them and be counted as bus traffic.
func PortBlock(n int) (int, error) {
	const lo, hi = 12000, 18000 // bus ports 22000-27999; the process tests use other ranges
	if n <= 0 || n >= hi-lo {
		return 0, fmt.Errorf("no block of %d ports fits in %d-%d", n, lo, hi)
	}
	for try := 0; try < 50; try++ {
		base := lo + rand.IntN(hi-lo-n)
		free := true
		for i := 0; i < n && free; i++ {
			free = PortFree(base+i) == nil && PortFree(base+i+BusOffset) == nil
		}
		if free {
			return base, nil
		}
	}
	return 0, errors.New("no block of free ports found in 12000-27999")
}

// Sleep waits d, or less if ctx ends first, when it returns ctx's error:
// every wait of a harness must give way to a Ctrl-C.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
