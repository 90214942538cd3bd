package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/node/clusterview"
)

// Tool runs cluster operations. The zero value is ready to use with the
// defaults noted on each field.
type Tool struct {
	// Timeout bounds one command to one node (default 5s).
	Timeout time.Duration
	// Wait bounds each wait for the nodes to agree (default 60s).
	Wait time.Duration
	// Progress, when set, is called with one line per step taken.
	Progress func(msg string)
	// Count, when set, is called on every round of a wait with how many of
	// the nodes already satisfy it (what names the wait, as the Progress
	// line before it does), so a caller can draw a progress bar.
	Count func(what string, done, total int)
	// Password is sent with AUTH when set.
	Password string
	// Moved, when set, is called on every poll of a slot move (Reshard,
	// Rebalance) with how far it is.
	Moved func(MoveProgress)
}

func (t *Tool) timeout() time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return 5 * time.Second
}

func (t *Tool) wait() time.Duration {
	if t.Wait > 0 {
		return t.Wait
	}
	return 60 * time.Second
}

func (t *Tool) progress(format string, args ...any) {
	if t.Progress != nil {
		t.Progress(fmt.Sprintf(format, args...))
	}
}

func (t *Tool) count(what string, done, total int) {
	if t.Count != nil {
		t.Count(what, done, total)
	}
}

// NodeError is an error from, or about, one node.
type NodeError struct {
	Addr string
	Err  error
}

func (e *NodeError) Error() string { return e.Addr + ": " + e.Err.Error() }
func (e *NodeError) Unwrap() error { return e.Err }

// conn is one node's connection.
type conn struct {
	addr string
	rdb  *redis.Client
	tool *Tool
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// quiet stops go-redis from logging to stderr: every failure it would log
// reaches the caller as an error naming the node.
var quiet sync.Once

// dial opens a connection to addr ("host:port") and checks that it answers.
func (t *Tool) dial(ctx context.Context, addr string) (*conn, error) {
	if _, _, err := splitAddr(addr); err != nil {
		return nil, err
	}
	quiet.Do(func() { redis.SetLogger(quietLogger{}) })
	c := &conn{addr: addr, tool: t, rdb: redis.NewClient(&redis.Options{
		Addr:            addr,
		Protocol:        2,
		DisableIdentity: true,
		Password:        t.Password,
		DialTimeout:     t.timeout(),
		ReadTimeout:     t.timeout(),
		WriteTimeout:    t.timeout(),
		PoolSize:        1,
		MaxRetries:      -1,
		DialerRetries:   1,
	})}
	if err := c.do(ctx, "PING").Err(); err != nil {
		c.close()
		return nil, &NodeError{addr, fmt.Errorf("cannot connect: %w", unwrapDial(err))}
	}
	return c, nil
}

func unwrapDial(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

func (c *conn) close() { _ = c.rdb.Close() }

func (c *conn) do(ctx context.Context, args ...any) *redis.Cmd {
	ctx, cancel := context.WithTimeout(ctx, c.tool.timeout())
	defer cancel()
	return c.rdb.Do(ctx, args...)
}

// call runs a command whose reply must be +OK (or any non-error reply).
func (c *conn) call(ctx context.Context, args ...any) error {
	if err := c.do(ctx, args...).Err(); err != nil {
		return &NodeError{c.addr, fmt.Errorf("%s: %w", cmdName(args), err)}
	}
	return nil
}

func (c *conn) text(ctx context.Context, args ...any) (string, error) {
	s, err := c.do(ctx, args...).Text()
	if err != nil {
		return "", &NodeError{c.addr, fmt.Errorf("%s: %w", cmdName(args), err)}
	}
	return s, nil
}

func (c *conn) int(ctx context.Context, args ...any) (int64, error) {
	n, err := c.do(ctx, args...).Int64()
	if err != nil {
		return 0, &NodeError{c.addr, fmt.Errorf("%s: %w", cmdName(args), err)}
	}
	return n, nil
}

func cmdName(args []any) string {
	var parts []string
	for i, a := range args {
		if i == 2 || i > 0 && !strings.EqualFold(fmt.Sprint(args[0]), "CLUSTER") {
			break
		}
		parts = append(parts, strings.ToUpper(fmt.Sprint(a)))
	}
	return strings.Join(parts, " ")
}

// nodes reads and parses CLUSTER NODES.
func (c *conn) nodes(ctx context.Context) ([]clusterview.NodeLine, error) {
	s, err := c.text(ctx, "CLUSTER", "NODES")
	if err != nil {
		return nil, err
	}
	lines, err := clusterview.ParseNodes(s)
	if err != nil {
		return nil, &NodeError{c.addr, err}
	}
	return lines, nil
}

// myself returns the node's own line from CLUSTER NODES.
func myself(addr string, lines []clusterview.NodeLine) (clusterview.NodeLine, error) {
	for _, l := range lines {
		if l.Myself {
			return l, nil
		}
	}
	return clusterview.NodeLine{}, &NodeError{addr, errors.New("CLUSTER NODES has no myself line")}
}

// clusterInfo reads CLUSTER INFO into a field map.
func (c *conn) clusterInfo(ctx context.Context) (map[string]string, error) {
	s, err := c.text(ctx, "CLUSTER", "INFO")
	if err != nil {
		return nil, err
	}
	m := make(map[string]string)
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok {
			m[k] = v
		}
	}
	return m, nil
}

// splitAddr splits "host:port" and checks the port.
func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("bad address %q: want host:port", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad address %q: port must be 1-65535", addr)
	}
	if host == "" {
		return "", 0, fmt.Errorf("bad address %q: missing host", addr)
	}
	return host, port, nil
}

// resolveIP returns the IP CLUSTER MEET needs for host (an IP or a name).
func resolveIP(ctx context.Context, host string) (string, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().String(), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("cannot resolve %q: %v", host, err)
	}
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return ip.Unmap().String(), nil
		}
	}
	return ips[0].String(), nil
}

// connSet caches one connection per node for the length of an operation.
type connSet struct {
	tool  *Tool
	conns map[string]*conn
}

func (t *Tool) newConnSet() *connSet { return &connSet{tool: t, conns: map[string]*conn{}} }

func (s *connSet) get(ctx context.Context, addr string) (*conn, error) {
	if c, ok := s.conns[addr]; ok {
		return c, nil
	}
	c, err := s.tool.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	s.conns[addr] = c
	return c, nil
}

// nodes reads CLUSTER NODES from addr over the set's connection.
func (s *connSet) nodes(ctx context.Context, addr string) ([]clusterview.NodeLine, error) {
	c, err := s.get(ctx, addr)
	if err != nil {
		return nil, err
	}
	return c.nodes(ctx)
}

func (s *connSet) close() {
	for _, c := range s.conns {
		c.close()
	}
}
