package compare

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hearsay/hearsay/bench/childproc"
)

// The ceiling is the least a server can do and still answer
// redis-benchmark's SET and GET correctly: one epoll loop on a locked
// thread, a map for the values, no persistence, no cluster, no expiry, no
// metrics. After a round with work it polls without sleeping for
// ceilingLinger before it blocks again, so a client that sends within
// that time never pays for waking it: when the client is the bottleneck,
// that wakeup is the one cost a server adds to the client's side. Its
// throughput, measured in the same run, is what the load generator itself
// allows on this machine: a real server cannot lead Redis by more than
// the ceiling does.

// errCeilingProtocol is returned for input that is not a RESP array of
// bulk strings; the connection is closed.
var errCeilingProtocol = errors.New("ceiling: protocol error")

// maxCeilingArg bounds one argument, so a hostile length cannot make the
// responder wait for (or allocate) more than the benchmark ever sends.
const maxCeilingArg = 1 << 20

// ceilingLinger is how long the loop polls for more work before it sleeps.
const ceilingLinger = 50 * time.Microsecond

// ceilingServe answers every complete command at the start of in, appending
// the replies to out. It returns how many bytes it consumed; an incomplete
// command at the end stays unconsumed.
func ceilingServe(in, out []byte, store map[string][]byte) (consumed int, _ []byte, err error) {
	var args [][]byte
	for consumed < len(in) {
		var n int
		var ok bool
		n, args, ok, err = ceilingCommand(in[consumed:], args[:0])
		if err != nil {
			return consumed, out, err
		}
		if !ok {
			return consumed, out, nil
		}
		consumed += n
		out = ceilingReply(args, out, store)
	}
	return consumed, out, nil
}

// ceilingCommand parses one "*<n>\r\n" followed by n "$<len>\r\n<bytes>\r\n";
// ok is false when in holds only part of it.
func ceilingCommand(in []byte, args [][]byte) (n int, _ [][]byte, ok bool, err error) {
	count, pos, ok, err := ceilingHeader(in, 0, '*')
	if !ok || err != nil {
		return 0, args, false, err
	}
	if count < 1 || count > 1024 {
		return 0, args, false, errCeilingProtocol
	}
	for i := 0; i < count; i++ {
		size, next, ok, err := ceilingHeader(in, pos, '$')
		if !ok || err != nil {
			return 0, args, false, err
		}
		if size < 0 || size > maxCeilingArg {
			return 0, args, false, errCeilingProtocol
		}
		end := next + size
		if end+2 > len(in) {
			return 0, args, false, nil
		}
		if in[end] != '\r' || in[end+1] != '\n' {
			return 0, args, false, errCeilingProtocol
		}
		args = append(args, in[next:end])
		pos = end + 2
	}
	return pos, args, true, nil
}

// ceilingHeader parses "<kind><decimal>\r\n" at in[pos:].
func ceilingHeader(in []byte, pos int, kind byte) (v, next int, ok bool, err error) {
	if pos >= len(in) {
		return 0, 0, false, nil
	}
	if in[pos] != kind {
		return 0, 0, false, errCeilingProtocol
	}
	nl := bytes.IndexByte(in[pos:], '\n')
	if nl < 0 {
		if len(in)-pos > 32 {
			return 0, 0, false, errCeilingProtocol
		}
		return 0, 0, false, nil
	}
	line := in[pos+1 : pos+nl]
	if len(line) == 0 || line[len(line)-1] != '\r' {
		return 0, 0, false, errCeilingProtocol
	}
	v, err = strconv.Atoi(string(line[:len(line)-1]))
	if err != nil {
		return 0, 0, false, errCeilingProtocol
	}
	return v, pos + nl + 1, true, nil
}

// ceilingReply answers one command the way redis-server does for the
// commands redis-benchmark's SET and GET tests send.
func ceilingReply(args [][]byte, out []byte, store map[string][]byte) []byte {
	name := args[0]
	switch {
	case len(args) == 3 && bytes.EqualFold(name, []byte("SET")):
		k := string(args[1])
		store[k] = append(store[k][:0], args[2]...)
		return append(out, "+OK\r\n"...)
	case len(args) == 2 && bytes.EqualFold(name, []byte("GET")):
		v, ok := store[string(args[1])]
		if !ok {
			return append(out, "$-1\r\n"...)
		}
		out = append(out, '$')
		out = strconv.AppendInt(out, int64(len(v)), 10)
		out = append(out, "\r\n"...)
		out = append(out, v...)
		return append(out, "\r\n"...)
	case len(args) == 1 && bytes.EqualFold(name, []byte("PING")):
		return append(out, "+PONG\r\n"...)
	case len(args) == 3 && bytes.EqualFold(name, []byte("CONFIG")) && bytes.EqualFold(args[1], []byte("GET")):
		// redis-benchmark reads "save" and "appendonly" to print them.
		out = fmt.Appendf(out, "*2\r\n$%d\r\n%s\r\n$0\r\n\r\n", len(args[2]), args[2])
		return out
	}
	return fmt.Appendf(out, "-ERR unknown command '%s'\r\n", ceilingPrintable(name))
}

func ceilingPrintable(b []byte) string {
	if len(b) > 32 {
		b = b[:32]
	}
	return strconv.QuoteToASCII(string(b))
}

// ceilingConn is one client: unconsumed input and unsent replies.
type ceilingConn struct {
	in, out []byte
	writing bool // EPOLLOUT is armed
}

// ceiling is a running responder on 127.0.0.1.
type ceiling struct {
	Port   int
	lfd    int
	ep     int
	stopFd int
	tid    int
	ready  chan error
	done   chan struct{}
	once   sync.Once
}

// startCeiling listens on 127.0.0.1:port and serves until Stop.
func startCeiling(port int) (*ceiling, error) {
	c := &ceiling{Port: port, ready: make(chan error, 1), done: make(chan struct{})}
	go c.run()
	if err := <-c.ready; err != nil {
		return nil, err
	}
	return c, nil
}

// CPUSeconds is the CPU time the loop's thread has used so far.
func (c *ceiling) CPUSeconds() (float64, error) {
	return threadCPU(os.Getpid(), c.tid)
}

// Stop ends the loop and closes every socket.
func (c *ceiling) Stop() {
	c.once.Do(func() {
		_, _ = unix.Write(c.stopFd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		<-c.done
	})
}

func (c *ceiling) run() {
	// The thread stays locked and is never handed back, so its CPU time
	// is the responder's alone.
	runtime.LockOSThread()
	defer close(c.done)
	if err := c.open(); err != nil {
		c.ready <- err
		return
	}
	c.tid = unix.Gettid()
	c.ready <- nil
	conns := map[int]*ceilingConn{}
	defer func() {
		for fd := range conns {
			_ = unix.Close(fd)
		}
		_ = unix.Close(c.lfd)
		_ = unix.Close(c.ep)
		_ = unix.Close(c.stopFd)
	}()
	store := map[string][]byte{}
	events := make([]unix.EpollEvent, 128)
	buf := make([]byte, 64<<10)
	var dirty []int
	var busyAt time.Time // the last round with work, while lingering
	for {
		timeout := -1
		if !busyAt.IsZero() {
			timeout = 0
		}
		n, err := unix.EpollWait(c.ep, events, timeout)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		switch {
		case n > 0:
			busyAt = time.Now()
		case !busyAt.IsZero() && time.Since(busyAt) >= ceilingLinger:
			busyAt = time.Time{}
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			switch fd {
			case c.stopFd:
				return
			case c.lfd:
				c.accept(conns)
				continue
			}
			cc := conns[fd]
			if cc == nil {
				continue
			}
			if ev.Events&unix.EPOLLIN == 0 && ev.Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				c.drop(fd, conns)
				continue
			}
			if ev.Events&unix.EPOLLIN != 0 && !c.read(fd, cc, buf, store) {
				c.drop(fd, conns)
				continue
			}
			if len(cc.out) > 0 {
				dirty = append(dirty, fd)
			}
		}
		// Replies go out after every ready connection was read, as
		// Redis writes them before it sleeps.
		for _, fd := range dirty {
			if cc := conns[fd]; cc != nil && !c.flush(fd, cc) {
				c.drop(fd, conns)
			}
		}
		dirty = dirty[:0]
	}
}

func (c *ceiling) open() error {
	var err error
	if c.lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return err
	}
	_ = unix.SetsockoptInt(c.lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err = unix.Bind(c.lfd, &unix.SockaddrInet4{Port: c.Port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(c.lfd)
		return fmt.Errorf("ceiling: bind 127.0.0.1:%d: %w", c.Port, err)
	}
	if err = unix.Listen(c.lfd, 1024); err != nil {
		unix.Close(c.lfd)
		return err
	}
	if c.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		unix.Close(c.lfd)
		return err
	}
	if c.stopFd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		unix.Close(c.lfd)
		unix.Close(c.ep)
		return err
	}
	for _, fd := range []int{c.lfd, c.stopFd} {
		if err = unix.EpollCtl(c.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			unix.Close(c.lfd)
			unix.Close(c.ep)
			unix.Close(c.stopFd)
			return err
		}
	}
	return nil
}

func (c *ceiling) accept(conns map[int]*ceilingConn) {
	for {
		fd, _, err := unix.Accept4(c.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if unix.EpollCtl(c.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}) != nil {
			unix.Close(fd)
			continue
		}
		conns[fd] = &ceilingConn{}
	}
}

// read takes what the socket has and serves the complete commands; false
// means the connection ends (EOF, error, or bad input).
func (c *ceiling) read(fd int, cc *ceilingConn, buf []byte, store map[string][]byte) bool {
	m, err := unix.Read(fd, buf)
	if err == unix.EAGAIN {
		return true
	}
	if err != nil || m <= 0 {
		return false
	}
	in := buf[:m]
	if len(cc.in) > 0 {
		cc.in = append(cc.in, in...)
		in = cc.in
	}
	used, out, err := ceilingServe(in, cc.out, store)
	cc.out = out
	if err != nil {
		return false
	}
	rest := in[used:]
	if len(rest) > 2*maxCeilingArg {
		return false
	}
	cc.in = append(cc.in[:0], rest...)
	return true
}

// flush writes the pending replies, arming EPOLLOUT for what the socket
// does not take now.
func (c *ceiling) flush(fd int, cc *ceilingConn) bool {
	for len(cc.out) > 0 {
		m, err := unix.Write(fd, cc.out)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			return false
		}
		cc.out = cc.out[:copy(cc.out, cc.out[m:])]
	}
	want := len(cc.out) > 0
	if want != cc.writing {
		ev := uint32(unix.EPOLLIN)
		if want {
			ev |= unix.EPOLLOUT
		}
		if unix.EpollCtl(c.ep, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: ev, Fd: int32(fd)}) != nil {
			return false
		}
		cc.writing = want
	}
	return true
}

func (c *ceiling) drop(fd int, conns map[int]*ceilingConn) {
	delete(conns, fd)
	_ = unix.Close(fd)
}

// threadCPU reads utime+stime of one thread from /proc, in seconds.
func threadCPU(pid, tid int) (float64, error) {
	return procCPU(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
}

// procCPU reads utime+stime from a /proc stat file, in seconds.
func procCPU(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	t, err := childproc.ParseStatCPU(string(b))
	if err != nil {
		return 0, err
	}
	return float64(t) / float64(childproc.ClockTicks()), nil
}
