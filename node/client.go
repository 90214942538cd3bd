package node

import (
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/hearsay/hearsay/node/command"
)

// maxKeptOut is the largest reply buffer a connection keeps between
// requests; bigger ones (a huge KEYS) are dropped so idle connections stay
// small.
const maxKeptOut = 64 << 10

// clientServer is the gnet handler of the RESP port. It runs on several
// event loops; the dispatcher and the store are safe for that, and routing
// reads the published view.
type clientServer struct {
	gnet.BuiltinEventEngine
	n        *Node
	eng      gnet.Engine
	booted   chan struct{} // closed by the first OnTick: the engine runs
	started  atomic.Bool
	freeing  atomic.Bool  // a FreeOSMemory is scheduled
	lastFree atomic.Int64 // unix ns of the last one
}

// partialAfter is the size of an incomplete request above which its bytes
// move out of gnet's buffer into the connection's own: gnet's Peek copies
// everything buffered into one slice on every call, so a large request
// arriving in many reads would be copied once per read.
const partialAfter = 64 << 10

// clientConn is a connection's context: its command state, a reusable
// reply buffer and, while a large request arrives, its bytes so far.
type clientConn struct {
	cs  *command.ConnState
	out []byte
	// partial holds the unconsumed input (a large incomplete request
	// and anything after it) once it grew past partialAfter; while it
	// is non-empty, every new byte is appended to it.
	partial []byte
	// need is how many bytes the incomplete request at the start of the
	// input needs before parsing can get further (0: unknown).
	need int
	outState
}

// OnBoot keeps the engine handle for shutdown.
func (s *clientServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	return gnet.None
}

// OnTick's first call says the engine's loops run, so the acceptor may
// Register connections (during OnBoot that races the engine's start);
// after it the ticker sleeps an hour at a time.
func (s *clientServer) OnTick() (time.Duration, gnet.Action) {
	if s.started.CompareAndSwap(false, true) {
		close(s.booted)
	}
	return time.Hour, gnet.None
}

// OnOpen creates the connection's command state.
func (s *clientServer) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	cs := s.n.disp.NewConn()
	if a := c.RemoteAddr(); a != nil {
		cs.Addr = a.String()
	}
	if a := c.LocalAddr(); a != nil {
		cs.LocalAddr = a.String()
	}
	cs.Wake = func() { _ = c.Wake(nil) }
	c.SetContext(&clientConn{cs: cs})
	s.n.metrics.clientsOpened.Inc()
	s.n.conns.Add(1)
	return nil, gnet.None
}

// OnClose releases the connection's command state.
func (s *clientServer) OnClose(c gnet.Conn, _ error) gnet.Action {
	if cc, ok := c.Context().(*clientConn); ok {
		s.n.disp.CloseConn(cc.cs)
		s.n.conns.Add(-1)
		if cc.peakOut >= bigOutput {
			s.releaseMemory()
		}
	}
	return gnet.None
}

// OnTraffic serves every complete request in the inbound buffer. Arguments
// alias the buffer, so it is discarded only after Serve returns; a partial
// request stays buffered until more bytes arrive, and is not looked at
// again before the bytes it is known to need are there.
func (s *clientServer) OnTraffic(c gnet.Conn) gnet.Action {
	cc, ok := c.Context().(*clientConn)
	if !ok {
		return gnet.Close
	}
	if reply, blocked := cc.cs.Blocked(); blocked {
		// A blocking command (WAIT) is pending: what arrives waits in
		// gnet's buffer until it is answered.
		return gnet.None
	} else if reply != nil {
		_, _ = c.Write(reply)
	}
	if len(cc.partial) > 0 {
		// gnet's buffer is empty between calls in this mode, so Peek
		// returns the bytes just read without copying.
		in, err := c.Peek(-1)
		if err == nil && len(in) > 0 {
			cc.partial = append(cc.partial, in...)
			_, _ = c.Discard(len(in))
		}
		if cc.need > len(cc.partial) {
			return gnet.None
		}
		consumed, closeConn := s.serve(c, cc, cc.partial)
		n := copy(cc.partial, cc.partial[consumed:])
		cc.partial = cc.partial[:n]
		if n == 0 && cap(cc.partial) > maxKeptOut {
			cc.partial = nil // the large request is done: free its buffer
		}
		return closeAction(closeConn)
	}
	if cc.need > 0 && c.InboundBuffered() < cc.need {
		return gnet.None
	}
	in, err := c.Peek(-1)
	if err != nil || len(in) == 0 {
		return gnet.None
	}
	consumed, closeConn := s.serve(c, cc, in)
	if rest := in[consumed:]; len(rest) > partialAfter && !closeConn {
		cc.partial = append(cc.partial[:0], rest...)
		consumed = len(in)
	}
	// gnet's Discard(0) drops the whole inbound buffer, which would lose
	// the start of a request that is still arriving.
	if consumed > 0 {
		_, _ = c.Discard(consumed)
	}
	return closeAction(closeConn)
}

// serve runs the dispatcher over in, writes the replies, and records how
// much the incomplete request left at the end of in needs.
func (s *clientServer) serve(c gnet.Conn, cc *clientConn, in []byte) (consumed int, closeConn bool) {
	cc.cs.OutBudget = serveBudget
	consumed, out, closeConn := s.n.disp.Serve(cc.cs, in, cc.out[:0])
	if h := cc.cs.TakeHandover(); h != nil {
		s.handOver(c, h, out, in[consumed:])
		cc.out = nil
		return len(in), true
	}
	pending := int64(c.OutboundBuffered()) + int64(len(out))
	cc.peakOut = max(cc.peakOut, pending)
	if overOutputLimit(s.n.cfg.OutputLimits.Normal, cc, pending, time.Now()) {
		// Dropped without queueing out, as Redis closes such a client
		// before anything more is written.
		s.dropForOutput(c, pending)
		cc.out, cc.partial = nil, nil
		return len(in), true
	}
	if len(out) > 0 {
		_, _ = c.Write(out)
	}
	yielded := len(out) >= serveBudget && consumed < len(in) && !closeConn
	if yielded {
		s.resume(c, cc)
	}
	// A yielded pipeline keeps its large buffer for the next reply rather
	// than leaving one reply's worth of garbage per command.
	if cap(out) <= maxKeptOut || yielded {
		cc.out = out[:0]
	} else {
		cc.out = nil
	}
	cc.need = cc.cs.Need()
	return consumed, closeConn
}

func closeAction(closeConn bool) gnet.Action {
	if closeConn {
		return gnet.Close
	}
	return gnet.None
}

// handOver gives the connection's socket to h (PSYNC): gnet closes its own
// descriptor when the handler returns Close, and h keeps a duplicate.
func (s *clientServer) handOver(c gnet.Conn, h command.Handover, out, rest []byte) {
	out, rest = append([]byte(nil), out...), append([]byte(nil), rest...)
	fd, err := c.Dup()
	if err != nil {
		s.n.log.Warn("replication: cannot take over the connection", "err", err)
		return
	}
	f := os.NewFile(uintptr(fd), "replica")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		s.n.log.Warn("replication: cannot take over the connection", "err", err)
		return
	}
	h(nc, out, rest)
}
