package node

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/node/clusterview"
	"github.com/hearsay/hearsay/node/web"
	"github.com/hearsay/hearsay/ring"
)

// WebView is the JSON document of the web view's /api/view: the published
// route view (as /status and CLUSTER NODES show it), the heartbeat
// samples the driver last fed the core, and the heartbeat counters of
// INFO and /metrics. It is read-only.
type WebView struct {
	ID           string         `json:"id"`
	ClusterState string         `json:"cluster_state"`
	CurrentEpoch uint64         `json:"current_epoch"`
	ConfigEpoch  uint64         `json:"config_epoch"`
	Role         string         `json:"role"`
	Keys         int            `json:"keys"`
	Size         int            `json:"size"`
	Now          int64          `json:"now_ms"` // unix ms when built
	Nodes        []WebNode      `json:"nodes"`
	Slots        []WebSlotRange `json:"slots"` // owned ranges, by node index
	Migrating    []WebSlotMark  `json:"migrating"`
	Importing    []WebSlotMark  `json:"importing"`
	Heartbeat    WebHeartbeat   `json:"heartbeat"`
	Events       WebEventStats  `json:"events"`
}

// WebNode is one known node.
type WebNode struct {
	ID          string   `json:"id"`
	Addr        string   `json:"addr"`
	Role        string   `json:"role"` // master, replica, handshake
	Myself      bool     `json:"myself,omitempty"`
	Master      string   `json:"master,omitempty"`
	ConfigEpoch uint64   `json:"config_epoch"`
	Flags       []string `json:"flags"`
	PFail       bool     `json:"pfail,omitempty"`
	Fail        bool     `json:"fail,omitempty"`
	Handshake   bool     `json:"handshake,omitempty"`
	Connected   bool     `json:"connected"` // bus link: heard from within node-timeout
	PingAgoMs   int64    `json:"ping_sent_ago_ms,omitempty"`
	PongAgoMs   int64    `json:"pong_recv_ago_ms,omitempty"`
	ReplOffset  uint64   `json:"repl_offset"`
	ReplLag     *int64   `json:"repl_lag,omitempty"` // master's offset minus this replica's
	Slots       string   `json:"slots,omitempty"`
	SlotCount   int      `json:"slot_count"`
	// Heartbeat is this node's heartbeat peer sample, when it is a peer.
	Heartbeat *WebPeerHeartbeat `json:"heartbeat,omitempty"`
}

// WebPeerHeartbeat is one heartbeat peer's latest sample.
type WebPeerHeartbeat struct {
	RTTMicros float64 `json:"rtt_us"`
	Pongs     uint64  `json:"pongs"`
	LastAgoMs int64   `json:"last_pong_ago_ms"` // -1 when never
	Answering bool    `json:"answering"`        // a PONG within node-timeout
	// Path is how the peer's last PONG was answered: "xdp" by its
	// kernel (the PONG carries hbpacket.FlagKernel), "udp" by a userspace
	// responder (its UDP fallback, or its XDP node's socket path), ""
	// before any PONG.
	Path string `json:"path"`
}

// WebSlotRange is slots Start-End owned by Nodes[Node].
type WebSlotRange struct {
	Start uint16 `json:"start"`
	End   uint16 `json:"end"`
	Node  int    `json:"node"`
}

// WebSlotMark is an importing or migrating slot and the node on the
// other side.
type WebSlotMark struct {
	Slot uint16 `json:"slot"`
	Peer string `json:"peer"`
}

// WebHeartbeat is the heartbeat transport's state, as INFO heartbeat.
type WebHeartbeat struct {
	Mode           string `json:"mode"` // xdp, udp or off
	PingIntervalMs int64  `json:"ping_interval_ms,omitempty"`
	Peers          int64  `json:"peers"`
	Answering      int64  `json:"answering"`
	PongsKernel    uint64 `json:"pongs_received_kernel"`
	PongsUser      uint64 `json:"pongs_received_user"`
	PingsAnsKernel uint64 `json:"pings_answered_kernel"`
	PingsAnsUser   uint64 `json:"pings_answered_user"`
	BadPackets     uint64 `json:"bad_packets"`
}

// WebEventStats counts the event stream.
type WebEventStats struct {
	Clients   int    `json:"clients"`
	Published uint64 `json:"published"`
	Dropped   uint64 `json:"dropped"`
	Sent      uint64 `json:"sent"`
}

// WebView builds the web view's document from the published view.
func (n *Node) WebView() WebView {
	v := n.view.Load()
	now := n.now()
	w := WebView{
		ID: v.self.String(), ClusterState: "fail", CurrentEpoch: v.currentEpoch, ConfigEpoch: v.configEpoch,
		Role: n.role(), Keys: n.store.Len(), Size: v.info.Size, Now: time.Now().UnixMilli(),
		Nodes: []WebNode{}, Slots: []WebSlotRange{}, Migrating: []WebSlotMark{}, Importing: []WebSlotMark{},
	}
	if v.ok {
		w.ClusterState = "ok"
	}
	var samples map[wire.NodeID]HeartbeatSample
	w.Heartbeat.Mode = HeartbeatOff
	if d := n.hb; d != nil {
		w.Heartbeat.Mode = d.hb.Mode()
		w.Heartbeat.PingIntervalMs = d.pingEvery.Milliseconds()
		w.Heartbeat.Peers, w.Heartbeat.Answering = d.peerCount.Load(), d.answering.Load()
		if c, ok := d.counters(); ok {
			w.Heartbeat.PongsKernel, w.Heartbeat.PongsUser = c.kernelPongRx, c.userPongRx
			w.Heartbeat.PingsAnsKernel, w.Heartbeat.PingsAnsUser = c.kernelPingTx, c.userPingTx
			w.Heartbeat.BadPackets = c.bad()
		}
		d.webAsked.Store(int64(max(n.now(), 1)))
		if p := d.published.Load(); p != nil {
			samples = make(map[wire.NodeID]HeartbeatSample, len(*p))
			for _, s := range *p {
				samples[s.Peer] = s
			}
		}
	}
	offsets := map[wire.NodeID]uint64{}
	for _, nv := range v.nodes {
		offsets[nv.ID] = nv.ReplOffset
		if nv.Myself && n.repl != nil {
			// Our own offset is live; gossip carries the others'.
			offsets[nv.ID] = uint64(n.repl.Offset())
		}
	}
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	for i, nv := range v.nodes {
		wn := WebNode{
			ID: nv.ID.String(), Myself: nv.Myself, ConfigEpoch: nv.ConfigEpoch,
			Addr:      netip.AddrPortFrom(nv.Addr.IP, nv.Addr.Port).String() + "@" + strconv.Itoa(int(nv.Addr.BusPort)),
			Flags:     strings.Split(string(clusterview.AppendFlags(nil, nv.Myself, nv.Flags)), ","),
			PFail:     nv.Flags&wire.FlagPFail != 0,
			Fail:      nv.Flags&wire.FlagFail != 0,
			Handshake: nv.Flags&wire.FlagHandshake != 0,
			Connected: nv.Connected, ReplOffset: nv.ReplOffset,
			Slots: ring.FormatRanges(nv.Slots),
		}
		switch {
		case wn.Handshake:
			wn.Role = "handshake"
		case nv.Flags&wire.FlagReplica != 0:
			wn.Role = "replica"
		default:
			wn.Role = "master"
		}
		if nv.Myself && n.repl != nil {
			wn.ReplOffset = uint64(n.repl.Offset())
		}
		if !nv.Master.IsZero() {
			wn.Master = nv.Master.String()
			if mo, ok := offsets[nv.Master]; ok && wn.Role == "replica" {
				lag := int64(mo) - int64(wn.ReplOffset)
				wn.ReplLag = &lag
			}
		}
		if nv.PingSent != 0 {
			wn.PingAgoMs = ms(now - nv.PingSent)
		}
		if nv.PongRecv != 0 {
			wn.PongAgoMs = ms(now - nv.PongRecv)
		}
		for _, r := range nv.Slots {
			wn.SlotCount += int(r.End) - int(r.Start) + 1
			w.Slots = append(w.Slots, WebSlotRange{Start: r.Start, End: r.End, Node: i})
		}
		if s, ok := samples[nv.ID]; ok {
			hb := &WebPeerHeartbeat{RTTMicros: float64(s.Sample.RTT.Nanoseconds()) / 1e3, Pongs: s.Sample.PongsRecv,
				LastAgoMs: -1}
			if s.Sample.PongsRecv > 0 {
				hb.LastAgoMs = ms(now - s.Sample.LastPong)
				hb.Answering = now-s.Sample.LastPong <= n.cfg.NodeTimeout
				hb.Path = HeartbeatUDP
				if s.Kernel {
					hb.Path = HeartbeatXDP
				}
			}
			wn.Heartbeat = hb
		}
		w.Nodes = append(w.Nodes, wn)
	}
	if v.snap != nil {
		for s := uint16(0); s < ring.Slots; s++ {
			if to, ok := v.snap.Migrating(s); ok {
				w.Migrating = append(w.Migrating, WebSlotMark{Slot: s, Peer: to.String()})
			}
			if from, ok := v.snap.Importing(s); ok {
				w.Importing = append(w.Importing, WebSlotMark{Slot: s, Peer: from.String()})
			}
		}
	}
	w.Events.Clients = n.web.Clients()
	w.Events.Published, w.Events.Dropped, w.Events.Sent = n.web.Stats()
	return w
}

// webHandler is the --http handler: /metrics, /status and the profiles
// (metrics.go) and the web view, all behind the --http-auth token.
func (n *Node) webHandler() http.Handler {
	return web.Handler(n.httpMux(), web.Config{
		View:  func() any { return n.WebView() },
		Hub:   n.web,
		Token: n.cfg.HTTPAuth,
	})
}

// webEvent sends a core event to the web view's event log.
func (n *Node) webEvent(ev gossip.Event) {
	if !n.web.Active() {
		return
	}
	e := web.Event{Kind: ev.Kind.String()}
	if !ev.Node.IsZero() {
		e.Node = ev.Node.String()
	}
	n.web.Publish(e)
}

// webFailover sends an election step to the web view's event log.
func (n *Node) webFailover(fe *gossip.FailoverEvent) {
	if !n.web.Active() || fe.Kind == gossip.FailoverAck {
		return
	}
	e := web.Event{Node: fe.Node.String()}
	epoch := " (epoch " + strconv.FormatUint(fe.Epoch, 10) + ")"
	switch fe.Kind {
	case gossip.FailoverNote:
		e.Kind, e.Text = "election", fe.Reason+epoch
	case gossip.FailoverVote:
		e.Kind = "vote"
		if fe.Granted {
			e.Text = "vote granted" + epoch
		} else {
			e.Text = "vote refused: " + fe.Reason + epoch
		}
	case gossip.FailoverPromoted:
		e.Kind, e.Text = "failover", "promoted to master, replacing the node"+epoch
	case gossip.FailoverTakeover:
		e.Kind, e.Text = "failover", "took over without votes from the node"+epoch
	case gossip.FailoverMigrated:
		e.Kind, e.Text = "replica-migration", "this replica moved to the orphaned master"
	default:
		return
	}
	n.web.Publish(e)
}

// webSampleEvery is how often the heartbeat driver copies its samples
// for the web view.
const webSampleEvery = 200 * time.Millisecond

// webSampleIdle is how long after WebView last read the samples the
// driver keeps copying them; the page asks once a second.
const webSampleIdle = 10 * time.Second

// publishSamples copies the driver's samples for WebView, at most every
// webSampleEvery (bus loop).
func (d *heartbeatDriver) publishSamples(now time.Duration) {
	if d.published.Load() != nil {
		// Copy only while the page is open: four copies a second of every
		// sample were a third of an idle node's allocations, for a view
		// nobody looked at.
		asked := time.Duration(d.webAsked.Load())
		if now-d.publishedAt < webSampleEvery || asked == 0 || now-asked > webSampleIdle {
			return
		}
	}
	d.publishedAt = now
	cp := append([]HeartbeatSample(nil), d.samples...)
	d.published.Store(&cp)
}

// webSamples is the driver's state for publishSamples.
type webSamples struct {
	published   atomic.Pointer[[]HeartbeatSample]
	publishedAt time.Duration
	webAsked    atomic.Int64 // bus time of WebView's last read; 0: never
}
