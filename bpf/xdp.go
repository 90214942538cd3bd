package bpf

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/hearsay/hearsay/bpf/hbpacket"
)

// XDP is the Heartbeater whose PINGs are answered by the kernel. Create it
// with NewXDP.
type XDP struct {
	cfg Config
	ifc *iface
	p   *pinger

	done chan struct{}

	mu     sync.Mutex
	slow   [2]uint64 // SlowPingTx, SlowPongRx
	known  map[uint64]bool
	keys   []heartbeatHbPeerKey
	vals   []heartbeatHbPeer
	closed bool
}

var _ Heartbeater = (*XDP)(nil)

// NewXDP joins the XDP program on cfg.Interface (attaching it if this is the
// first node there), registers this node's port and opens the UDP socket
// the PINGs are sent from. Errors that mean "XDP is not possible here" wrap
// ErrUnsupported.
func NewXDP(cfg Config) (*XDP, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ifname := cfg.Interface
	if ifname == "" {
		var err error
		if ifname, err = defaultInterface(cfg.Bind.Addr()); err != nil {
			return nil, err
		}
	}
	p, err := newPinger(&cfg, true)
	if err != nil {
		return nil, err
	}
	ifc, err := openIface(ifname, cfg.Bind.Port(), cfg.PinRoot, cfg.LockDir, cfg.XDPMode, cfg.logf)
	if err != nil {
		p.close()
		return nil, err
	}
	x := &XDP{cfg: cfg, ifc: ifc, p: p, known: map[uint64]bool{}, done: make(chan struct{})}
	node := nodeEntry(cfg.Key, cfg.Secret)
	err = ifc.objs.HbProgress.Update(&ifc.port, uint64(0), ebpf.UpdateAny)
	if err == nil {
		err = ifc.objs.HbNodes.Update(&ifc.port, &node, ebpf.UpdateAny)
	}
	if err != nil {
		close(x.done)
		x.Close()
		return nil, fmt.Errorf("heartbeat: register node: %w", err)
	}
	go x.serveSlowPath()
	return x, nil
}

// serveSlowPath handles heartbeats that reach the socket although the
// program is attached: they did not cross the XDP interface (a peer on
// this host talking over lo while XDP is on eth0, say). PINGs are answered
// from userspace; PONGs are written into the same peer map entry the
// kernel updates, so Samples stay complete. Stats.SlowPingTx and
// SlowPongRx count them.
func (x *XDP) serveSlowPath() {
	defer close(x.done)
	x.p.readLoop(x.recordSlow, func() {
		x.mu.Lock()
		x.slow[0]++
		x.mu.Unlock()
	})
}

// recordSlow decodes one datagram of the slow path and writes it into the
// peer map as the program would; it reports whether it is a PING to answer.
func (x *XDP) recordSlow(b []byte, pkt *hbpacket.Packet, now time.Duration) bool {
	if pkt.Unmarshal(b, x.cfg.Secret) != nil {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed || !x.known[pkt.Sender] {
		return false
	}
	k := heartbeatHbPeerKey{PeerKey: pkt.Sender, LocalPort: x.ifc.port}
	var v heartbeatHbPeer
	if x.ifc.objs.HbPeers.Lookup(&k, &v) != nil {
		return false
	}
	if pkt.Type == hbpacket.Ping {
		v.PingsRx++
	} else {
		v.PongsRx++
		v.LastPongNs = uint64(now)
		v.RttNs = 0
		if uint64(now) >= pkt.SendTime {
			v.RttNs = uint64(now) - pkt.SendTime
		}
		v.Progress, v.Seq, v.PongFlags = pkt.Progress, pkt.Seq, uint32(pkt.Flags)
		x.slow[1]++
	}
	_ = x.ifc.objs.HbPeers.Update(&k, &v, ebpf.UpdateExist)
	return pkt.Type == hbpacket.Ping
}

// hb_node.flags bits (heartbeat.c).
const (
	nodeAuth   = 1
	nodeActive = 2
)

func nodeEntry(key uint64, secret *hbpacket.Key) heartbeatHbNode {
	n := heartbeatHbNode{OwnKey: key, Flags: nodeActive}
	if secret != nil {
		n.MacK0, n.MacK1 = secret.Halves()
		n.Flags |= nodeAuth
		n.PongOut.V = hbpacket.MACPrefix(secret, hbpacket.Pong, hbpacket.FlagKernel, key)
	}
	return n
}

// peerEntry is a new hb_peers value for the peer with sender key key: zero
// counters and, with a secret, the MAC prefixes of its PINGs and PONGs.
func peerEntry(key uint64, secret *hbpacket.Key) heartbeatHbPeer {
	var v heartbeatHbPeer
	if secret != nil {
		v.PingIn.V = hbpacket.MACPrefix(secret, hbpacket.Ping, 0, key)
		v.PongIn.V = hbpacket.MACPrefix(secret, hbpacket.Pong, hbpacket.FlagKernel, key)
	}
	return v
}

// Mode returns ModeXDP.
func (x *XDP) Mode() Mode { return ModeXDP }

// AttachMode reports whether the program runs in native or generic mode.
func (x *XDP) AttachMode() AttachMode { return x.ifc.mode }

// Interface returns the interface the program is attached to.
func (x *XDP) Interface() string { return x.ifc.name }

// PinDir returns the bpffs directory with the shared program and maps.
func (x *XDP) PinDir() string { return x.ifc.pinDir }

// SetPeers implements Heartbeater.
func (x *XDP) SetPeers(peers []Peer) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return errClosed
	}
	want := make(map[uint64]bool, len(peers))
	var errs []error
	for _, p := range peers {
		want[p.Key] = true
		if x.known[p.Key] {
			continue
		}
		k := heartbeatHbPeerKey{PeerKey: p.Key, LocalPort: x.ifc.port}
		v := peerEntry(p.Key, x.cfg.Secret)
		err := x.ifc.objs.HbPeers.Update(&k, &v, ebpf.UpdateNoExist)
		if err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
			errs = append(errs, fmt.Errorf("heartbeat: add peer %x: %w", p.Key, err))
			continue
		}
		x.known[p.Key] = true
	}
	for key := range x.known {
		if want[key] {
			continue
		}
		k := heartbeatHbPeerKey{PeerKey: key, LocalPort: x.ifc.port}
		if err := x.ifc.objs.HbPeers.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("heartbeat: remove peer %x: %w", key, err))
			continue
		}
		delete(x.known, key)
	}
	x.p.setPeers(peers)
	return errors.Join(errs...)
}

// Tick implements Heartbeater: it bumps the progress counter in the
// kernel's hb_progress array.
func (x *XDP) Tick() error {
	v := x.p.tick()
	return x.ifc.objs.HbProgress.Update(&x.ifc.port, v, ebpf.UpdateAny)
}

// SendPings implements Heartbeater.
func (x *XDP) SendPings() error { return x.p.sendPings() }

// SetKey implements Heartbeater: the kernel stamps the new key (and MACs
// PONGs with its prefix) from the next PING on.
func (x *XDP) SetKey(key uint64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return errClosed
	}
	node := nodeEntry(key, x.cfg.Secret)
	if err := x.ifc.objs.HbNodes.Update(&x.ifc.port, &node, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("heartbeat: set key: %w", err)
	}
	x.cfg.Key = key
	x.p.setKey(key)
	return nil
}

// Samples implements Heartbeater. It reads the peer map with one batched
// lookup (BPF_MAP_LOOKUP_BATCH) where the kernel supports it.
func (x *XDP) Samples(dst []Sample) ([]Sample, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	dst = dst[:0]
	if x.closed {
		return dst, errClosed
	}
	m := x.ifc.objs.HbPeers
	n := int(m.MaxEntries())
	if len(x.keys) < n {
		x.keys = make([]heartbeatHbPeerKey, n)
		x.vals = make([]heartbeatHbPeer, n)
	}
	var cursor ebpf.MapBatchCursor
	got := 0
	for {
		c, err := m.BatchLookup(&cursor, x.keys[got:], x.vals[got:], nil)
		got += c
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break // done
		}
		if errors.Is(err, ebpf.ErrNotSupported) {
			return x.samplesIterate(dst)
		}
		if err != nil {
			return dst, fmt.Errorf("heartbeat: read peers: %w", err)
		}
		if got >= n {
			break
		}
	}
	for i := 0; i < got; i++ {
		if x.keys[i].LocalPort == x.ifc.port {
			dst = append(dst, sampleOf(x.keys[i].PeerKey, &x.vals[i]))
		}
	}
	return dst, nil
}

func (x *XDP) samplesIterate(dst []Sample) ([]Sample, error) {
	var (
		k heartbeatHbPeerKey
		v heartbeatHbPeer
	)
	it := x.ifc.objs.HbPeers.Iterate()
	for it.Next(&k, &v) {
		if k.LocalPort == x.ifc.port {
			dst = append(dst, sampleOf(k.PeerKey, &v))
		}
	}
	return dst, it.Err()
}

func sampleOf(key uint64, v *heartbeatHbPeer) Sample {
	return Sample{
		PeerKey:   key,
		PingsRecv: v.PingsRx,
		PongsRecv: v.PongsRx,
		LastPong:  time.Duration(v.LastPongNs),
		RTT:       time.Duration(v.RttNs),
		Progress:  v.Progress,
		Seq:       v.Seq,
		Kernel:    v.PongFlags&uint32(hbpacket.FlagKernel) != 0,
	}
}

// Stats implements Heartbeater. Packet counters are summed over CPUs and
// shared by all nodes on the interface.
func (x *XDP) Stats() (Stats, error) {
	var s Stats
	x.mu.Lock()
	closed := x.closed
	x.mu.Unlock()
	if closed {
		return s, errClosed
	}
	c, err := readStats(x.ifc.objs.HbStats)
	if err != nil {
		return s, err
	}
	s.addKernel(&c)
	x.p.counters(&s)
	x.mu.Lock()
	s.SlowPingTx, s.SlowPongRx = x.slow[0], x.slow[1]
	x.mu.Unlock()
	return s, nil
}

func readStats(m *ebpf.Map) ([statCount]uint64, error) {
	var c [statCount]uint64
	var per []uint64
	for i := uint32(0); i < statCount; i++ {
		if err := m.Lookup(&i, &per); err != nil {
			return c, fmt.Errorf("heartbeat: read stats: %w", err)
		}
		for _, v := range per {
			c[i] += v
		}
	}
	return c, nil
}

// Close implements Heartbeater.
func (x *XDP) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	x.closed = true
	x.mu.Unlock()
	err := x.p.close()
	<-x.done
	x.mu.Lock()
	return errors.Join(err, x.ifc.leave())
}

var errClosed = errors.New("heartbeat: closed")
