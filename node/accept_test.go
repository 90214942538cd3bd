package node

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/hearsay/hearsay/internal/ratelog"
)

// emfileListener fails Accept with EMFILE n times, then reports closed.
type emfileListener struct {
	net.Listener
	n     int
	calls atomic.Int64
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if int(l.calls.Add(1)) <= l.n {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return nil, fmt.Errorf("accept: %w", net.ErrClosed)
}

func (l *emfileListener) Close() error { return nil }

// TestAcceptorSurvivesEMFILE: accept errors are counted and waited out
// with a growing pause; only a closed listener ends the loop.
func TestAcceptorSurvivesEMFILE(t *testing.T) {
	ln := &emfileListener{n: 4}
	var errs atomic.Int64
	a := &acceptor{n: &Node{}, name: "client", ln: ln, eng: func() gnet.Engine { return gnet.Engine{} },
		admit: func() bool { return true }, errors: func() { errs.Add(1) },
		warn: ratelog.New(slog.New(slog.NewTextHandler(io.Discard, nil)))}
	start := time.Now()
	done := make(chan struct{})
	go func() { a.run(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the acceptor did not return after its listener closed")
	}
	if errs.Load() != 4 {
		t.Fatalf("%d accept errors counted, want 4", errs.Load())
	}
	// 5+10+20+40 ms of pauses.
	if took := time.Since(start); took < 75*time.Millisecond {
		t.Fatalf("4 EMFILEs took %v: the acceptor did not back off", took)
	}
}
