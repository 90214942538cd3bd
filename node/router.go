package node

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/node/clusterview"
	"github.com/hearsay/hearsay/node/command"
	"github.com/hearsay/hearsay/ring"
)

// routeView is the immutable picture of the cluster that client loops read
// without locks. The bus loop builds a new one after every change and
// publishes it through Node.view.
type routeView struct {
	snap    *ring.Snapshot
	addrs   map[ring.NodeID]string // node ID -> "ip:port" for redirects
	self    ring.NodeID
	replica bool
	master  ring.NodeID
	ok      bool // cluster_state:ok
	// held is set while this master must not serve its slots: the
	// cluster holds it FAIL (a replica may be taking them over), or it
	// restarted less than writableDelay ago and has not yet heard
	// whether it still owns them.
	held bool
	// local has a bit per slot that self owns and that is not MIGRATING:
	// the slots Route serves with one bit test. It is shared by views of
	// the same snapshot and self.
	local *[ring.Slots / 64]uint64

	// For /status, INFO and metrics.
	currentEpoch, configEpoch uint64
	knownNodes                int
	// info is CLUSTER INFO without the message counters; its OK is ok.
	info     clusterview.Info
	mySlots  int
	nodes    []gossip.NodeView
	busAddrs map[netip.AddrPort]wire.NodeID
}

// publish rebuilds the route view from the core. It runs where the core is
// owned (the bus loop, or New before the loop starts).
func (n *Node) publish() {
	c := n.core
	v := &routeView{
		snap:     c.Snapshot(),
		addrs:    make(map[ring.NodeID]string),
		self:     ring.NodeID(c.ID()),
		busAddrs: make(map[netip.AddrPort]wire.NodeID),
	}
	v.currentEpoch, v.configEpoch = c.Epochs()
	v.nodes = c.Nodes(nil)
	v.knownNodes = c.KnownNodes()
	v.mySlots = c.SlotCount(c.ID())
	for i := range v.nodes {
		nv := &v.nodes[i]
		if nv.Flags&wire.FlagHandshake != 0 {
			continue
		}
		v.addrs[ring.NodeID(nv.ID)] = netip.AddrPortFrom(nv.Addr.IP, nv.Addr.Port).String()
		v.busAddrs[busAddrOf(nv.Addr)] = nv.ID
		if nv.Myself && nv.Flags&wire.FlagReplica != 0 {
			v.replica = true
			v.master = ring.NodeID(nv.Master)
		}
	}
	// The same rule as CLUSTER INFO's cluster_state (Redis's, with its
	// full-coverage setting), so that routing and INFO never disagree.
	if n.repl != nil {
		n.repl.SetRole(v.replica, v.addrs[v.master])
	}
	v.info = clusterview.ComputeInfo(v.nodes, v.currentEpoch, v.configEpoch, !n.cfg.PartialCoverage)
	v.held = v.mySlots > 0 && (c.HeldFailed() || time.Now().Before(n.writableAt))
	v.info.OK = v.info.OK && !v.held
	v.ok = v.info.OK
	if prev := n.view.Load(); prev != nil && prev.snap == v.snap && prev.self == v.self {
		v.local = prev.local
	} else {
		v.local = localSlots(v.snap, v.self)
	}
	n.view.Store(v)
	n.metrics.published(v)
}

// localSlots returns the bitmap of routeView.local.
func localSlots(snap *ring.Snapshot, self ring.NodeID) *[ring.Slots / 64]uint64 {
	var b [ring.Slots / 64]uint64
	snap.ServedSlots(self, &b)
	return &b
}

// Redirect and error replies, exactly as Redis sends them (without '-').
const (
	errUnbound   = "CLUSTERDOWN Hash slot not served"
	errDown      = "CLUSTERDOWN The cluster is down"
	errDownRO    = "CLUSTERDOWN The cluster is down and only accepts read commands"
	errTryAgain  = "TRYAGAIN Multiple keys request during rehashing of slot"
	redirMoved   = "MOVED "
	redirAsk     = "ASK "
	maxRedirSize = 64
)

func redirect(kind string, slot uint16, addr string) string {
	b := make([]byte, 0, maxRedirSize)
	b = append(b, kind...)
	b = strconv.AppendUint(b, uint64(slot), 10)
	b = append(b, ' ')
	b = append(b, addr...)
	return string(b)
}

// Route implements command.Router with Redis Cluster's redirect rules
// (docs/compatibility.md, "Redirects and errors"). It reads only the published
// view and, during a migration, the local store.
func (n *Node) Route(conn *command.ConnState, cmd *command.Command, slot uint16, keys [][]byte) (string, bool) {
	v := n.view.Load()
	// The common case: a slot of ours, not migrating, cluster ok.
	if v.ok && slot < ring.Slots && v.local[slot>>6]&(1<<(slot&63)) != 0 {
		return "", true
	}
	if importing(conn, slot) {
		// An atomic migration's link writing the slots it imports: the
		// keys land here before the slots do, unseen by clients.
		return "", true
	}
	owner, _ := v.snap.Owner(slot)
	if owner.IsZero() {
		return errUnbound, false
	}
	if !v.ok {
		// Redis's cluster-allow-reads-when-down: reads fall through to
		// the usual rules (served when the slot is ours or, with
		// READONLY, our master's; redirected otherwise), writes do not.
		if !n.cfg.AllowReadsWhenDown {
			return errDown, false
		}
		if cmd.Flags&command.FlagWrite != 0 {
			return errDownRO, false
		}
	}
	if cmd.Name == "migrate" {
		// MIGRATE moves keys out of an open slot, from the source or the
		// target, so it runs here whatever the slot's state (as Redis).
		_, migrating := v.snap.Migrating(slot)
		_, importing := v.snap.Importing(slot)
		if migrating || importing {
			return "", true
		}
	}
	if owner == v.self {
		to, migrating := v.snap.Migrating(slot)
		if !migrating {
			return "", true
		}
		// MIGRATING source: present keys are served here, missing ones
		// have moved (or will be created) on the target.
		present := n.countPresent(slot, keys)
		switch {
		case present == len(keys):
			return "", true
		case present == 0:
			return n.redirectTo(v, redirAsk, slot, to)
		default:
			return errTryAgain, false
		}
	}
	if _, importing := v.snap.Importing(slot); importing && conn.Asking {
		// IMPORTING target after ASKING: serve, unless a multi-key request
		// would see only part of its keys mid-migration.
		if len(keys) > 1 {
			if p := n.countPresent(slot, keys); p != len(keys) {
				return errTryAgain, false
			}
		}
		return "", true
	}
	if v.replica && owner == v.master && conn.ReadOnly && cmd.Flags&command.FlagWrite == 0 && cmd.Flags&command.FlagReadOnly != 0 {
		return "", true
	}
	return n.redirectTo(v, redirMoved, slot, owner)
}

func (n *Node) redirectTo(v *routeView, kind string, slot uint16, to ring.NodeID) (string, bool) {
	addr, ok := v.addrs[to]
	if !ok {
		return errUnbound, false
	}
	return redirect(kind, slot, addr), false
}

func (n *Node) countPresent(slot uint16, keys [][]byte) int {
	now := time.Now().UnixMilli()
	p := 0
	for _, k := range keys {
		if n.store.Exists(slot, k, now) {
			p++
		}
	}
	return p
}

// role is reported by HELLO, ROLE and INFO replication.
func (n *Node) role() string {
	if n.view.Load().replica {
		return "slave"
	}
	return "master"
}

// infoSection renders the INFO sections that depend on the cluster.
func (n *Node) infoSection(section string, b []byte) ([]byte, bool) {
	switch section {
	case "cluster":
		b = append(b, "# Cluster\r\ncluster_enabled:1\r\n"...)
		return n.appendHeartbeatInfo(b), true
	case "heartbeat":
		b = append(b, "# Heartbeat\r\n"...)
		return n.appendHeartbeatInfo(b), true
	case "replication":
		return n.repl.Info(b), true
	case "persistence":
		return n.saver.info(b), true
	}
	return b, false
}
