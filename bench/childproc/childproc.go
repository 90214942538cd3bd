// Package childproc starts and stops the local server processes of
// bench/compare and `hearsay demo`: each child runs in its own process
// group with its output in a log file, so a Ctrl-C on the terminal reaches
// the parent only, which then stops the children in order.
package childproc

import (
	"bufio"
	"fmt"
	"io"
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
