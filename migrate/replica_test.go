package migrate

// The source's replica: it holds every write the source acknowledged (the
// world's client acknowledges after WAIT 1), and when the source has been
// down for more than a node timeout it wins an election and takes the
// slots the source still owns in the voters' view. Voters hear a claim at
// once (the claimer pushes it to every node), so that view is the world's
// binding history; a voter refuses a candidate whose slots moved to a
// newer configEpoch (failover.Ballot), so the replica takes only the slots
// whose newest binding is still the source's.

// replicasOf returns node i and, for the source while its replica follows
// it, the replica: the nodes a write or a deletion on i reaches.
func (w *world) replicasOf(i int) []*host {
	if i == src && !w.promoted && !w.h[src].demoted {
		return []*host{w.h[src], w.h[repl]}
	}
	return []*host{w.h[i]}
}

// promoteReplica fails the source over when it has been down long enough.
func (w *world) promoteReplica() {
	s := w.h[src]
	if !w.withReplica || w.promoted || s.alive || w.now-s.downAt <= w.cfg.NodeTimeout {
		return
	}
	var take Slots
	w.slots.each(func(x uint16) bool {
		var top uint64
		var owner = srcID
		for e, o := range w.bound[x] {
			if e > top {
				top, owner = e, o
			}
		}
		if owner == srcID {
			take = append(take, rng(x, x)...)
		}
		return true
	})
	if len(take) == 0 {
		// The source serves nothing any more: no election; the replica
		// follows the slots' new owner, and the source's own restart
		// deletes the keys it handed over (replicated here).
		return
	}
	w.promoted = true
	r := w.h[repl]
	for k := range r.data {
		if !take.Contains(keySlot(k)) {
			delete(r.data, k) // keys of slots it does not own
		}
	}
	for _, h := range w.h {
		h.view.nodes[replID] = Node{ID: replID, IsMaster: true}
	}
	r.view.nodes[srcID] = Node{ID: srcID, Master: replID, Failed: true}
	w.logf("replica promoted, takes %v", take)
	w.claim(repl, take)
}

// rejoinAsReplica is the old source coming back after the failover: it
// learns the claims before it serves (an UPDATE), turns replica of the
// winner and resyncs.
func (w *world) rejoinAsReplica() {
	s := w.h[src]
	s.deaf = 0
	w.spreadGossip(len(w.gossip))
	s.demoted = true
	for _, h := range w.h {
		h.view.nodes[srcID] = Node{ID: srcID, Master: replID}
	}
	s.data = map[string]int{}
	for k, v := range w.h[repl].data {
		s.data[k] = v
	}
}
