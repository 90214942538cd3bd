package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/hearsay/hearsay/internal/ratelog"
)

// Accepting connections ourselves rather than letting gnet do it: gnet's
// acceptor treats any accept error other than EAGAIN, EINTR, ECONNRESET and
// ECONNABORTED as fatal and shuts its engine down, so one burst of
// connections past the process's file descriptor limit (EMFILE) would stop
// the node. Here an accept error is counted, logged (rate-limited) and
// followed by a pause; the pending connections wait in the kernel's backlog
// and the node keeps serving the ones it has.
//
// Each engine still needs one listener of its own to run; it gets a Unix
// socket in a private directory (mode 0700) that nothing connects to.

const (
	// acceptBackoffMin and acceptBackoffMax bound the pause after an
	// accept error; it doubles while errors repeat.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// reservedFDs is what the fd limit must hold beyond the clients and
	// bus links (files, heartbeat sockets, the runtime), as Redis keeps 32.
	reservedFDs = 32
)

// errMaxClients is Redis's cluster-mode reply to a connection over
// maxclients (Redis counts clients and cluster bus connections together).
const errMaxClients = "-ERR max number of clients + cluster connections reached\r\n"

// acceptor accepts TCP connections on ln and enrolls them in an engine.
type acceptor struct {
	n    *Node
	name string // "client" or "bus", for logs
	ln   net.Listener
	eng  func() gnet.Engine
	// admit decides whether a new connection may be enrolled; a refused
	// one is answered with refuse (may be empty) and closed.
	admit  func() bool
	refuse string
	// pending counts connections accepted and not yet opened (or failed)
	// in the engine, so admit can count them too.
	pending atomic.Int64
	errors  func() // counts one accept error
	warn    *ratelog.Limiter
}

// listenTCP binds addr for an acceptor.
func listenTCP(addr string) (*net.TCPListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// placeholderAddr makes the private Unix socket address an engine listens
// on; the caller removes dir when the engine has stopped.
func placeholderAddr(name string) (addr, dir string, err error) {
	dir, err = os.MkdirTemp("", "hearsay-"+name+"-")
	if err != nil {
		return "", "", err
	}
	return "unix://" + filepath.Join(dir, "engine.sock"), dir, nil
}

// run accepts until the listener is closed.
func (a *acceptor) run() {
	backoff := time.Duration(0)
	for {
		c, err := a.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			a.errors()
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			a.warn.Warn(a.name+": accept failed; pausing", "err", err, "pause", backoff,
				"fd_exhausted", errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !a.admit() {
			if a.refuse != "" {
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
				_, _ = c.Write([]byte(a.refuse))
			}
			_ = c.Close()
			continue
		}
		a.pending.Add(1)
		ch, err := a.eng().Register(gnet.NewNetConnContext(context.Background(), c))
		if err != nil {
			a.pending.Add(-1)
			_ = c.Close()
			if a.n.stopping.Load() {
				return
			}
			a.warn.Warn(a.name+": cannot enroll a connection", "err", err)
			continue
		}
		go func() {
			// gnet dups the fd and closes c itself; a failure (EMFILE on
			// the dup) leaves nothing open.
			if r := <-ch; r.Err != nil {
				a.errors()
				a.warn.Warn(a.name+": cannot enroll a connection", "err", r.Err)
			}
			a.pending.Add(-1)
		}()
	}
}

// newAcceptor makes the acceptor of one listener. Both admit against
// n.maxClients, counting open client connections and bus links and what
// either acceptor is still enrolling, as Redis counts clients and cluster
// connections together.
func (n *Node) newAcceptor(name string, ln net.Listener, eng func() gnet.Engine, refuse string, errs func()) *acceptor {
	a := &acceptor{n: n, name: name, ln: ln, eng: eng, refuse: refuse, errors: errs, warn: n.warn}
	a.admit = func() bool {
		open := n.conns.Load()
		for _, o := range []*acceptor{n.cliAcc, n.busAcc} {
			if o != nil {
				open += o.pending.Load()
			}
		}
		if open < int64(n.maxClients) {
			return true
		}
		n.metrics.rejected.Inc()
		n.warn.Warn(name+": connection refused: maxclients reached", "maxclients", n.maxClients)
		return false
	}
	return a
}

// fitFDLimit raises the soft RLIMIT_NOFILE towards what maxClients
// connections need, and, like Redis, lowers maxClients when the hard limit
// does not allow that, with a warning. It returns the maxClients to
// enforce.
func fitFDLimit(maxClients int, warn func(msg string, args ...any)) (int, error) {
	need := uint64(maxClients + reservedFDs)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return maxClients, nil // cannot tell: enforce what was asked
	}
	if lim.Cur < need {
		want := lim
		want.Cur = min(need, lim.Max)
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			lim = want
		}
	}
	if lim.Cur >= need {
		return maxClients, nil
	}
	fit := int(lim.Cur) - reservedFDs
	if fit < 1 {
		return 0, fmt.Errorf("node: the open file limit (ulimit -n %d) leaves no room for connections beside the %d descriptors a node reserves", lim.Cur, reservedFDs)
	}
	warn("maxclients reduced to fit the open file limit", "maxclients", fit, "asked", maxClients, "nofile", lim.Cur)
	return fit, nil
}
