package node_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hearsay/hearsay/internal/testenv"
)

// startLimitedNode starts a node under `prlimit --nofile=n:n`, the way an
// operator's `ulimit -n` would limit it.
func startLimitedNode(t *testing.T, nofile int, extra ...string) *proc {
	t.Helper()
	prlimit := testenv.RequireBinary(t, "prlimit")
	port, dir := freePort(t), t.TempDir()
	lim := fmt.Sprintf("--nofile=%d:%d", nofile, nofile)
	argv := append([]string{prlimit, lim, binary, "node", "--port", strconv.Itoa(port), "--dir", dir,
		"--node-timeout", "1s", "--heartbeat", "off", "--log-level", "info"}, extra...)
	p := spawnNode(t, port, dir, argv)
	waitFor(t, 10*time.Second, "node answers PING", func() (bool, string) {
		r, err := rawCommand(p.addr(), "PING")
		return r == "+PONG", fmt.Sprint(r, err)
	})
	return p
}

// flood opens n connections to addr concurrently and returns those that
// connected.
func flood(addr string, n int) []net.Conn {
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, 64)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return conns
}

// TestFDExhaustion floods a node limited to 256 open files with 1,100
// client connections and 1,100 bus connections: the node lowers maxclients
// to fit the limit, refuses the extra clients with Redis's error, stays up,
// and serves new clients once the flood has gone.
func TestFDExhaustion(t *testing.T) {
	testenv.SkipShort(t, "starts a node process and opens 2,200 connections")
	p := startLimitedNode(t, 256)
	info, err := rawInfo(p.addr(), "clients")
	if err != nil || !strings.Contains(info, "maxclients:224\r\n") {
		t.Fatalf("INFO clients under ulimit -n 256: %q %v, want maxclients:224 (256 less 32 reserved)", info, err)
	}
	clients := flood(p.addr(), 1100)
	bus := flood("127.0.0.1:"+strconv.Itoa(p.port+10000), 1100)
	t.Logf("flood: %d client and %d bus connections connected", len(clients), len(bus))
	// Some client beyond maxclients got Redis's error before its close.
	refused := 0
	for _, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line == "-ERR max number of clients + cluster connections reached\r\n" {
			refused++
		}
	}
	t.Logf("%d clients were refused with Redis's maxclients error", refused)
	if refused == 0 {
		t.Fatal("no client over maxclients got the maxclients error")
	}
	if err := p.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the node died under the flood: %v\n%s", err, readLog(p))
	}
	for _, c := range append(clients, bus...) {
		_ = c.Close()
	}
	took := waitFor(t, 10*time.Second, "a new client is served after the flood", func() (bool, string) {
		r, err := rawCommand(p.addr(), "PING")
		return r == "+PONG", fmt.Sprint(r, err)
	})
	t.Logf("served a new client %v after the flood closed", took)
	if r, err := rawCommand(p.addr(), "ECHO", "after"); err != nil || r != "$5" {
		t.Fatalf("ECHO after the flood: %q %v", r, err)
	}
}

func readLog(p *proc) string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// rawInfo returns the INFO section's bulk reply over a fresh connection.
func rawInfo(addr, section string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n", len(section), section); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return head, err
	}
	n, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
	buf := make([]byte, n+2)
	_, err = io.ReadFull(r, buf)
	return string(buf), err
}
