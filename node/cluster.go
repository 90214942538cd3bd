package node

import (
	"strconv"
	"strings"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/node/clusterview"
	"github.com/hearsay/hearsay/node/command"
	"github.com/hearsay/hearsay/ring"
)

// clusterSub is one CLUSTER subcommand: Redis's arity (counting "CLUSTER"
// and the subcommand; negative means "at least") and its handler.
type clusterSub struct {
	arity int
	fn    func(n *Node, x *command.Ctx)
}

// clusterSubs lists every CLUSTER subcommand hearsay answers, with Redis
// 7's arities (docs/compatibility.md says how each differs).
var clusterSubs map[string]clusterSub

func init() {
	clusterSubs = map[string]clusterSub{
		"help":                  {2, (*Node).clusterHelp},
		"nodes":                 {2, (*Node).clusterNodes},
		"slots":                 {2, (*Node).clusterSlots},
		"shards":                {2, (*Node).clusterShards},
		"info":                  {2, (*Node).clusterInfo},
		"myid":                  {2, (*Node).clusterMyID},
		"meet":                  {-4, (*Node).clusterMeet},
		"forget":                {3, (*Node).clusterForget},
		"replicate":             {3, (*Node).clusterReplicate},
		"addslots":              {-3, (*Node).clusterAddSlots},
		"addslotsrange":         {-4, (*Node).clusterAddSlotsRange},
		"delslots":              {-3, (*Node).clusterDelSlots},
		"delslotsrange":         {-4, (*Node).clusterDelSlotsRange},
		"set-config-epoch":      {3, (*Node).clusterSetConfigEpoch},
		"bumpepoch":             {2, (*Node).clusterBumpEpoch},
		"reset":                 {-2, (*Node).clusterReset},
		"failover":              {-2, (*Node).clusterFailover},
		"setslot":               {-4, (*Node).clusterSetSlot},
		"getkeysinslot":         {4, (*Node).clusterGetKeysInSlot},
		"countkeysinslot":       {3, (*Node).clusterCountKeysInSlot},
		"keyslot":               {3, (*Node).clusterKeySlot},
		"count-failure-reports": {3, (*Node).clusterCountFailureReports},
		"replicas":              {3, (*Node).clusterReplicas},
		"slaves":                {3, (*Node).clusterReplicas},
		"links":                 {2, (*Node).clusterLinks},
		"saveconfig":            {2, (*Node).clusterSaveConfig},
		"migrateslots":          {-2, (*Node).clusterMigrateSlots},
		"getslotmigrations":     {2, (*Node).clusterGetSlotMigrations},
		"cancelslotmigrations":  {2, (*Node).clusterCancelSlotMigrations},
		"syncslots":             {-3, (*Node).clusterSyncSlots},
	}
}

var clusterHelpLines = []string{
	"CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"ADDSLOTS <slot> [<slot> ...]", "    Assign slots to current node.",
	"ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]", "    Assign slots which are between <start-slot> and <end-slot> to current node.",
	"BUMPEPOCH", "    Advance the cluster config epoch.",
	"COUNT-FAILURE-REPORTS <node-id>", "    Return number of failure reports for <node-id>.",
	"COUNTKEYSINSLOT <slot>", "    Return the number of keys in <slot>.",
	"DELSLOTS <slot> [<slot> ...]", "    Delete slots information from current node.",
	"DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]", "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
	"FAILOVER [FORCE|TAKEOVER]", "    Promote current replica node to being a master.",
	"FORGET <node-id>", "    Remove a node from the cluster.",
	"GETKEYSINSLOT <slot> <count>", "    Return key names stored by current node in a slot.",
	"INFO", "    Return information about the cluster.",
	"KEYSLOT <key>", "    Return the hash slot for <key>.",
	"LINKS", "    Return information about all network links between this node and its peers.",
	"MIGRATESLOTS SLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...] NODE <node-id> [SLOTSRANGE ... NODE ...]",
	"    Move slots atomically to other primaries (Valkey 9's atomic slot migration).",
	"GETSLOTMIGRATIONS", "    Return the running and recent atomic slot migrations.",
	"CANCELSLOTMIGRATIONS", "    Cancel every running atomic slot migration this node exports.",
	"MEET <ip> <port> [<bus-port>]", "    Connect nodes into a working cluster.",
	"MYID", "    Return the node id.",
	"NODES", "    Return cluster configuration seen by node. Output format:",
	"    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
	"REPLICATE <node-id>", "    Configure current node as replica to <node-id>.",
	"RESET [HARD|SOFT]", "    Reset current node (default: soft).",
	"SET-CONFIG-EPOCH <epoch>", "    Set config epoch of current node.",
	"SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)", "    Set slot state.",
	"REPLICAS <node-id>", "    Return <node-id> replicas.",
	"SAVECONFIG", "    Force saving cluster configuration on disk.",
	"SHARDS", "    Return information about slot range mappings and the nodes associated with them.",
	"SLAVES <node-id>", "    Return <node-id> replicas.",
	"SLOTS", "    Return information about slots range mappings. Each range is made of:",
	"    start, end, master and replicas IP addresses, ports and ids",
	"HELP", "    Print this help.",
}

// ClusterCommand implements command.Cluster: it checks the subcommand and
// its arity with Redis's exact errors, then runs it.
func (n *Node) ClusterCommand(x *command.Ctx) {
	name := strings.ToLower(string(x.Args[1]))
	sub, ok := clusterSubs[name]
	if !ok || name == "meet" && len(x.Args) > 5 {
		x.W.Error("ERR unknown subcommand '" + truncate(x.Args[1], 128) + "'. Try CLUSTER HELP.")
		return
	}
	if sub.arity > 0 && len(x.Args) != sub.arity || sub.arity < 0 && len(x.Args) < -sub.arity {
		x.W.Error("ERR wrong number of arguments for 'cluster|" + name + "' command")
		return
	}
	sub.fn(n, x)
}

func truncate(b []byte, max int) string {
	if len(b) > max {
		b = b[:max]
	}
	return string(b)
}

// coreView is a consistent copy of what the read-only subcommands show,
// taken on the bus loop.
type coreView struct {
	nodes           []gossip.NodeView
	self            wire.NodeID
	snap            *ring.Snapshot // immutable: read it off the loop
	stats           gossip.Stats
	current, config uint64
}

// coreView takes the view for a handler; when the bus loop cannot run it,
// it replies with the error and returns false.
func (n *Node) coreView(x *command.Ctx) (coreView, bool) {
	var cv coreView
	err := n.exec(func(time.Duration) {
		c := n.core
		cv.nodes = c.Nodes(nil)
		cv.self = c.ID()
		cv.stats = c.Stats()
		cv.current, cv.config = c.Epochs()
		cv.snap = c.Snapshot()
	})
	if err != nil {
		x.W.Error(err.Error())
		return cv, false
	}
	return cv, true
}

// openSlots lists the MIGRATING and IMPORTING slots of snap, for the
// myself line of CLUSTER NODES.
func openSlots(snap *ring.Snapshot) []clusterview.OpenSlot {
	var open []clusterview.OpenSlot
	for s := uint16(0); s < ring.Slots; s++ {
		if to, ok := snap.Migrating(s); ok {
			open = append(open, clusterview.OpenSlot{Slot: s, Migrating: true, Peer: wire.NodeID(to)})
		}
		if from, ok := snap.Importing(s); ok {
			open = append(open, clusterview.OpenSlot{Slot: s, Peer: wire.NodeID(from)})
		}
	}
	return open
}

func (n *Node) clusterHelp(x *command.Ctx) {
	x.W.Array(len(clusterHelpLines))
	for _, l := range clusterHelpLines {
		x.W.Simple(l)
	}
}

func (n *Node) clusterNodes(x *command.Ctx) {
	cv, ok := n.coreView(x)
	if !ok {
		return
	}
	x.W.Verbatim("txt", clusterview.NodesText(nil, cv.nodes, cv.self, openSlots(cv.snap), n.unixMs))
}

// clusterInfo answers from the published view and the mirrored message
// counters, on the client's own loop: monitoring and redis-cli poll it on
// every node, and during formation each poll would otherwise wait for the
// busiest loop of the node. Every change it reports (a node, a flag, a
// slot, an epoch) publishes a new view before the bus loop moves on.
func (n *Node) clusterInfo(x *command.Ctx) {
	in := n.view.Load().info
	stats := n.bus.Stats()
	for t := wire.TypePing; t.Valid(); t++ {
		in.Messages = append(in.Messages, clusterview.MessageStat{
			Type: clusterview.MessageTypeName(t), Sent: stats.Sent[t], Received: stats.Received[t],
		})
	}
	x.W.Verbatim("txt", clusterview.InfoText(nil, in))
}

// writeNodeEntry writes a CLUSTER SLOTS node: [ip, port, id, {}].
func writeNodeEntry(x *command.Ctx, v *gossip.NodeView) {
	x.W.Array(4)
	x.W.BulkString(v.Addr.IP.String())
	x.W.Int(int64(v.Addr.Port))
	x.W.BulkString(v.ID.String())
	x.W.Map(0)
}

func (n *Node) clusterSlots(x *command.Ctx) {
	cv, ok := n.coreView(x)
	if !ok {
		return
	}
	groups := clusterview.SlotGroups(cv.nodes)
	x.W.Array(len(groups))
	for i := range groups {
		g := &groups[i]
		x.W.Array(3 + len(g.Replicas))
		x.W.Int(int64(g.Start))
		x.W.Int(int64(g.End))
		writeNodeEntry(x, &g.Master)
		for j := range g.Replicas {
			writeNodeEntry(x, &g.Replicas[j])
		}
	}
}

func (n *Node) clusterShards(x *command.Ctx) {
	cv, ok := n.coreView(x)
	if !ok {
		return
	}
	shards := clusterview.Shards(cv.nodes)
	x.W.Array(len(shards))
	for _, sh := range shards {
		x.W.Map(2)
		x.W.BulkString("slots")
		x.W.Array(2 * len(sh.Slots))
		for _, r := range sh.Slots {
			x.W.Int(int64(r.Start))
			x.W.Int(int64(r.End))
		}
		x.W.BulkString("nodes")
		x.W.Array(len(sh.Nodes))
		for _, v := range sh.Nodes {
			x.W.Map(7)
			x.W.BulkString("id")
			x.W.BulkString(v.ID.String())
			x.W.BulkString("port")
			x.W.Int(int64(v.Addr.Port))
			x.W.BulkString("ip")
			x.W.BulkString(v.Addr.IP.String())
			x.W.BulkString("endpoint")
			x.W.BulkString(v.Addr.IP.String())
			x.W.BulkString("role")
			x.W.BulkString(clusterview.Role(v))
			x.W.BulkString("replication-offset")
			x.W.Int(int64(v.ReplOffset))
			x.W.BulkString("health")
			x.W.BulkString(clusterview.Health(v))
		}
	}
}

func (n *Node) clusterMyID(x *command.Ctx) { x.W.BulkString(n.view.Load().self.String()) }

func (n *Node) clusterKeySlot(x *command.Ctx) { x.W.Int(int64(ring.KeySlot(x.Args[2]))) }

func (n *Node) clusterCountKeysInSlot(x *command.Ctx) {
	slot, err := strconv.ParseInt(string(x.Args[2]), 10, 64)
	if err != nil {
		x.W.Error("ERR value is not an integer or out of range")
		return
	}
	if slot < 0 || slot >= ring.Slots {
		x.W.Error("ERR Invalid slot")
		return
	}
	x.W.Int(int64(n.store.CountKeysInSlot(uint16(slot))))
}

func (n *Node) clusterGetKeysInSlot(x *command.Ctx) {
	slot, err1 := strconv.ParseInt(string(x.Args[2]), 10, 64)
	count, err2 := strconv.ParseInt(string(x.Args[3]), 10, 64)
	if err1 != nil || err2 != nil {
		x.W.Error("ERR value is not an integer or out of range")
		return
	}
	if slot < 0 || slot >= ring.Slots || count < 0 {
		x.W.Error("ERR Invalid slot or number of keys")
		return
	}
	keys := n.store.GetKeysInSlot(uint16(slot), int(min(count, 1<<30)))
	x.W.Array(len(keys))
	for _, k := range keys {
		x.W.Bulk(k)
	}
}

func (n *Node) clusterCountFailureReports(x *command.Ctx) {
	id, parsed := parseNodeArg(x.Args[2])
	known, reports := false, 0
	if parsed {
		if xerr := n.exec(func(time.Duration) {
			if _, known = n.core.Node(id); known {
				reports = n.core.FailureReports(id)
			}
		}); xerr != nil {
			x.W.Error(xerr.Error())
			return
		}
	}
	if !known {
		x.W.Error("ERR Unknown node " + truncate(x.Args[2], 128))
		return
	}
	x.W.Int(int64(reports))
}

func (n *Node) clusterReplicas(x *command.Ctx) {
	id, parsed := parseNodeArg(x.Args[2])
	cv, ok := n.coreView(x)
	if !ok {
		return
	}
	var master *gossip.NodeView
	for i := range cv.nodes {
		if parsed && cv.nodes[i].ID == id {
			master = &cv.nodes[i]
		}
	}
	switch {
	case master == nil:
		x.W.Error("ERR Unknown node " + truncate(x.Args[2], 128))
		return
	case master.Flags&wire.FlagMaster == 0:
		x.W.Error("ERR The specified node is not a master")
		return
	}
	// Render every line so a replica shows its master's configEpoch, as
	// in CLUSTER NODES, then keep the replicas' lines.
	all := strings.Split(string(clusterview.NodesText(nil, cv.nodes, cv.self, nil, n.unixMs)), "\n")
	var lines []string
	for i := range cv.nodes {
		if cv.nodes[i].Master == id && cv.nodes[i].Flags&wire.FlagReplica != 0 && i < len(all) {
			lines = append(lines, all[i])
		}
	}
	x.W.Array(len(lines))
	for _, l := range lines {
		x.W.BulkString(l)
	}
}

func (n *Node) clusterLinks(x *command.Ctx) {
	var ls []linkInfo
	if err := n.exec(func(time.Duration) {
		ls = n.bus.links(n.view.Load().busAddrs)
	}); err != nil {
		x.W.Error(err.Error())
		return
	}
	x.W.Array(len(ls))
	for _, l := range ls {
		x.W.Map(6)
		x.W.BulkString("direction")
		events := "r"
		if l.outbound {
			x.W.BulkString("to")
			events = "rw"
		} else {
			x.W.BulkString("from")
		}
		x.W.BulkString("node")
		x.W.BulkString(l.node.String())
		x.W.BulkString("create-time")
		x.W.Int(l.created.UnixMilli())
		x.W.BulkString("events")
		x.W.BulkString(events)
		x.W.BulkString("send-buffer-allocated")
		x.W.Int(int64(l.pending))
		x.W.BulkString("send-buffer-used")
		x.W.Int(int64(l.pending))
	}
}
