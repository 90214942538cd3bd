package compare

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hearsay/hearsay/bench/childproc"
)

// stopTimeout is how long a child gets after SIGTERM before SIGKILL.
const stopTimeout = 5 * time.Second

// procs tracks every child the harness starts, so that one deferred call
// stops them all, whatever failed.
type procs struct {
	mu   sync.Mutex
	list []*childproc.Proc
}

// start runs argv with childproc.Start and tracks it.
func (ps *procs) start(name, logPath string, argv ...string) (*childproc.Proc, error) {
	p, err := childproc.Start(name, logPath, argv...)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

// stopAll stops every tracked child (childproc.StopAll) and returns how
// many had to be killed.
func (ps *procs) stopAll() int {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	return childproc.StopAll(stopTimeout, list...)
}

// waitReady waits until every port answers PING, failing early when a
// child exits.
func waitReady(ctx context.Context, ports []int, ps []*childproc.Proc) error {
	deadline := time.Now().Add(20 * time.Second)
	for i, port := range ports {
		for {
			r, err := respCall(ctx, port, "PING")
			if err == nil && r == "PONG" {
				break
			}
			if err := ps[i].Exited(); err != nil {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s does not answer PING after 20s (%v); its log:\n%s", ps[i].Name, err, childproc.Tail(ps[i].Log, 15))
			}
			if err := childproc.Sleep(ctx, 50*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}
