package clusterview

import (
	"strconv"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// Info holds the fields of CLUSTER INFO.
type Info struct {
	OK            bool // cluster_state: ok when true, fail otherwise
	SlotsAssigned int
	SlotsOK       int // assigned slots whose master is neither PFAIL nor FAIL
	SlotsPFail    int // assigned slots whose master is PFAIL (and not FAIL)
	SlotsFail     int // assigned slots whose master is FAIL
	KnownNodes    int // every node in the table, handshakes included
	Size          int // masters serving at least one slot
	CurrentEpoch  uint64
	MyEpoch       uint64
	// Messages counts bus messages by type, in the order they are printed.
	// Types with a zero count are left out of the text, as Redis does.
	Messages []MessageStat
	// LinksBufferLimitExceeded is total_cluster_links_buffer_limit_exceeded.
	LinksBufferLimitExceeded uint64
}

// MessageStat is how many bus messages of one type were sent and received.
// Type is the lowercase name used in the field, such as "ping" or "auth-req".
type MessageStat struct {
	Type           string
	Sent, Received uint64
}

// MessageTypeName returns the CLUSTER INFO name of a bus message type: Redis's
// name where Redis has the type, hearsay's own otherwise.
func MessageTypeName(t wire.Type) string {
	switch t {
	case wire.TypePing:
		return "ping"
	case wire.TypePong:
		return "pong"
	case wire.TypeMeet:
		return "meet"
	case wire.TypeFail:
		return "fail"
	case wire.TypeUpdate:
		return "update"
	case wire.TypeFailReport:
		return "failreport"
	case wire.TypeSync:
		return "sync"
	case wire.TypeSyncData:
		return "syncdata"
	case wire.TypeAuthRequest:
		return "auth-req"
	case wire.TypeAuthAck:
		return "auth-ack"
	case wire.TypeMFStart:
		return "mfstart"
	}
	return "type" + strconv.Itoa(int(t))
}

// InfoText appends the CLUSTER INFO reply text. Every line ends in "\r\n",
// as in Redis.
func InfoText(dst []byte, in Info) []byte {
	line := func(name string, v uint64) {
		dst = append(dst, name...)
		dst = append(dst, ':')
		dst = strconv.AppendUint(dst, v, 10)
		dst = append(dst, "\r\n"...)
	}
	if in.OK {
		dst = append(dst, "cluster_state:ok\r\n"...)
	} else {
		dst = append(dst, "cluster_state:fail\r\n"...)
	}
	line("cluster_slots_assigned", uint64(in.SlotsAssigned))
	line("cluster_slots_ok", uint64(in.SlotsOK))
	line("cluster_slots_pfail", uint64(in.SlotsPFail))
	line("cluster_slots_fail", uint64(in.SlotsFail))
	line("cluster_known_nodes", uint64(in.KnownNodes))
	line("cluster_size", uint64(in.Size))
	line("cluster_current_epoch", in.CurrentEpoch)
	line("cluster_my_epoch", in.MyEpoch)
	var sent, recv uint64
	for _, m := range in.Messages {
		if m.Sent > 0 {
			line("cluster_stats_messages_"+m.Type+"_sent", m.Sent)
			sent += m.Sent
		}
	}
	line("cluster_stats_messages_sent", sent)
	for _, m := range in.Messages {
		if m.Received > 0 {
			line("cluster_stats_messages_"+m.Type+"_received", m.Received)
			recv += m.Received
		}
	}
	line("cluster_stats_messages_received", recv)
	line("total_cluster_links_buffer_limit_exceeded", in.LinksBufferLimitExceeded)
	return dst
}

// ComputeInfo derives the state and slot counts of CLUSTER INFO from a
// node's views. The state rule itself is the core's (gossip.ClusterHealth):
// fail when a slot is unassigned, when a slot is served by a FAIL master, or
// when fewer than a majority of the slot-serving masters are reachable from
// this node. Messages are left for the caller.
func ComputeInfo(views []gossip.NodeView, currentEpoch, myEpoch uint64, fullCoverage bool) Info {
	h := gossip.ClusterHealth(views)
	return Info{
		OK: h.StateOK(fullCoverage), SlotsAssigned: h.SlotsAssigned, SlotsOK: h.SlotsOK, SlotsPFail: h.SlotsPFail, SlotsFail: h.SlotsFail,
		KnownNodes: len(views), Size: h.Size, CurrentEpoch: currentEpoch, MyEpoch: myEpoch,
	}
}

func rangesLen(rs []ring.Range) int {
	n := 0
	for _, r := range rs {
		n += r.Len()
	}
	return n
}
