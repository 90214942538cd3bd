package node

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// OutputLimit is one class of Redis's client-output-buffer-limit: a client
// whose pending output exceeds Hard bytes, or stays above Soft bytes for
// SoftSeconds, is dropped. Zero disables a limit.
type OutputLimit struct {
	Hard, Soft  int64
	SoftSeconds int
}

// OutputLimits holds the classes hearsay knows (--client-output-buffer-limit).
// Pubsub is accepted for redis.conf compatibility; hearsay has no pub/sub.
type OutputLimits struct {
	Normal, Replica, Pubsub OutputLimit
}

// String renders l as CONFIG GET client-output-buffer-limit does.
func (l OutputLimits) String() string {
	var b []byte
	for i, c := range []OutputLimit{l.Normal, l.Replica, l.Pubsub} {
		if i > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%s %d %d %d", [...]string{"normal", "slave", "pubsub"}[i], c.Hard, c.Soft, c.SoftSeconds)
	}
	return string(b)
}

// DefaultOutputLimits: Redis leaves normal clients unlimited ("normal 0 0
// 0"), so one client that pipelines GETs of a large value and never reads
// can grow a node without bound. hearsay drops a normal client at 1 GiB of
// pending output, or after 60 s above 256 MiB; a single reply up to the
// default proto-max-bulk-len (512 MiB) still fits. Replica and pubsub are
// Redis's defaults.
var DefaultOutputLimits = OutputLimits{
	Normal:  OutputLimit{Hard: 1 << 30, Soft: 256 << 20, SoftSeconds: 60},
	Replica: OutputLimit{Hard: 256 << 20, Soft: 64 << 20, SoftSeconds: 60},
	Pubsub:  OutputLimit{Hard: 32 << 20, Soft: 8 << 20, SoftSeconds: 60},
}

// serveBudget is how much reply one Serve call produces before it yields:
// the rest of a pipeline waits in the input buffer until the output has
// drained below it, so a client that does not read holds at most its
// output limit, not the replies to everything it sent.
const serveBudget = 1 << 20

// resumePoll is how often a connection whose pipeline waits on its own
// output checks whether the output drained (gnet has no writable callback).
const resumePoll = 2 * time.Millisecond

// overOutputLimit reports whether a connection with pending bytes queued
// and more about to be queued breaks lim, tracking the soft limit's start
// in cc.
func overOutputLimit(lim OutputLimit, cc *clientConn, pending int64, now time.Time) bool {
	if lim.Hard > 0 && pending > lim.Hard {
		return true
	}
	if lim.Soft > 0 && pending > lim.Soft {
		if cc.softSince.IsZero() {
			cc.softSince = now
		}
		return now.Sub(cc.softSince) > time.Duration(lim.SoftSeconds)*time.Second
	}
	cc.softSince = time.Time{}
	return false
}

// dropForOutput logs (rate-limited) and counts a client dropped for its
// output, and has the memory its buffers held returned to the OS soon
// after gnet has released them.
func (s *clientServer) dropForOutput(c gnet.Conn, pending int64) {
	s.n.metrics.outputDropped.Inc()
	addr := ""
	if a := c.RemoteAddr(); a != nil {
		addr = a.String()
	}
	s.n.warn.Warn("client closed for overcoming its output buffer limits", "addr", addr, "pending", pending,
		"limit", s.n.cfg.OutputLimits.Normal.Hard)
	s.releaseMemory()
}

// bigOutput is the pending output past which a connection's close has the
// memory returned to the OS (releaseMemory). Below it the runtime's
// background scavenger keeps up on its own.
const bigOutput = 32 << 20

// freeInterval is the least time between two releaseMemory collections:
// each is a full GC plus a scavenge, tens of milliseconds of CPU on a
// large heap, and clients that open, queue and close in a loop must not
// turn that into a steady cost.
const freeInterval = 5 * time.Second

// releaseMemory has the memory of buffers just let go returned to the OS
// soon: 100 ms from now (gnet releases a closed connection's buffers after
// OnClose), or freeInterval after the previous release if that is later.
// Without it, Go keeps freed heap mapped: a burst of queued replies left
// RSS at its peak long after the client had gone.
func (s *clientServer) releaseMemory() {
	if !s.freeing.CompareAndSwap(false, true) {
		return // one is scheduled, and covers these buffers too
	}
	delay := 100 * time.Millisecond
	if next := time.Until(time.Unix(0, s.lastFree.Load()).Add(freeInterval)); next > delay {
		delay = next
	}
	time.AfterFunc(delay, func() {
		s.freeing.Store(false)
		// gnet's buffers go back to sync.Pools, which let go of them
		// only at the second collection.
		debug.FreeOSMemory()
		debug.FreeOSMemory()
		s.lastFree.Store(time.Now().UnixNano())
		s.n.metrics.memoryReleases.Inc()
	})
}

// outState is the output bookkeeping of one connection.
type outState struct {
	softSince time.Time   // when the pending output went over the soft limit
	resuming  atomic.Bool // a resume poll is scheduled
	peakOut   int64       // the most output ever pending, for releaseMemory on close
}

// resume has OnTraffic run again for a pipeline that yielded: at once if
// the output has drained, else after a short poll.
func (s *clientServer) resume(c gnet.Conn, cc *clientConn) {
	if int64(c.OutboundBuffered()) < serveBudget {
		_ = c.Wake(nil)
		return
	}
	if cc.resuming.CompareAndSwap(false, true) {
		time.AfterFunc(resumePoll, func() {
			cc.resuming.Store(false)
			_ = c.Wake(nil)
		})
	}
}
