package sim

import "time"

// evKind says what an event does when its time comes.
type evKind uint8

const (
	evDeliver evKind = iota + 1 // a frame arrives at node to
	evTick                      // node to's core is ticked
	evAction                    // actions[from] runs (crash, restart, partition, admin call, ...)
	evPacket                    // a heartbeat packet (UDP, not the bus) arrives at host to
)

// event is one entry of the queue. It is a small value, not a pointer, so a
// queue of a million in-flight messages costs the GC nothing to scan beyond
// the frame buffers themselves.
type event struct {
	at   time.Duration
	seq  uint64 // insertion order breaks ties, which keeps runs deterministic
	buf  []byte // evDeliver, evPacket: the encoded frame or packet, returned to the pool after delivery
	kind evKind
	to   int32  // destination node
	from int32  // evDeliver, evPacket: sender; evAction: index into Sim.actions
	inc  uint32 // evDeliver, evTick: the incarnation of to when scheduled
}

func (e *event) before(o *event) bool {
	if e.at != o.at {
		return e.at < o.at
	}
	return e.seq < o.seq
}

// queue is a 4-ary min-heap of events ordered by (at, seq). A 4-ary heap is
// shallower than a binary one, which matters when it holds 10^5..10^6 events.
type queue struct {
	ev  []event
	seq uint64
}

func (q *queue) len() int { return len(q.ev) }

func (q *queue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.ev = append(q.ev, e)
	i := len(q.ev) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !q.ev[i].before(&q.ev[p]) {
			break
		}
		q.ev[i], q.ev[p] = q.ev[p], q.ev[i]
		i = p
	}
}

// peek returns the earliest event's time; the queue must not be empty.
func (q *queue) peek() time.Duration { return q.ev[0].at }

func (q *queue) pop() event {
	top := q.ev[0]
	n := len(q.ev) - 1
	q.ev[0] = q.ev[n]
	q.ev[n] = event{}
	q.ev = q.ev[:n]
	i := 0
	for {
		m := i
		c := 4*i + 1
		for k := c; k < c+4 && k < n; k++ {
			if q.ev[k].before(&q.ev[m]) {
				m = k
			}
		}
		if m == i {
			break
		}
		q.ev[i], q.ev[m] = q.ev[m], q.ev[i]
		i = m
	}
	return top
}
