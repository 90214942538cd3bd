package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/hearsay/hearsay/gossip/wire"
)

// FailoverMode is the option of CLUSTER FAILOVER.
type FailoverMode string

// Failover modes, as CLUSTER FAILOVER takes them ("" is the default,
// coordinated with the master).
const (
	FailoverDefault  FailoverMode = ""
	FailoverForce    FailoverMode = "FORCE"
	FailoverTakeover FailoverMode = "TAKEOVER"
)

// Failover promotes replica (an ID or host:port of the cluster entry
// belongs to) with CLUSTER FAILOVER in mode, then waits until entry and the
// replica itself list it as a master. It returns the old master's ID.
func (t *Tool) Failover(ctx context.Context, entry, replica string, mode FailoverMode) (wire.NodeID, error) {
	cs := t.newConnSet()
	defer cs.close()
	cl, err := t.load(ctx, cs, entry)
	if err != nil {
		return wire.NodeID{}, err
	}
	r, ok := cl.Find(replica)
	if !ok {
		return wire.NodeID{}, &NodeError{entry, fmt.Errorf("no node %s in this cluster", replica)}
	}
	if !r.IsReplica() {
		return wire.NodeID{}, &NodeError{r.Addr(), fmt.Errorf("node %s is a master; name one of its replicas to promote", r.ShortID())}
	}
	oldMaster := r.Master
	addr := r.Addr()
	if r.Myself {
		addr = entry
	}
	c, err := cs.get(ctx, addr)
	if err != nil {
		return wire.NodeID{}, err
	}
	args := []any{"CLUSTER", "FAILOVER"}
	if mode != FailoverDefault {
		args = append(args, string(mode))
	}
	t.progress("%s: CLUSTER FAILOVER %s", addr, mode)
	if err := c.call(ctx, args...); err != nil {
		return wire.NodeID{}, err
	}
	err = t.poll(ctx, "the promotion", func() error {
		for _, a := range []string{addr, entry} {
			lines, err := cs.nodes(ctx, a)
			if err != nil {
				return err
			}
			promoted := false
			for _, l := range lines {
				if l.ID == r.ID && l.Flags&wire.FlagMaster != 0 && l.Flags&wire.FlagFail == 0 {
					promoted = true
				}
			}
			if !promoted {
				return &NodeError{a, errors.New("does not list " + r.ShortID() + " as a master yet")}
			}
		}
		return nil
	})
	return oldMaster, err
}
