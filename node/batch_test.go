package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// heldLoop stands in for the bus's event loop: it keeps what is queued on
// it instead of running it, so a test decides when the pass ends.
type heldLoop struct {
	gnet.EventLoop // nil: any other method panics
	mu             sync.Mutex
	queued         int
}

func (l *heldLoop) Execute(context.Context, gnet.Runnable) error {
	l.mu.Lock()
	l.queued++
	l.mu.Unlock()
	return nil
}

func (l *heldLoop) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queued
}

// batchBus returns the bus of a node that is not running, its loop held,
// and a log of its state writes and sends, in order.
func batchBus(t *testing.T) (*bus, *heldLoop, *[]string) {
	t.Helper()
	n, err := New(Config{Dir: t.TempDir(), Port: 7000, NodeTimeout: time.Second, Heartbeat: HeartbeatOff,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	b := n.bus
	hl := &heldLoop{}
	var loop gnet.EventLoop = hl
	b.loop.Store(&loop)
	t.Cleanup(func() {
		if b.timer != nil {
			b.timer.Stop()
		}
	})
	log := new([]string)
	b.save = func(sync bool) error {
		if sync {
			*log = append(*log, "save")
		} else {
			*log = append(*log, "save nosync")
		}
		return nil
	}
	b.deliver = func(to netip.AddrPort, typ wire.Type, frame []byte, _ time.Duration) {
		var m wire.Message
		if err := wire.NewDecoder(nil).Decode(frame, &m); err != nil || m.Type != typ {
			t.Errorf("frame to %v does not decode to its %v: %v", to, typ, err)
		}
		*log = append(*log, "send "+strconv.Itoa(int(to.Port())))
	}
	return b, hl, log
}

// persistReady is what a received slot claim gives: state to make durable
// and a message that announces it.
func persistReady(port uint16) gossip.Ready {
	msg := &wire.Message{Type: wire.TypePing, Header: wire.Header{Sender: newNodeID()}}
	return gossip.Ready{Persist: true, Dirty: true,
		Messages: []gossip.Envelope{{Addr: wire.Addr{IP: netip.MustParseAddr("127.0.0.1"), BusPort: port}, Msg: msg}}}
}

// An admin change applied without fsync is written before its messages but
// not fsynced, stays dirty, and the coalesced write fsyncs it; a Ready in
// the same batch that needs the fsync still gets it.
func TestDeferSyncWritesFirstAndSyncsLater(t *testing.T) {
	b, _, log := batchBus(t)
	b.applyNow(persistReady(20000), false)
	if want := []string{"save nosync", "send 20000"}; !slices.Equal(*log, want) {
		t.Fatalf("deferred admin write: %v, want %v", *log, want)
	}
	if !b.dirty {
		t.Fatal("after a write without fsync the state is not dirty: nothing would fsync it")
	}
	*log = (*log)[:0]
	b.lastWrite -= persistCoalesce // the coalescing window has passed
	_ = b.tick(context.Background())
	if want := []string{"save"}; !slices.Equal(*log, want) {
		t.Fatalf("the tick after the window did %v, want %v", *log, want)
	}
	if b.dirty {
		t.Fatal("still dirty after the fsynced write")
	}

	*log = (*log)[:0]
	b.apply(persistReady(20001)) // waits in the batch for the end of the pass
	b.applyNow(persistReady(20002), false)
	if want := []string{"save", "send 20001", "send 20002"}; !slices.Equal(*log, want) {
		t.Fatalf("a batch with a Ready that needs the fsync: %v, want %v", *log, want)
	}
	if b.dirty {
		t.Fatal("dirty after an fsynced write")
	}
}

// All the Readies of one pass of the loop are written once, and none of
// their messages leaves before that write.
func TestBatchPersistsOnceBeforeSending(t *testing.T) {
	b, hl, log := batchBus(t)
	for p := range uint16(5) {
		b.apply(persistReady(20000 + p))
	}
	if len(*log) != 0 {
		t.Fatalf("before the pass ended: %v", *log)
	}
	if q := hl.count(); q != 1 {
		t.Fatalf("%d flushes queued for one pass, want 1", q)
	}
	view := b.n.view.Load()
	_ = b.runFlush(context.Background())
	want := []string{"save", "send 20000", "send 20001", "send 20002", "send 20003", "send 20004"}
	if !slices.Equal(*log, want) {
		t.Fatalf("flush did %v, want %v", *log, want)
	}
	if b.n.view.Load() == view {
		t.Error("the route view was not republished")
	}
	if b.dirty {
		t.Error("still dirty after the write")
	}
}

// When the write fails, the messages of the Readies that needed it are
// dropped and counted; a Ready that needed no write still sends.
func TestBatchDropsWhatWasNotWritten(t *testing.T) {
	b, _, log := batchBus(t)
	b.save = func(bool) error { return errors.New("disk full") }
	b.apply(persistReady(20000))
	plain := persistReady(20001)
	plain.Persist = false
	b.apply(plain)
	_ = b.runFlush(context.Background())
	if want := []string{"send 20001"}; !slices.Equal(*log, want) {
		t.Fatalf("flush did %v, want %v", *log, want)
	}
	if got := b.n.metrics.persistDropped.Get(); got != 1 {
		t.Errorf("%d messages counted as dropped, want 1", got)
	}
	if !b.dirty {
		t.Error("a failed write left nothing to retry")
	}
}

// An admin call's Ready is carried out before the call returns, together
// with what the pass had applied before it; and a Ready applied while a
// flush sends (a migration claiming its slots) is durable and sent before
// that flush goes on.
func TestBatchApplyNowAndNested(t *testing.T) {
	b, _, log := batchBus(t)
	b.apply(persistReady(20000))
	b.applyNow(persistReady(20001), true)
	if want := []string{"save", "send 20000", "send 20001"}; !slices.Equal(*log, want) {
		t.Fatalf("applyNow did %v, want %v", *log, want)
	}
	*log = (*log)[:0]
	deliver := b.deliver
	b.deliver = func(to netip.AddrPort, typ wire.Type, frame []byte, now time.Duration) {
		deliver(to, typ, frame, now)
		if to.Port() == 20002 {
			b.applyNow(persistReady(20009), true)
		}
	}
	b.apply(persistReady(20002))
	b.apply(persistReady(20003))
	b.flush()
	if want := []string{"save", "send 20002", "save", "send 20009", "send 20003"}; !slices.Equal(*log, want) {
		t.Fatalf("nested flush did %v, want %v", *log, want)
	}
}

// A caller that flushes as soon as it has applied (a tick, an admin call,
// a flush carrying out what it set off) queues no flush task: the task
// would only find the batch empty. What it applied is still carried out.
func TestBatchHeldFlushQueuesNoTask(t *testing.T) {
	b, hl, log := batchBus(t)
	// Flushes arm the tick timer; keep its ticks off the held loop so that
	// only flush tasks are counted.
	b.ticking.Store(true)
	b.holdFlush(func() {
		b.apply(persistReady(20000))
		b.apply(persistReady(20001))
	})
	b.flush()
	b.applyNow(persistReady(20002), true)
	deliver := b.deliver
	b.deliver = func(to netip.AddrPort, typ wire.Type, frame []byte, now time.Duration) {
		deliver(to, typ, frame, now)
		if to.Port() == 20003 {
			b.apply(persistReady(20004)) // applied during a flush
		}
	}
	b.applyNow(persistReady(20003), true)
	if q := hl.count(); q != 0 {
		t.Errorf("%d flush tasks queued by callers that flush themselves, want 0", q)
	}
	want := []string{"save", "send 20000", "send 20001", "save", "send 20002", "save", "send 20003", "save", "send 20004"}
	if !slices.Equal(*log, want) {
		t.Fatalf("did %v, want %v", *log, want)
	}
	// Outside a held caller, an apply still queues its flush.
	b.apply(persistReady(20005))
	if q := hl.count(); q != 1 {
		t.Errorf("%d flush tasks queued for a plain apply, want 1", q)
	}
}
