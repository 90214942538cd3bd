package clusterview

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// OpenSlot is a slot this node is moving: Migrating to Peer, or importing
// from Peer when Migrating is false. CLUSTER NODES lists open slots on the
// myself line only.
type OpenSlot struct {
	Slot      uint16
	Migrating bool
	Peer      wire.NodeID
}

// flagNames lists the CLUSTER NODES flag words in the order Redis prints
// them. myself comes first and is handled separately.
var flagNames = [...]struct {
	flag wire.Flags
	name string
}{
	{wire.FlagMaster, "master"},
	{wire.FlagReplica, "slave"},
	{wire.FlagPFail, "fail?"},
	{wire.FlagFail, "fail"},
	{wire.FlagHandshake, "handshake"},
	{wire.FlagNoAddr, "noaddr"},
	{wire.FlagNoFailover, "nofailover"},
}

// AppendFlags appends the comma-joined flag words of a node, or "noflags".
// A FAIL node is not also printed fail?: Redis clears PFAIL when it sets
// FAIL, so its CLUSTER NODES never shows both, while hearsay keeps this
// node's own PFAIL view next to the cluster's FAIL.
func AppendFlags(dst []byte, myself bool, f wire.Flags) []byte {
	if f&wire.FlagFail != 0 {
		f &^= wire.FlagPFail
	}
	n := 0
	if myself {
		dst = append(dst, "myself"...)
		n++
	}
	for _, fn := range flagNames {
		if f&fn.flag == 0 {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, fn.name...)
		n++
	}
	if n == 0 {
		dst = append(dst, "noflags"...)
	}
	return dst
}

// appendIP writes ip the way Redis does: no brackets around IPv6, IPv4-mapped
// addresses unmapped, and nothing at all for an unknown address.
func appendIP(dst []byte, ip netip.Addr) []byte {
	if !ip.IsValid() {
		return dst
	}
	return ip.Unmap().AppendTo(dst)
}

// NodesText appends the CLUSTER NODES reply text: one line per view, in the
// order given, each ending in "\n". myself selects the line that lists open;
// unixMs turns the core's ping and pong times into Unix milliseconds (a zero
// time is printed as 0 without calling it).
func NodesText(dst []byte, views []gossip.NodeView, myself wire.NodeID, open []OpenSlot, unixMs func(time.Duration) int64) []byte {
	epochs := make(map[wire.NodeID]uint64, len(views))
	for i := range views {
		epochs[views[i].ID] = views[i].ConfigEpoch
	}
	for i := range views {
		v := &views[i]
		me := v.Myself || v.ID == myself
		l := NodeLine{
			ID: v.ID, IP: string(appendIP(nil, v.Addr.IP)), Port: v.Addr.Port, BusPort: v.Addr.BusPort,
			Myself: me, Flags: v.Flags, Master: v.Master,
			PingSent: msOrZero(v.PingSent, unixMs), PongRecv: msOrZero(v.PongRecv, unixMs),
			ConfigEpoch: v.ConfigEpoch, Connected: v.Connected || me, Slots: v.Slots,
		}
		// A replica shows its master's configEpoch, as in Redis.
		if e, ok := epochs[v.Master]; ok && !v.Master.IsZero() {
			l.ConfigEpoch = e
		}
		if me {
			l.Open = open
		}
		dst = AppendNodeLine(dst, &l)
	}
	return dst
}

func msOrZero(d time.Duration, unixMs func(time.Duration) int64) int64 {
	if d == 0 || unixMs == nil {
		return 0
	}
	return unixMs(d)
}

func appendRange(dst []byte, r ring.Range) []byte {
	dst = strconv.AppendUint(dst, uint64(r.Start), 10)
	if r.End != r.Start {
		dst = append(dst, '-')
		dst = strconv.AppendUint(dst, uint64(r.End), 10)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

func hexID(dst []byte, id wire.NodeID) []byte {
	for _, b := range id {
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xf])
	}
	return dst
}

// appendOpen writes " [slot->-id]" for a migrating slot and " [slot-<-id]"
// for an importing one.
func appendOpen(dst []byte, o OpenSlot) []byte {
	dst = append(dst, " ["...)
	dst = strconv.AppendUint(dst, uint64(o.Slot), 10)
	if o.Migrating {
		dst = append(dst, "->-"...)
	} else {
		dst = append(dst, "-<-"...)
	}
	dst = hexID(dst, o.Peer)
	return append(dst, ']')
}
