package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// runNode starts an in-process node on a free port pair and stops it when
// the test ends: the slot gate has no command yet, so the test reaches it
// through the Node.
func runNode(t *testing.T) (*Node, string) {
	t.Helper()
	port := freeGatePorts(t)
	n, err := New(Config{Dir: t.TempDir(), Port: port, BusPort: port + 1000, NodeTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waitReply(t, addr, "+PONG", "PING")
	return n, addr
}

// freeGatePorts picks a client port p in 22000-22999 with p and its bus
// port p+1000 free: below the kernel's ephemeral range, and apart from the
// process tests' ports (package node_test), whose picks it cannot see.
func freeGatePorts(t *testing.T) int {
	t.Helper()
	for range 1000 {
		p := 22000 + rand.IntN(1000)
		ok := true
		for _, q := range []int{p, p + 1000} {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q))
			if err != nil {
				ok = false
				break
			}
			_ = ln.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free port pair")
	return 0
}

// rawCommand sends one command on a fresh connection and returns the first
// reply line.
func rawCommand(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	p := &pipeConn{c: c, r: bufio.NewReader(c)}
	if err := p.write(args); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := p.r.ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// waitReply polls addr with args until the first reply line starts with
// want.
func waitReply(t *testing.T, addr, want string, args ...string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if got, err = rawCommand(addr, args...); err == nil && strings.HasPrefix(got, want) {
			return
		}
	}
	t.Fatalf("%s %q: last reply %q, want %q", addr, args, got, want)
}

// pipeConn is a client connection whose replies are read one line at a
// time (no bulk bodies longer than a line in these tests).
type pipeConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialPipe(t *testing.T, addr string) *pipeConn {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &pipeConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (p *pipeConn) write(cmds ...[]string) error {
	var b strings.Builder
	for _, args := range cmds {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	_, err := p.c.Write([]byte(b.String()))
	return err
}

// send pipelines cmds in one write.
func (p *pipeConn) send(cmds ...[]string) {
	if err := p.write(cmds...); err != nil {
		p.t.Fatal(err)
	}
}

// reply reads one reply (a bulk string as "$len body"), waiting at most d.
func (p *pipeConn) reply(d time.Duration) (string, error) {
	_ = p.c.SetReadDeadline(time.Now().Add(d))
	line, err := p.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") && line != "$-1" {
		body, err := p.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line += " " + strings.TrimRight(body, "\r\n")
	}
	return line, nil
}

func (p *pipeConn) expect(want ...string) {
	p.t.Helper()
	for _, w := range want {
		got, err := p.reply(3 * time.Second)
		if err != nil || !strings.HasPrefix(got, w) {
			p.t.Fatalf("reply %q (%v), want %q", got, err, w)
		}
	}
}

// quiet fails if a reply arrives within d: the connection is parked.
func (p *pipeConn) quiet(d time.Duration) {
	p.t.Helper()
	if got, err := p.reply(d); err == nil {
		p.t.Fatalf("a parked connection answered %q", got)
	}
}

func slotOf(key string) []wire.SlotRange {
	s := ring.KeySlot([]byte(key))
	return []wire.SlotRange{{Start: s, End: s}}
}

// TestSlotGate: writes to a paused slot park, in pipeline order, while
// other slots' writes and the paused slot's reads are served; they complete
// on resume, or, when the slot's owner changed before the resume, are
// answered MOVED to the new owner.
func TestSlotGate(t *testing.T) {
	a, aAddr := runNode(t)
	b, bAddr := runNode(t)
	waitReply(t, aAddr, "+OK", "CLUSTER", "ADDSLOTSRANGE", "0", "16383")
	_, bPort, _ := net.SplitHostPort(bAddr)
	bp, _ := strconv.Atoi(bPort)
	waitReply(t, aAddr, "+OK", "CLUSTER", "MEET", "127.0.0.1", bPort, strconv.Itoa(bp+1000))
	waitReply(t, aAddr, "$-1", "GET", "k")
	waitReply(t, bAddr, "-MOVED", "GET", "k")
	waitReply(t, aAddr, "+OK", "SET", "k", "old")

	off := a.pauseSlots(slotOf("k"))
	if !a.disp.SlotWritesPaused(ring.KeySlot([]byte("k"))) || a.disp.WritesPaused() {
		t.Fatal("the gate is not a pause of k's slot alone")
	}
	p := dialPipe(t, aAddr)
	p.send([]string{"SET", "x", "1"}, []string{"SET", "k", "v1"}, []string{"APPEND", "k", "v2"},
		[]string{"SET", "y", "1"}, []string{"GET", "k"})
	p.expect("+OK") // x is served at once
	p.quiet(300 * time.Millisecond)
	// A multi-key write all in k's slot parks too.
	m := dialPipe(t, aAddr)
	m.send([]string{"MSET", "{k}a", "1", "{k}b", "2"})
	m.quiet(100 * time.Millisecond)
	o := dialPipe(t, aAddr)
	o.send([]string{"SET", "z", "1"}, []string{"GET", "k"}, []string{"MGET", "{k}a", "k"})
	o.expect("+OK", "$3 old", "*2")
	o.expect("$-1", "$3 old")
	if got := a.repl.Offset(); got != off {
		// Only the other slots' writes moved it.
		t.Logf("offset %d at the pause, %d now (other slots wrote)", off, got)
	}
	a.resumeSlots(slotOf("k"))
	p.expect("+OK", ":4", "+OK", "$4 v1v2")
	m.expect("+OK")

	// The owner changes while writes are parked: on resume they are
	// answered MOVED, once each, to the new owner.
	a.pauseSlots(slotOf("k"))
	p.send([]string{"SET", "k", "lost"}, []string{"GET", "k"})
	p.quiet(200 * time.Millisecond)
	if err := b.admin(func(c *gossip.Core, now time.Duration) (gossip.Ready, error) {
		return c.ClaimSlots(now, slotOf("k"))
	}); err != nil {
		t.Fatal(err)
	}
	moved := fmt.Sprintf("-MOVED %d %s", ring.KeySlot([]byte("k")), bAddr)
	waitReply(t, aAddr, moved, "GET", "k") // reads see the new owner at once
	a.resumeSlots(slotOf("k"))
	p.expect(moved, moved)
	if v, ok := a.store.Get(ring.KeySlot([]byte("k")), []byte("k"), time.Now().UnixMilli()); !ok || string(v) != "v1v2" {
		t.Fatalf("k on the old owner = %q %v: a write answered MOVED was applied", v, ok)
	}
	waitReply(t, aAddr, "+OK", "SET", "x", "2")
}
