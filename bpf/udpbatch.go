package bpf

import (
	"errors"
	"net"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hearsay/hearsay/bpf/hbpacket"
)

// readBatch is how many datagrams one recvmmsg takes: more than a round's
// heartbeats from a node's peers at the sizes the observer ring gives
// (about 16 each way at 100 nodes), so a burst is usually one call.
const readBatch = 64

// rxSlot is one datagram's room: a heartbeat is hbpacket.Size bytes, and
// anything longer reads truncated, which is still a wrong length.
const rxSlot = 64

// batchReader serves the UDP fallback's socket: it waits for it on Go's
// netpoller and then takes every datagram queued with one recvmmsg, and
// answers the PINGs among them with one sendmmsg. Both calls never block
// (MSG_DONTWAIT), so they are made as raw system calls: a system call made
// through the runtime's entersyscall wakes the runtime's monitor thread
// when it sleeps, and at 100 nodes, where a node reads about 32
// heartbeats a round from 16 peers that the scheduler runs one after the
// other, those wakeups and the monitor's polling after each were about
// half of an idle node's context switches. A wait for readability is a
// park on the netpoller, not a system call.
type batchReader struct {
	rc syscall.RawConn
	p  *pinger

	bufs    [readBatch * rxSlot]byte
	names   [readBatch]unix.RawSockaddrInet6
	iovs    [readBatch]unix.Iovec
	msgs    [readBatch]unix.Mmsghdr
	out     [readBatch * hbpacket.Size]byte
	outIovs [readBatch]unix.Iovec
	outMsgs [readBatch]unix.Mmsghdr

	// The packet handle decodes into, and the calls RawConn runs with
	// their results: made once, because a closure or a packet that
	// escapes per datagram was most of an idle node's allocations.
	pkt            hbpacket.Packet
	recvFn, sendFn func(fd uintptr) bool
	got            int
	errno          syscall.Errno
	pending        []unix.Mmsghdr // replies not yet sent
	sent           int            // replies the last sendFn sent; -1: the first failed
}

func newBatchReader(rc syscall.RawConn, p *pinger) *batchReader {
	r := &batchReader{rc: rc, p: p}
	for i := range r.msgs {
		r.iovs[i] = unix.Iovec{Base: &r.bufs[i*rxSlot]}
		r.iovs[i].SetLen(rxSlot)
		r.msgs[i].Hdr.Iov = &r.iovs[i]
		r.msgs[i].Hdr.SetIovlen(1)
		r.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		r.outIovs[i] = unix.Iovec{Base: &r.out[i*hbpacket.Size]}
		r.outIovs[i].SetLen(hbpacket.Size)
		r.outMsgs[i].Hdr.Iov = &r.outIovs[i]
		r.outMsgs[i].Hdr.SetIovlen(1)
	}
	r.recvFn = func(fd uintptr) bool {
		// EINTR is retried at once: waiting for readability instead could
		// sleep past datagrams already queued (the poller reports edges,
		// and this one was consumed).
		v, e := mmsg(unix.SYS_RECVMMSG, fd, r.msgs[:])
		if e == unix.EAGAIN {
			return false
		}
		r.got, r.errno = int(v), e
		return true
	}
	r.sendFn = func(fd uintptr) bool {
		msgs := r.pending
		// EINTR means no reply was sent yet, so all are sent again.
		v, e := mmsg(unix.SYS_SENDMMSG, fd, msgs)
		switch {
		case e == unix.EAGAIN:
			return false
		case e != 0:
			r.sent = -1 // the first reply failed (an unreachable peer): skip it
		default:
			r.sent = int(v)
		}
		return true
	}
	return r
}

// mmsg makes the recvmmsg or sendmmsg trap on msgs, non-blocking, as a
// raw system call (one through the runtime would wake its monitor
// thread), and makes it again when a signal interrupted it.
func mmsg(trap, fd uintptr, msgs []unix.Mmsghdr) (uintptr, unix.Errno) {
	for {
		v, _, e := unix.RawSyscall6(trap, fd, uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
		if e != unix.EINTR {
			return v, e
		}
	}
}

// loop reads until the socket is closed. handle and replied are as in
// pinger.readLoop.
func (r *batchReader) loop(handle func(b []byte, pkt *hbpacket.Packet, now time.Duration) bool, replied func()) {
	for {
		n, err := r.recv()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		r.process(n, handle, replied)
	}
}

// recv waits until the socket is readable and takes what it holds.
func (r *batchReader) recv() (int, error) {
	for i := range r.msgs {
		r.msgs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		r.msgs[i].Len = 0
	}
	r.got, r.errno = 0, 0
	if err := r.rc.Read(r.recvFn); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, r.errno
	}
	return r.got, nil
}

// process handles n datagrams just read and answers the PINGs among them
// with one sendmmsg.
func (r *batchReader) process(n int, handle func(b []byte, pkt *hbpacket.Packet, now time.Duration) bool, replied func()) {
	now := MonotonicNow()
	replies := 0
	for i := 0; i < n; i++ {
		m := &r.msgs[i]
		size := min(int(m.Len), rxSlot)
		r.pkt = hbpacket.Packet{}
		if !handle(r.bufs[i*rxSlot:i*rxSlot+size], &r.pkt, now) {
			continue
		}
		reply := r.p.reply(&r.pkt)
		reply.Marshal(r.out[replies*hbpacket.Size:(replies+1)*hbpacket.Size], r.p.secret)
		o := &r.outMsgs[replies]
		o.Hdr.Name = m.Hdr.Name
		o.Hdr.Namelen = m.Hdr.Namelen
		replies++
	}
	r.pending = r.outMsgs[:replies]
	for len(r.pending) > 0 {
		r.sent = 0
		_ = r.rc.Write(r.sendFn)
		if r.sent == 0 {
			break // closed
		}
		if r.sent < 0 {
			r.pending = r.pending[1:]
			continue
		}
		for range r.sent {
			replied()
		}
		r.pending = r.pending[r.sent:]
	}
}
