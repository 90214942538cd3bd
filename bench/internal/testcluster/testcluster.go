// Package testcluster starts the clusters of the side-by-side harnesses:
// the 3-master, 3-replica clusters of bench/failoverbench and bench/soak
// (Start), and the N-master clusters of bench/scale (Launch, then Create).
// The nodes are hearsay or redis-server processes on loopback, joined by
// `redis-cli --cluster create` exactly as an operator would, with helpers
// to wait until the cluster is formed and every replica has finished its
// first sync.
package testcluster

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/bench/childproc"
)

// Size is the number of nodes: 3 masters and 3 replicas.
const Size = 6

// Options says what to start.
type Options struct {
	// System is "hearsay" or "redis".
	System string
	// Hearsay, Server and CLI are the binaries.
	Hearsay, Server, CLI string
	// Dir holds each node's directory and log.
	Dir string
	// Base is the first client port; nodes use Base..Base+Size-1 (with
	// Launch, Base..Base+n-1; 0 picks a free block).
	Base int
	// NodeTimeout is both systems' node timeout.
	NodeTimeout time.Duration
	// Heartbeat is hearsay's --heartbeat mode.
	Heartbeat string
	// LogLevel is hearsay's --log-level (default warn).
	LogLevel string
	// Extra are more flags for every hearsay node.
	Extra []string
	// PerNode, if set, returns more flags for hearsay node k.
	PerNode func(k int) []string
}

// Cluster is a running cluster.
type Cluster struct {
	Procs   []*childproc.Proc
	Clients []*redis.Client // one per node, in port order
	Ports   []int
}

// Addr is a loopback address on port.
func Addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// Start starts the nodes, creates the cluster and waits until every node
// reports cluster_state:ok, knows all six nodes and sees three replicas.
// On error, whatever was started is stopped.
func Start(o Options) (c *Cluster, err error) {
	c, err = Launch(o, Size)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Stop()
			c = nil
		}
	}()
	ctx := context.Background()
	if _, err := c.Create(ctx, o.CLI, 1); err != nil {
		return c, err
	}
	if err := Until(60*time.Second, func() bool {
		for _, cl := range c.Clients {
			info, err := cl.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:6") {
				return false
			}
			nodes, _ := cl.ClusterNodes(ctx).Result()
			if strings.Contains(nodes, "handshake") || strings.Count(nodes, "slave") != 3 {
				return false
			}
		}
		return true
	}); err != nil {
		return c, fmt.Errorf("cluster did not form: %w", err)
	}
	return c, nil
}

// Launch starts n nodes of o.System on ports o.Base..o.Base+n-1 (a free
// block from childproc.PortBlock when o.Base is 0), each with its own
// directory under o.Dir, and waits until every one answers PING. The nodes
// are not joined yet (see Create). All start before the first PING, so
// that n slow starts overlap. On error, whatever was started is stopped.
func Launch(o Options, n int) (c *Cluster, err error) {
	c = &Cluster{}
	defer func() {
		if err != nil {
			c.Stop()
			c = nil
		}
	}()
	if o.Base == 0 {
		if o.Base, err = childproc.PortBlock(n); err != nil {
			return c, err
		}
	}
	for k := range n {
		port := o.Base + k
		if err := childproc.PortFree(port); err != nil {
			return c, err
		}
		d := filepath.Join(o.Dir, strconv.Itoa(port))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return c, err
		}
		var argv []string
		if o.System == "hearsay" {
			argv = append([]string{o.Hearsay, "node", "--port", strconv.Itoa(port), "--dir", d, "--node-timeout", o.NodeTimeout.String(),
				"--heartbeat", o.Heartbeat, "--log-level", cmp.Or(o.LogLevel, "warn")}, o.Extra...)
			if o.PerNode != nil {
				argv = append(argv, o.PerNode(k)...)
			}
		} else {
			argv = []string{o.Server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", d, "--cluster-enabled", "yes",
				"--cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10), "--save", "", "--appendonly", "no"}
		}
		p, err := childproc.Start(fmt.Sprintf("%s-%d", o.System, port), filepath.Join(o.Dir, strconv.Itoa(port)+".log"), argv...)
		if err != nil {
			return c, err
		}
		c.Procs = append(c.Procs, p)
		c.Ports = append(c.Ports, port)
		c.Clients = append(c.Clients, redis.NewClient(&redis.Options{Addr: Addr(port), Protocol: 2, MaxRetries: -1,
			DialTimeout: time.Second, ReadTimeout: time.Second}))
	}
	ctx := context.Background()
	for k, cl := range c.Clients {
		p := c.Procs[k]
		// A node that exits ends the wait at once, reported below.
		err := Until(30*time.Second, func() bool { return p.Exited() != nil || cl.Ping(ctx).Err() == nil })
		if exit := p.Exited(); exit != nil {
			return c, exit
		}
		if err != nil {
			return c, fmt.Errorf("%s did not answer PING: %v\n%s", p.Name, err, childproc.Tail(p.Log, 20))
		}
	}
	return c, nil
}

// Create joins the launched nodes with `redis-cli --cluster create <every
// node> --cluster-replicas replicas --cluster-yes`, the operator's steps
// for both systems, and returns how long the command ran. redis-cli runs
// in its own process group and is killed if ctx ends.
func (c *Cluster) Create(ctx context.Context, cli string, replicas int) (time.Duration, error) {
	args := []string{cli, "--cluster", "create"}
	for _, port := range c.Ports {
		args = append(args, Addr(port))
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	t0 := time.Now()
	if _, err := childproc.Run(ctx, 10*time.Minute, args...); err != nil {
		return 0, fmt.Errorf("redis-cli --cluster create: %w", err)
	}
	return time.Since(t0), nil
}

// WaitSynced waits until every replica's link to its master is up: a
// replica that never finished its first sync has no data to fail over
// with, and both systems refuse to promote it.
func (c *Cluster) WaitSynced(timeout time.Duration) error {
	ctx := context.Background()
	return Until(timeout, func() bool {
		synced := 0
		for _, cl := range c.Clients {
			info, err := cl.Info(ctx, "replication").Result()
			if err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") {
				synced++
			}
		}
		return synced == Size/2
	})
}

// Stop closes the clients and stops every process.
func (c *Cluster) Stop() {
	for _, cl := range c.Clients {
		_ = cl.Close()
	}
	childproc.StopAll(5*time.Second, c.Procs...)
}

// Masters returns the IDs of the nodes flagged master in CLUSTER NODES
// text, sorted, and whether any node is flagged fail.
func Masters(nodes string) (ids []string, anyFail bool) {
	for _, l := range strings.Split(nodes, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		flags := strings.Split(f[2], ",")
		if slices.Contains(flags, "fail") {
			anyFail = true
		}
		if slices.Contains(flags, "master") {
			ids = append(ids, f[0])
		}
	}
	slices.Sort(ids)
	return ids, anyFail
}

// Until polls cond every 5 ms until it holds or timeout passes.
func Until(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
