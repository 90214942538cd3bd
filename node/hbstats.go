package node

import (
	"strconv"
	"sync"
	"time"
)

// hbStatsCache rate-limits reads of the transport's counters: one INFO or
// /metrics scrape reads a dozen values, and the XDP counters are per-CPU
// map lookups.
type hbStatsCache struct {
	d  *heartbeatDriver
	mu sync.Mutex
	at time.Time
	st HeartbeatStats
	ok bool
}

func (c *hbStatsCache) get() (HeartbeatStats, bool) {
	src, ok := c.d.hb.(HeartbeatStatser)
	if !ok {
		return HeartbeatStats{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > 50*time.Millisecond {
		st, err := src.Stats()
		c.st, c.ok, c.at = st, err == nil, time.Now()
	}
	return c.st, c.ok
}

// hbCounters are the heartbeat counters shown in INFO and /metrics. The
// kernel answers PINGs and records PONGs only under XDP; there, the
// kernel counters belong to the program shared by all nodes on the
// interface. "user" counts what userspace handled: the udp fallback's
// socket, or under XDP the heartbeats that bypassed the program.
type hbCounters struct {
	pingsSent, sendErrors                          uint64
	kernelPingTx, userPingTx                       uint64
	kernelPongRx, userPongRx                       uint64
	badLen, badMagic, badType, badMAC, unknownPeer uint64
}

func (m *hbCounters) bad() uint64 {
	return m.badLen + m.badMagic + m.badType + m.badMAC + m.unknownPeer
}

func (d *heartbeatDriver) counters() (hbCounters, bool) {
	st, ok := d.stats.get()
	if !ok {
		return hbCounters{}, false
	}
	c := hbCounters{
		pingsSent: st.PingsSent, sendErrors: st.SendErrors,
		badLen: st.BadLen, badMagic: st.BadMagic, badType: st.BadType, badMAC: st.BadMAC, unknownPeer: st.UnknownPeer,
	}
	if d.hb.Mode() == HeartbeatXDP {
		c.kernelPingTx, c.kernelPongRx = st.PingTx, st.PongRx
		c.userPingTx, c.userPongRx = st.SlowPingTx, st.SlowPongRx
	} else {
		c.userPingTx, c.userPongRx = st.PingTx, st.PongRx
	}
	return c, true
}

// appendHeartbeatInfo renders the heartbeat lines of INFO (in the cluster
// section, and as INFO heartbeat).
func (n *Node) appendHeartbeatInfo(b []byte) []byte {
	kv := func(k, v string) { b = append(b, k+":"+v+"\r\n"...) }
	ku := func(k string, v uint64) { kv(k, strconv.FormatUint(v, 10)) }
	d := n.hb
	if d == nil {
		kv("heartbeat_mode", HeartbeatOff)
		return b
	}
	kv("heartbeat_mode", d.hb.Mode())
	if t, ok := d.hb.(*bpfHeartbeats); ok {
		if iface, attach, ok := t.xdpInfo(); ok {
			kv("heartbeat_xdp_iface", iface)
			kv("heartbeat_xdp_attach", attach)
		}
	}
	ku("heartbeat_ping_interval_ms", uint64(d.pingEvery.Milliseconds()))
	ku("heartbeat_peers", uint64(d.peerCount.Load()))
	ku("heartbeat_peers_answering", uint64(d.answering.Load()))
	c, ok := d.counters()
	if !ok {
		return b
	}
	ku("heartbeat_pings_sent", c.pingsSent)
	ku("heartbeat_send_errors", c.sendErrors)
	ku("heartbeat_pings_answered", c.kernelPingTx+c.userPingTx)
	ku("heartbeat_pings_answered_kernel", c.kernelPingTx)
	ku("heartbeat_pings_answered_user", c.userPingTx)
	ku("heartbeat_pongs_received", c.kernelPongRx+c.userPongRx)
	ku("heartbeat_pongs_received_kernel", c.kernelPongRx)
	ku("heartbeat_pongs_received_user", c.userPongRx)
	ku("heartbeat_bad_packets", c.bad())
	ku("heartbeat_bad_len", c.badLen)
	ku("heartbeat_bad_magic", c.badMagic)
	ku("heartbeat_bad_type", c.badType)
	ku("heartbeat_bad_mac", c.badMAC)
	ku("heartbeat_unknown_peer", c.unknownPeer)
	return b
}

// registerHeartbeatMetrics adds the heartbeat counters to /metrics. They
// are read from the transport at scrape time.
func (m *nodeMetrics) registerHeartbeatMetrics(d *heartbeatDriver) {
	s := m.set
	s.NewGauge(`hearsay_heartbeat_info{mode="`+d.hb.Mode()+`"}`, func() float64 { return 1 })
	s.NewGauge(`hearsay_heartbeat_peers`, func() float64 { return float64(d.peerCount.Load()) })
	s.NewGauge(`hearsay_heartbeat_peers_answering`, func() float64 { return float64(d.answering.Load()) })
	for _, g := range []struct {
		name string
		f    func(*hbCounters) uint64
	}{
		{`hearsay_heartbeat_pings_sent_total`, func(c *hbCounters) uint64 { return c.pingsSent }},
		{`hearsay_heartbeat_send_errors_total`, func(c *hbCounters) uint64 { return c.sendErrors }},
		{`hearsay_heartbeat_pings_answered_total{path="kernel"}`, func(c *hbCounters) uint64 { return c.kernelPingTx }},
		{`hearsay_heartbeat_pings_answered_total{path="user"}`, func(c *hbCounters) uint64 { return c.userPingTx }},
		{`hearsay_heartbeat_pongs_received_total{path="kernel"}`, func(c *hbCounters) uint64 { return c.kernelPongRx }},
		{`hearsay_heartbeat_pongs_received_total{path="user"}`, func(c *hbCounters) uint64 { return c.userPongRx }},
		{`hearsay_heartbeat_bad_packets_total{reason="len"}`, func(c *hbCounters) uint64 { return c.badLen }},
		{`hearsay_heartbeat_bad_packets_total{reason="magic"}`, func(c *hbCounters) uint64 { return c.badMagic }},
		{`hearsay_heartbeat_bad_packets_total{reason="type"}`, func(c *hbCounters) uint64 { return c.badType }},
		{`hearsay_heartbeat_bad_packets_total{reason="mac"}`, func(c *hbCounters) uint64 { return c.badMAC }},
		{`hearsay_heartbeat_bad_packets_total{reason="unknown_peer"}`, func(c *hbCounters) uint64 { return c.unknownPeer }},
	} {
		s.NewGauge(g.name, func() float64 {
			c, _ := d.counters()
			return float64(g.f(&c))
		})
	}
}
