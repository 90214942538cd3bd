package sim

import (
	"time"

	"github.com/hearsay/hearsay/bpf/hbpacket"
	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
)

// The modelled heartbeat transport (Options.Core.ExternalHeartbeat) and
// stalled processes: see "Heartbeats and stalls" in the package
// documentation.

// kernel is one host's heartbeat responder.
type kernel struct {
	progress uint64 // the process's counter, stamped into PONGs
	seq      uint64 // the last PING's sequence number
	peers    []kernPeer
	byKey    map[uint64]int32 // sender key -> index in peers
	plan     []gossip.Peer    // scratch for HeartbeatPlan
	// What the kernel did, across crashes: for tests.
	pingsAnswered, pongsRecorded uint64
}

// kernPeer is one peer the kernel knows and what it saw of its PONGs.
type kernPeer struct {
	id   wire.NodeID
	addr wire.Addr
	s    gossip.HeartbeatSample
}

// setPeers replaces the kernel's peers, keeping the samples of those that
// stay, as bpf.Heartbeater.SetPeers does.
func (k *kernel) setPeers(peers []gossip.Peer) {
	old := k.peers
	byKey := k.byKey
	k.peers = make([]kernPeer, 0, len(peers))
	k.byKey = make(map[uint64]int32, len(peers))
	for _, p := range peers {
		key := p.ID.Key()
		if _, dup := k.byKey[key]; dup {
			continue
		}
		kp := kernPeer{id: p.ID, addr: p.Addr}
		if j, ok := byKey[key]; ok && old[j].id == p.ID {
			kp.s = old[j].s
		}
		k.byKey[key] = int32(len(k.peers))
		k.peers = append(k.peers, kp)
	}
}

// heartbeat runs node i's heartbeat driver after a Tick of its core: the
// progress counter, the plan and its PINGs. feedSamples is the other half.
func (s *Sim) heartbeat(i int) {
	n := &s.nodes[i]
	k := &n.kern
	k.progress++
	now := s.CoreNow()
	plan := n.core.HeartbeatPlan(now, k.plan)
	k.plan = plan.Peers
	if plan.Changed {
		k.setPeers(plan.Peers)
	}
	if plan.Ping {
		for _, p := range k.peers {
			to, ok := s.byAdr[p.addr]
			if !ok {
				s.stats.HeartbeatsDropped++
				continue
			}
			k.seq++
			pkt := hbpacket.Packet{Type: hbpacket.Ping, Sender: n.id.Key(), Seq: k.seq,
				SendTime: uint64(now), Progress: k.progress}
			s.sendDatagram(i, int(to), &pkt)
		}
	}
}

// feedSamples feeds every sample node i's kernel holds to its core.
func (s *Sim) feedSamples(i int) {
	n := &s.nodes[i]
	k := &n.kern
	now := s.CoreNow()
	for j := range k.peers {
		if n.core == nil {
			return
		}
		r := n.core.Heartbeat(now, k.peers[j].id, k.peers[j].s)
		s.handle(i, &r)
	}
}

// sendDatagram sends one heartbeat packet from host from to host to.
func (s *Sim) sendDatagram(from, to int, pkt *hbpacket.Packet) {
	buf := pkt.AppendMarshal(s.getBuf(), s.hbKey)
	s.stats.Heartbeats++
	s.stats.HeartbeatBytes += uint64(len(buf))
	switch {
	case s.opt.Loss > 0 && s.rng.Float64() < s.opt.Loss,
		s.nodes[from].group != s.nodes[to].group:
		s.stats.HeartbeatsDropped++
		s.putBuf(buf)
		return
	}
	s.q.push(event{at: s.now + s.latency(), kind: evPacket, buf: buf, to: int32(to), from: int32(from)})
}

// deliverDatagram is a heartbeat packet arriving at host e.to: its kernel
// answers a PING from a known peer and records a PONG from one, whatever
// its process is doing.
func (s *Sim) deliverDatagram(e *event) {
	defer s.putBuf(e.buf)
	to := &s.nodes[e.to]
	if to.group != s.nodes[e.from].group {
		s.stats.HeartbeatsDropped++
		return
	}
	var pkt hbpacket.Packet
	if err := pkt.Unmarshal(e.buf, s.hbKey); err != nil {
		s.violate("node %d sent node %d a heartbeat packet that does not parse: %v", e.from, e.to, err)
		return
	}
	k := &to.kern
	j, ok := k.byKey[pkt.Sender]
	if !ok {
		s.stats.HeartbeatsDropped++ // unknown_peer, or a crashed host
		return
	}
	switch pkt.Type {
	case hbpacket.Ping:
		k.pingsAnswered++
		pong := pkt
		pong.Type = hbpacket.Pong
		pong.Sender = to.id.Key()
		pong.Progress = k.progress
		s.sendDatagram(int(e.to), int(e.from), &pong)
	case hbpacket.Pong:
		k.pongsRecorded++
		now := s.CoreNow()
		p := &k.peers[j].s
		p.PongsRecv++
		p.LastPong = now
		p.RTT = now - time.Duration(pkt.SendTime)
		p.Progress = pkt.Progress
	}
}

// Stall freezes node i's process now, as SIGSTOP or a long GC pause or
// swap storm would: its core is neither ticked nor stepped and its
// progress counter stops, while its kernel keeps answering heartbeat PINGs
// with the last counter. Bus frames that reach it meanwhile wait in its
// socket buffers, as TCP keeps them, up to stallBacklog frames (more are
// dropped, as a full buffer would stall and then break the link), and are
// stepped in arrival order when it resumes. A stalled node is up; Do on
// it fails. Crash ends a stall.
func (s *Sim) Stall(i int) {
	n := &s.nodes[i]
	if n.core != nil {
		n.stalled = true
	}
	s.sweepServing()
}

// down clears the kernel's peers: a crashed host answers nothing.
func (k *kernel) down() {
	k.progress, k.seq = 0, 0
	k.peers, k.byKey, k.plan = nil, nil, nil
}

// stallBacklog bounds the bus frames a stalled node buffers.
const stallBacklog = 4096

// Resume lets a stalled node i run again: it steps every bus frame it
// buffered, now, and ticks again at its next timer.
func (s *Sim) Resume(i int) {
	n := &s.nodes[i]
	if !n.stalled {
		return
	}
	n.stalled = false
	s.sweepServing()
	backlog := n.backlog
	n.backlog = nil
	for _, b := range backlog {
		if n.core == nil {
			s.putBuf(b.buf)
			continue
		}
		if err := s.dec.Decode(b.buf, &s.msg); err != nil {
			s.violate("node %d sent node %d a frame the decoder refused: %v", b.from, i, err)
		} else {
			s.stats.Delivered++
			r := n.core.Step(s.CoreNow(), &s.msg)
			s.handle(i, &r)
		}
		s.putBuf(b.buf)
	}
}

// Stalled reports whether node i is stalled.
func (s *Sim) Stalled(i int) bool { return s.nodes[i].stalled }

// buffered is a bus frame waiting for a stalled node.
type buffered struct {
	buf  []byte
	from int32
}

// HeartbeatSample reports what node i's kernel saw of peer j: the sample
// it gives the core, and whether j is among its peers.
func (s *Sim) HeartbeatSample(i, j int) (gossip.HeartbeatSample, bool) {
	k := &s.nodes[i].kern
	idx, ok := k.byKey[s.nodes[j].id.Key()]
	if !ok || k.peers[idx].id != s.nodes[j].id {
		return gossip.HeartbeatSample{}, false
	}
	return k.peers[idx].s, true
}

// PingsAnswered is how many heartbeat PINGs node i's kernel answered.
func (s *Sim) PingsAnswered(i int) uint64 { return s.nodes[i].kern.pingsAnswered }
