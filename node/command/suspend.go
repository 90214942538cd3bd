package command

import (
	"net"
	"sync"
)

// Handover is how a command takes a connection away from the runtime
// (PSYNC turning a client into a replica link): conn is the socket, out
// the replies produced before the command, which must be written first,
// and in the input that followed the command.
type Handover func(conn net.Conn, out, in []byte)

// Detach ends the connection's life as a client after the current
// command: Serve stops there, and the runtime gives the socket to fn
// instead of closing it.
func (x *Ctx) Detach(fn Handover) {
	x.Conn.detach = fn
	x.Conn.closing = true
}

// TakeHandover returns, once, the Handover a command asked for.
func (c *ConnState) TakeHandover() Handover {
	fn := c.detach
	c.detach = nil
	return fn
}

// blockState is a connection suspended by a blocking command (WAIT).
type blockState struct {
	mu    sync.Mutex
	reply []byte
	done  bool
}

// Block suspends the connection after the current command: Serve stops
// there, and the runtime serves nothing more from the connection until
// the returned function is called with the command's reply. Call it once,
// from any goroutine; it calls ConnState.Wake.
func (x *Ctx) Block() (resume func(reply []byte)) {
	c := x.Conn
	b := &blockState{}
	c.block = b
	return func(reply []byte) {
		b.mu.Lock()
		b.reply, b.done = reply, true
		b.mu.Unlock()
		if c.Wake != nil {
			c.Wake()
		}
	}
}

// OnClose registers fn to run when the connection closes (a blocked WAIT
// lets go of its waiter).
func (c *ConnState) OnClose(fn func()) { c.onClose = append(c.onClose, fn) }

// Blocked reports whether the connection waits for a blocking command's
// reply. When the reply has arrived it returns it with blocked false, once,
// and the connection is served again.
func (c *ConnState) Blocked() (reply []byte, blocked bool) {
	b := c.block
	if b == nil {
		return nil, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		return nil, true
	}
	c.block = nil
	return b.reply, false
}
