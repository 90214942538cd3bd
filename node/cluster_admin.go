package node

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hearsay/hearsay/failover"
	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/node/command"
	"github.com/hearsay/hearsay/ring"
)

// The admin subcommands parse their arguments with Redis's error texts,
// then run the matching core call on the bus loop through Node.admin,
// which persists and sends the resulting batch.

func replyAdmin(x *command.Ctx, err error) {
	if err != nil {
		x.W.Error(err.Error())
		return
	}
	x.W.OK()
}

func (n *Node) clusterMeet(x *command.Ctx) {
	badAddr := func() {
		x.W.Error("ERR Invalid node address specified: " + truncate(x.Args[2], 128) + ":" + truncate(x.Args[3], 16))
	}
	port, err := strconv.ParseInt(string(x.Args[3]), 10, 64)
	if err != nil {
		x.W.Error("ERR Invalid base port specified: " + truncate(x.Args[3], 128))
		return
	}
	cport := port + DefaultBusOffset
	if len(x.Args) == 5 {
		if cport, err = strconv.ParseInt(string(x.Args[4]), 10, 64); err != nil {
			x.W.Error("ERR Invalid bus port specified: " + truncate(x.Args[4], 128))
			return
		}
	}
	ip, err := netip.ParseAddr(string(x.Args[2]))
	if err != nil || port <= 0 || port > 65535 || cport <= 0 || cport > 65535 {
		badAddr()
		return
	}
	addr := wire.Addr{IP: ip.Unmap(), Port: uint16(port), BusPort: uint16(cport)}
	err = n.admin(func(c *gossip.Core, now time.Duration) (gossip.Ready, error) { return c.Meet(now, addr) })
	if err == gossip.ErrBadAddr {
		badAddr()
		return
	}
	replyAdmin(x, err)
}

// parseNodeArg parses a node ID argument; Redis reports an unparsable ID
// as an unknown node. IDs are case-sensitive, as Redis's node table is: a
// known ID written in capitals is an unknown node, not that node.
func parseNodeArg(b []byte) (wire.NodeID, bool) {
	id, err := wire.ParseNodeID(string(b))
	return id, err == nil
}

func (n *Node) clusterForget(x *command.Ctx) {
	id, ok := parseNodeArg(x.Args[2])
	if !ok {
		x.W.Error("ERR Unknown node " + truncate(x.Args[2], 128))
		return
	}
	replyAdmin(x, n.admin(func(c *gossip.Core, now time.Duration) (gossip.Ready, error) { return c.Forget(now, id) }))
}

func (n *Node) clusterReplicate(x *command.Ctx) {
	id, ok := parseNodeArg(x.Args[2])
	if !ok {
		x.W.Error("ERR Unknown node " + truncate(x.Args[2], 128))
		return
	}
	if !n.view.Load().replica && n.store.Len() > 0 {
		x.W.Error(gossip.ErrReplicateSlots.Error())
		return
	}
	replyAdmin(x, n.admin(func(c *gossip.Core, now time.Duration) (gossip.Ready, error) { return c.Replicate(now, id) }))
}

// parseSlotArg parses one slot as Redis's getSlotOrReply does.
func parseSlotArg(b []byte) (uint16, bool) {
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || v < 0 || v >= ring.Slots {
		return 0, false
	}
	return uint16(v), true
}

const errBadSlot = "ERR Invalid or out of range slot"

// slotArgs parses ADDSLOTS/DELSLOTS arguments into one range per slot.
func slotArgs(x *command.Ctx) ([]wire.SlotRange, bool) {
	rs := make([]wire.SlotRange, 0, len(x.Args)-2)
	for _, a := range x.Args[2:] {
		s, ok := parseSlotArg(a)
		if !ok {
			x.W.Error(errBadSlot)
			return nil, false
		}
		rs = append(rs, wire.SlotRange{Start: s, End: s})
	}
	return rs, true
}

// rangeArgs parses ADDSLOTSRANGE/DELSLOTSRANGE start/end pairs.
func rangeArgs(x *command.Ctx, name string) ([]wire.SlotRange, bool) {
	if (len(x.Args)-2)%2 != 0 {
		x.W.Error("ERR wrong number of arguments for 'cluster|" + name + "' command")
		return nil, false
	}
	rs := make([]wire.SlotRange, 0, (len(x.Args)-2)/2)
	for i := 2; i+1 < len(x.Args); i += 2 {
		s, ok1 := parseSlotArg(x.Args[i])
		e, ok2 := parseSlotArg(x.Args[i+1])
		if !ok1 || !ok2 {
			x.W.Error(errBadSlot)
			return nil, false
		}
		if s > e {
			x.W.Error("ERR start slot number " + strconv.Itoa(int(s)) + " is greater than end slot number " + strconv.Itoa(int(e)))
			return nil, false
		}
		rs = append(rs, wire.SlotRange{Start: s, End: e})
	}
	return rs, true
}

func (n *Node) addSlots(x *command.Ctx, rs []wire.SlotRange) {
	replyAdmin(x, n.adminDeferSync(func(c *gossip.Core, now time.Duration) (gossip.Ready, error) { return c.AddSlots(now, rs) }))
}

func (n *Node) delSlots(x *command.Ctx, rs []wire.SlotRange) {
	replyAdmin(x, n.adminDeferSync(func(c *gossip.Core, now time.Duration) (gossip.Ready, error) { return c.DelSlots(now, rs) }))
}

func (n *Node) clusterAddSlots(x *command.Ctx) {
	if rs, ok := slotArgs(x); ok {
		n.addSlots(x, rs)
	}
}

func (n *Node) clusterAddSlotsRange(x *command.Ctx) {
	if rs, ok := rangeArgs(x, "addslotsrange"); ok {
		n.addSlots(x, rs)
	}
}

func (n *Node) clusterDelSlots(x *command.Ctx) {
	if rs, ok := slotArgs(x); ok {
		n.delSlots(x, rs)
	}
}

func (n *Node) clusterDelSlotsRange(x *command.Ctx) {
	if rs, ok := rangeArgs(x, "delslotsrange"); ok {
		n.delSlots(x, rs)
	}
}

func (n *Node) clusterSetConfigEpoch(x *command.Ctx) {
	e, err := strconv.ParseInt(string(x.Args[2]), 10, 64)
	if err != nil {
		x.W.Error("ERR Invalid config epoch specified: " + truncate(x.Args[2], 128))
		return
	}
	if e < 0 {
		x.W.Error("ERR Invalid config epoch specified: " + strconv.FormatInt(e, 10))
		return
	}
	replyAdmin(x, n.adminDeferSync(func(c *gossip.Core, now time.Duration) (gossip.Ready, error) {
		return c.SetConfigEpoch(now, uint64(e))
	}))
}

func (n *Node) clusterBumpEpoch(x *command.Ctx) {
	var bumped bool
	var epoch uint64
	err := n.admin(func(c *gossip.Core, now time.Duration) (gossip.Ready, error) {
		var r gossip.Ready
		bumped, epoch, r = c.BumpEpoch(now)
		return r, nil
	})
	switch {
	case err != nil:
		x.W.Error(err.Error())
	case bumped:
		x.W.Simple("BUMPED " + strconv.FormatUint(epoch, 10))
	default:
		x.W.Simple("STILL " + strconv.FormatUint(epoch, 10))
	}
}

// optionalArg parses the one optional option of RESET and FAILOVER. It
// returns the option lowercased ("" when absent), or replies Redis's syntax
// error and returns false when it is not one of choices or more follow.
func optionalArg(x *command.Ctx, choices ...string) (string, bool) {
	if len(x.Args) < 3 {
		return "", true
	}
	if opt := strings.ToLower(string(x.Args[2])); len(x.Args) == 3 && slices.Contains(choices, opt) {
		return opt, true
	}
	x.W.Error("ERR syntax error")
	return "", false
}

func (n *Node) clusterReset(x *command.Ctx) {
	opt, ok := optionalArg(x, "hard", "soft")
	if !ok {
		return
	}
	hard := opt == "hard"
	replica := n.view.Load().replica
	if !replica && n.store.Len() > 0 {
		x.W.Error(gossip.ErrResetMaster.Error())
		return
	}
	if replica {
		// A replica's data belongs to its old master; Redis empties it.
		n.store.FlushAll()
	}
	var newID wire.NodeID
	if hard {
		newID = newNodeID()
	}
	replyAdmin(x, n.admin(func(c *gossip.Core, now time.Duration) (gossip.Ready, error) {
		r, err := c.Reset(now, hard, newID)
		if err == nil {
			// Reset changes identity or drops everything: make it
			// durable even if the core only marked it dirty.
			r.Persist = true
		}
		if err == nil && hard && n.hb != nil {
			// Peers know us by the new ID now; heartbeats must say so.
			if herr := n.hb.hb.SetID(newID); herr != nil {
				n.metrics.heartbeatErrors.Inc()
				n.log.Warn("heartbeat: cannot take the new ID", "err", herr)
			}
		}
		return r, err
	}))
}

func (n *Node) clusterFailover(x *command.Ctx) {
	opt, ok := optionalArg(x, "force", "takeover")
	if !ok {
		return
	}
	mode := failover.ModeDefault
	switch opt {
	case "force":
		mode = failover.ModeForce
	case "takeover":
		mode = failover.ModeTakeover
	}
	replyAdmin(x, n.admin(func(c *gossip.Core, now time.Duration) (gossip.Ready, error) {
		return c.Failover(now, mode)
	}))
}

func (n *Node) clusterSetSlot(x *command.Ctx) {
	slot, ok := parseSlotArg(x.Args[2])
	if !ok {
		x.W.Error(errBadSlot)
		return
	}
	const badAction = "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP"
	var st gossip.SlotState
	switch action := strings.ToLower(string(x.Args[3])); {
	case action == "importing" && len(x.Args) == 5:
		st = gossip.SlotImporting
	case action == "migrating" && len(x.Args) == 5:
		st = gossip.SlotMigrating
	case action == "node" && len(x.Args) == 5:
		st = gossip.SlotNode
	case action == "stable" && len(x.Args) == 4:
		st = gossip.SlotStable
	default:
		x.W.Error(badAction)
		return
	}
	var id wire.NodeID
	if st != gossip.SlotStable {
		if id, ok = parseNodeArg(x.Args[4]); !ok {
			x.W.Error("ERR I don't know about node " + truncate(x.Args[4], 128))
			return
		}
	}
	v := n.view.Load()
	if st == gossip.SlotNode && ring.NodeID(id) != v.self {
		// Redis refuses to give away a slot that still holds keys here;
		// the keys must be migrated first.
		if owner, _ := v.snap.Owner(slot); owner == v.self && n.store.CountKeysInSlot(slot) > 0 {
			x.W.Error("ERR Can't assign hashslot " + strconv.Itoa(int(slot)) + " to a different node while I still hold keys for this hash slot.")
			return
		}
	}
	replyAdmin(x, n.admin(func(c *gossip.Core, now time.Duration) (gossip.Ready, error) {
		return c.SetSlot(now, slot, st, id)
	}))
}

func (n *Node) clusterSaveConfig(x *command.Ctx) {
	var err error
	if xerr := n.exec(func(now time.Duration) {
		if !n.bus.persist(now, true) {
			err = errSaveConfig
		}
	}); xerr != nil {
		err = xerr
	}
	replyAdmin(x, err)
}

type adminError string

func (e adminError) Error() string { return string(e) }

const errSaveConfig = adminError("ERR Error saving the cluster node config")
