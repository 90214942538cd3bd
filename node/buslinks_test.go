package node_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Inbound bus links are capped like outbound ones: with --bus-max-links 3,
// eight silent connections leave the three newest open, the node closes
// the five oldest, and clients are still served.
func TestBusInboundLinksCapped(t *testing.T) {
	dir, err := os.MkdirTemp(t.TempDir(), "cap")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	p := startNode(t, port, dir, "--bus-max-links", "3")
	var conns []net.Conn
	for range 8 {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		// The node orders links by when they were last used; give each
		// its own instant.
		time.Sleep(20 * time.Millisecond)
	}
	for i, c := range conns {
		evicted := i < 5
		wait := 300 * time.Millisecond
		if evicted {
			wait = 5 * time.Second // a bound for a hang, not a speed target
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		timedOut := errors.As(err, &ne) && ne.Timeout()
		switch {
		case evicted && (timedOut || err == nil):
			t.Errorf("link %d of 8 still open, want it closed to make room (%v)", i, err)
		case evicted && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
			t.Logf("link %d closed with %v", i, err) // a reset also closes it
		case !evicted && !timedOut:
			t.Errorf("link %d of 8 closed (%v), want the 3 newest kept", i, err)
		}
	}
	if r, err := rawCommand(p.addr(), "PING"); err != nil || r != "+PONG" {
		t.Fatalf("PING after the flood: %q, %v", r, err)
	}
}

// blackhole returns a loopback TCP port whose SYNs are dropped: a listener
// with an accept backlog of zero that never accepts, already full. A dial
// to it hangs until the dialer gives up.
func blackhole(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*unix.SockaddrInet4).Port
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return port // the queue is full: SYNs are dropped now
		}
		t.Cleanup(func() { c.Close() })
	}
}

// A bus dial to a peer that drops SYNs gives up after one node timeout,
// not after the kernel's connect timeout (about two minutes).
func TestBusDialTimeout(t *testing.T) {
	dir, err := os.MkdirTemp(t.TempDir(), "dial")
	if err != nil {
		t.Fatal(err)
	}
	port, httpPort := freePort(t), freePort(t)
	p := startNode(t, port, dir, "--http", "127.0.0.1:"+strconv.Itoa(httpPort))
	hole := blackhole(t)
	if r, err := rawCommand(p.addr(), "CLUSTER", "MEET", "127.0.0.1", "6999", strconv.Itoa(hole)); err != nil || r != "+OK" {
		t.Fatalf("CLUSTER MEET: %q, %v", r, err)
	}
	// node-timeout is 1s (startNode); allow for the redial backoff and a
	// slow machine, far below the kernel's timeout.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(httpPort) + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "hearsay_bus_dial_failures_total "); ok && v != "0" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dial failure counted after 20 s (last error %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
