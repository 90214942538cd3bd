package node

import (
	"net"
	"sync"
)

// linkLife is what an export's and an import's connection share: the
// connection, set once it exists, and quit, closed exactly once when the
// link ends (which also closes the connection, unblocking its reader).
// quit must be made when the link is.
type linkLife struct {
	quit chan struct{}
	once sync.Once

	mu   sync.Mutex
	conn net.Conn
}

// setConn records the link's connection.
func (l *linkLife) setConn(c net.Conn) {
	l.mu.Lock()
	l.conn = c
	l.mu.Unlock()
}

// close ends the link; later calls do nothing.
func (l *linkLife) close() {
	l.once.Do(func() {
		close(l.quit)
		l.mu.Lock()
		if l.conn != nil {
			_ = l.conn.Close()
		}
		l.mu.Unlock()
	})
}

// closed reports whether close was called.
func (l *linkLife) closed() bool {
	select {
	case <-l.quit:
		return true
	default:
		return false
	}
}
