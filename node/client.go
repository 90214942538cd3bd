package node

import (
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
	n   *Node
	eng gnet.Engine
}

// clientConn is a connection's context: its command state and a reusable
// reply buffer.
type clientConn struct {
	cs  *command.ConnState
	out []byte
}

// OnBoot keeps the engine handle for shutdown.
func (s *clientServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	return gnet.None
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
	c.SetContext(&clientConn{cs: cs})
	s.n.metrics.clientsOpened.Inc()
	return nil, gnet.None
}

// OnClose releases the connection's command state.
func (s *clientServer) OnClose(c gnet.Conn, _ error) gnet.Action {
	if cc, ok := c.Context().(*clientConn); ok {
		s.n.disp.CloseConn(cc.cs)
	}
	return gnet.None
}

// OnTraffic serves every complete request in the inbound buffer. Arguments
// alias the buffer, so it is discarded only after Serve returns; a partial
// request stays buffered until more bytes arrive.
func (s *clientServer) OnTraffic(c gnet.Conn) gnet.Action {
	cc, ok := c.Context().(*clientConn)
	if !ok {
		return gnet.Close
	}
	in, err := c.Peek(-1)
	if err != nil || len(in) == 0 {
		return gnet.None
	}
	consumed, out, closeConn := s.n.disp.Serve(cc.cs, in, cc.out[:0])
	if len(out) > 0 {
		_, _ = c.Write(out)
	}
	// gnet's Discard(0) drops the whole inbound buffer, which would lose
	// the start of a request that is still arriving.
	if consumed > 0 {
		_, _ = c.Discard(consumed)
	}
	if cap(out) <= maxKeptOut {
		cc.out = out[:0]
	} else {
		cc.out = nil
	}
	if closeConn {
		return gnet.Close
	}
	return gnet.None
}
