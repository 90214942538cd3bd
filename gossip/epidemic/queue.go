package epidemic

import "math/bits"

// RetransmitBudget is how many times a rumor should be piggybacked in a
// cluster of n nodes: lambda * ceil(log2(n+1)), and at least 1. With each
// node gossiping to one random peer per round this is blind+counter rumor
// mongering with k = lambda*ceil(log2(n+1)), which leaves a residue that
// falls exponentially in lambda.
func RetransmitBudget(lambda, n int) int {
	if lambda < 1 || n < 1 {
		return 1
	}
	// For n >= 0, bits.Len(n) == ceil(log2(n+1)).
	return max(lambda*bits.Len(uint(n)), 1)
}

// Queue is the bounded piggyback retransmit queue used to fill the gossip
// section of outgoing PING/PONG messages.
//
// It is rumor mongering with blind loss of interest and a counter stop, with
// k = Budget: every time a rumor is handed out by Take it counts one
// transmission, whether or not the recipient already knew it, and after
// Budget transmissions the rumor is dropped (removed, in Demers's terms). It
// counts with the same code as RumorState.OnContact under Loss=Blind,
// Stop=Counter, which is what the epidemic experiment measures, so the
// experiment's residue and traffic for blind/counter/k=Budget describe this
// queue.
//
// Take prefers rumors sent the fewest times, and among those the most
// recently added or refreshed; the order is a total order on (sends, age) so
// output never depends on map iteration. Add, Take, Remove and Contains do
// not allocate once the queue has reached its working size.
//
// The queue is bounded twice: each rumor is sent at most Budget times, and
// with SetLimit at most Limit rumors are held; adding beyond the limit evicts
// the rumor that has been sent the most (the oldest of those).
//
// The zero value is an empty queue with budget 1 and no limit. A Queue is
// not safe for concurrent use.
type Queue[K comparable] struct {
	budget int
	limit  int
	seq    uint64
	index  map[K]int32 // key -> slot in ents
	ents   []queueEntry[K]
	free   []int32 // free slots in ents
	heap   []int32 // slots, min-heap by (sent asc, seq desc)
	taken  []int32 // scratch for Take
}

type queueEntry[K comparable] struct {
	key  K
	seq  uint64 // Add order; larger is newer
	sent int32  // transmissions so far
	pos  int32  // index in heap
}

// NewQueue returns an empty queue that drops a rumor after budget
// transmissions (values below 1 mean 1).
func NewQueue[K comparable](budget int) *Queue[K] {
	q := &Queue[K]{}
	q.SetBudget(budget)
	return q
}

// Budget returns the number of transmissions after which a rumor is dropped.
func (q *Queue[K]) Budget() int { return max(q.budget, 1) }

// Limit returns the maximum number of rumors held, 0 meaning no limit.
func (q *Queue[K]) Limit() int { return q.limit }

// Len returns the number of rumors queued.
func (q *Queue[K]) Len() int { return len(q.heap) }

// Contains reports whether key is queued.
func (q *Queue[K]) Contains(key K) bool {
	_, ok := q.index[key]
	return ok
}

// Sent returns how many times key has been handed out since it was last
// added, and whether it is queued.
func (q *Queue[K]) Sent(key K) (int, bool) {
	i, ok := q.index[key]
	if !ok {
		return 0, false
	}
	return int(q.ents[i].sent), true
}

// Add queues a new rumor, or refreshes a queued one: its transmission count
// goes back to zero and it becomes the most recent.
func (q *Queue[K]) Add(key K) {
	q.seq++
	if i, ok := q.index[key]; ok {
		e := &q.ents[i]
		e.sent = 0
		e.seq = q.seq
		q.up(int(e.pos)) // it only got better
		return
	}
	if q.limit > 0 {
		for len(q.heap) >= q.limit {
			q.removeAt(q.worst())
		}
	}
	if q.index == nil {
		q.index = make(map[K]int32)
	}
	var i int32
	if n := len(q.free); n > 0 {
		i = q.free[n-1]
		q.free = q.free[:n-1]
	} else {
		i = int32(len(q.ents))
		q.ents = append(q.ents, queueEntry[K]{})
	}
	q.ents[i] = queueEntry[K]{key: key, seq: q.seq, pos: int32(len(q.heap))}
	q.index[key] = i
	q.heap = append(q.heap, i)
	q.up(len(q.heap) - 1)
}

// Remove drops key from the queue and reports whether it was queued.
func (q *Queue[K]) Remove(key K) bool {
	i, ok := q.index[key]
	if !ok {
		return false
	}
	q.removeAt(int(q.ents[i].pos))
	return true
}

// Take hands out up to maxItems rumors, calling emit for each in order: fewest
// transmissions first, most recent first among equals. Each one handed out
// counts a transmission; a rumor that reaches the budget is dropped from the
// queue. A rumor is handed out at most once per call. It returns the number
// handed out. emit must not call methods of q.
func (q *Queue[K]) Take(maxItems int, emit func(K)) int {
	q.taken = q.taken[:0]
	budget := q.Budget()
	n := 0
	for n < maxItems && len(q.heap) > 0 {
		i := q.heap[0]
		q.heapRemove(0)
		e := &q.ents[i]
		emit(e.key)
		n++
		if spend(&e.sent, budget) {
			q.release(i)
		} else {
			q.taken = append(q.taken, i)
		}
	}
	for _, i := range q.taken {
		q.heapPush(i)
	}
	q.taken = q.taken[:0]
	return n
}

// SetBudget sets the number of transmissions after which a rumor is dropped
// (values below 1 mean 1). Rumors already sent that many times are dropped
// now.
func (q *Queue[K]) SetBudget(n int) {
	q.budget = max(n, 1)
	kept := q.heap[:0]
	for _, i := range q.heap {
		if int(q.ents[i].sent) >= q.budget {
			q.release(i)
			continue
		}
		kept = append(kept, i)
	}
	q.heap = kept
	for p, i := range q.heap {
		q.ents[i].pos = int32(p)
	}
	for p := len(q.heap)/2 - 1; p >= 0; p-- {
		q.down(p)
	}
}

// SetLimit bounds the number of rumors held (0 means no bound). When over
// the bound, the rumors sent the most times (oldest first among equals) are
// evicted, now and on later Adds.
func (q *Queue[K]) SetLimit(n int) {
	q.limit = max(n, 0)
	if q.limit > 0 {
		for len(q.heap) > q.limit {
			q.removeAt(q.worst())
		}
	}
}

// less orders slots: fewer sends first, then newer first.
func (q *Queue[K]) less(a, b int32) bool {
	ea, eb := &q.ents[a], &q.ents[b]
	if ea.sent != eb.sent {
		return ea.sent < eb.sent
	}
	return ea.seq > eb.seq
}

// worst returns the heap position of the entry Take would hand out last.
// It is a leaf of the heap, so only leaves are scanned.
func (q *Queue[K]) worst() int {
	w := len(q.heap) - 1
	for p := len(q.heap) / 2; p < len(q.heap); p++ {
		if q.less(q.heap[w], q.heap[p]) {
			w = p
		}
	}
	return w
}

func (q *Queue[K]) removeAt(p int) {
	i := q.heap[p]
	q.heapRemove(p)
	q.release(i)
}

// release frees slot i, which must not be in the heap.
func (q *Queue[K]) release(i int32) {
	e := &q.ents[i]
	delete(q.index, e.key)
	var zero queueEntry[K]
	*e = zero // do not retain the key
	q.free = append(q.free, i)
}

func (q *Queue[K]) heapPush(i int32) {
	q.ents[i].pos = int32(len(q.heap))
	q.heap = append(q.heap, i)
	q.up(len(q.heap) - 1)
}

func (q *Queue[K]) heapRemove(p int) {
	last := len(q.heap) - 1
	if p != last {
		q.swap(p, last)
	}
	q.heap = q.heap[:last]
	if p != last {
		q.down(p)
		q.up(p)
	}
}

func (q *Queue[K]) swap(a, b int) {
	h := q.heap
	h[a], h[b] = h[b], h[a]
	q.ents[h[a]].pos = int32(a)
	q.ents[h[b]].pos = int32(b)
}

func (q *Queue[K]) up(p int) {
	for p > 0 {
		parent := (p - 1) / 2
		if !q.less(q.heap[p], q.heap[parent]) {
			return
		}
		q.swap(p, parent)
		p = parent
	}
}

func (q *Queue[K]) down(p int) {
	n := len(q.heap)
	for {
		c := 2*p + 1
		if c >= n {
			return
		}
		if r := c + 1; r < n && q.less(q.heap[r], q.heap[c]) {
			c = r
		}
		if !q.less(q.heap[c], q.heap[p]) {
			return
		}
		q.swap(p, c)
		p = c
	}
}
