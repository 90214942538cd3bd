package repl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearsay/hearsay/node/command"
	"github.com/hearsay/hearsay/node/store"
	"github.com/hearsay/hearsay/ring"
)

// testNode is a store, dispatcher and replication manager served on a
// loopback port the way the node runtime serves them (handover and
// blocking included).
type testNode struct {
	t    testing.TB
	st   *store.Store
	d    *command.Dispatcher
	m    *Manager
	addr string
	cs   *command.ConnState // for exec
	mu   sync.Mutex
}

func newTestNode(t testing.TB, cfg Config) *testNode {
	st := store.New()
	d := command.New(st, command.Options{})
	cfg.Store, cfg.Dispatcher = st, d
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := New(cfg)
	for _, c := range m.Commands() {
		d.Register(c)
	}
	n := &testNode{t: t, st: st, d: d, m: m, cs: d.NewConn()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	var wg sync.WaitGroup
	m.Start()
	t.Cleanup(func() { ln.Close(); m.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				n.serveConn(nc)
			}()
		}
	}()
	return n
}

func (n *testNode) serveConn(nc net.Conn) {
	c := n.d.NewConn()
	defer n.d.CloseConn(c)
	wake := make(chan struct{}, 1)
	c.Wake = func() { wake <- struct{}{} }
	c.Addr = nc.RemoteAddr().String()
	var in, out []byte
	buf := make([]byte, 64<<10)
	for {
		if len(in) == 0 {
			k, err := nc.Read(buf)
			if err != nil {
				nc.Close()
				return
			}
			in = append(in, buf[:k]...)
		}
		used, o, closeConn := n.d.Serve(c, in, out[:0])
		out = o
		if h := c.TakeHandover(); h != nil {
			h(nc, append([]byte(nil), out...), append([]byte(nil), in[used:]...))
			return
		}
		if len(out) > 0 {
			if _, err := nc.Write(out); err != nil {
				nc.Close()
				return
			}
		}
		if closeConn {
			nc.Close()
			return
		}
		in = in[:copy(in, in[used:])]
		if _, blocked := c.Blocked(); blocked {
			// Wait for the reply, reading meanwhile so a client that
			// goes away is noticed (gnet tells the runtime the same way).
			for waiting := true; waiting; {
				select {
				case <-wake:
					waiting = false
				case <-time.After(5 * time.Millisecond):
					_ = nc.SetReadDeadline(time.Now().Add(time.Millisecond))
					k, err := nc.Read(buf)
					in = append(in, buf[:k]...)
					var ne net.Error
					if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
						nc.Close()
						return
					}
				}
			}
			_ = nc.SetReadDeadline(time.Time{})
			reply, _ := c.Blocked()
			if _, err := nc.Write(reply); err != nil {
				nc.Close()
				return
			}
		}
		if used == 0 && len(in) > 0 {
			k, err := nc.Read(buf)
			if err != nil {
				nc.Close()
				return
			}
			in = append(in, buf[:k]...)
		}
	}
}

// exec runs one command on the node's own connection and returns the reply.
func (n *testNode) exec(args ...string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, out, _ := n.d.Serve(n.cs, encode(args...), nil)
	return string(out)
}

// keyspace returns every key with its value and expiry, read without
// expiring anything.
func (n *testNode) keyspace() map[string]string {
	out := map[string]string{}
	for _, k := range n.st.Keys(nil, 0) {
		e, ok := n.st.Lookup(ring.KeySlot(k), k, 0)
		if ok {
			out[string(k)] = fmt.Sprintf("%q@%d", e.Val, e.ExpireAt)
		}
	}
	return out
}

// waitCaughtUp waits until replica processed everything master wrote.
func waitCaughtUp(t testing.TB, master, replica *testNode) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mo, ro := master.m.Offset(), replica.m.Offset()
		up := replica.m.link != nil && replica.m.link.up.Load()
		if up && mo == ro {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not catch up: master offset %d, replica %d, link up %v", mo, ro, up)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sameKeyspace(t testing.TB, a, b *testNode) {
	t.Helper()
	ka, kb := a.keyspace(), b.keyspace()
	bad := 0
	for k, v := range ka {
		if kb[k] != v {
			if bad++; bad < 10 {
				t.Errorf("key %q: master %s, replica %s", k, v, kb[k])
			}
		}
	}
	for k, v := range kb {
		if _, ok := ka[k]; !ok {
			if bad++; bad < 10 {
				t.Errorf("key %q only on the replica: %s", k, v)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d keys differ (master %d keys, replica %d)", bad, len(ka), len(kb))
	}
}

// rawConn is a hand-driven client connection.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

func (c *rawConn) ask(t testing.TB, args ...string) string {
	t.Helper()
	if _, err := c.Write(encode(args...)); err != nil {
		t.Fatal(err)
	}
	line, err := c.br.ReadString('\n')
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return strings.TrimRight(line, "\r\n")
}
