package node

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/migrate"
	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/ring"
)

// The CLUSTER SYNCSLOTS messages of an atomic slot migration (PROTOCOL.md,
// "Atomic slot migration", "The connection"): their decoding, which a
// peer or any client can feed with anything, and their encoding.

// syncSub names a SYNCSLOTS subcommand.
type syncSub uint8

const (
	syncEstablish syncSub = iota + 1
	syncSnapshotEOF
	syncPaused
	syncGranted
	syncAck
	syncRequest
	syncAbort
)

var syncSubNames = map[string]syncSub{
	"establish": syncEstablish, "snapshot-eof": syncSnapshotEOF, "paused": syncPaused,
	"failover-granted": syncGranted, "ack": syncAck, "request-failover": syncRequest, "abort": syncAbort,
}

// syncMsg is one decoded SYNCSLOTS message; which fields are set depends
// on Sub.
type syncMsg struct {
	Sub    syncSub
	Name   string
	Source wire.NodeID
	Epoch  uint64
	Slots  migrate.Slots
	Offset uint64
	Stamp  time.Duration
}

var errSyncSyntax = errors.New("ERR syntax error")

// parseSyncSlots decodes the arguments after CLUSTER SYNCSLOTS. It
// refuses anything malformed with an error reply, never a panic.
func parseSyncSlots(args [][]byte) (syncMsg, error) {
	if len(args) == 0 {
		return syncMsg{}, errors.New("ERR wrong number of arguments for 'cluster|syncslots' command")
	}
	sub, ok := syncSubNames[strings.ToLower(string(args[0]))]
	if !ok {
		return syncMsg{}, errors.New("ERR unknown CLUSTER SYNCSLOTS subcommand '" + truncate(args[0], 64) + "'")
	}
	m := syncMsg{Sub: sub}
	rest := args[1:]
	switch sub {
	case syncSnapshotEOF:
		if len(rest) != 0 {
			return m, errSyncSyntax
		}
	case syncPaused, syncAck:
		if len(rest) != 1 {
			return m, errSyncSyntax
		}
		v, ok := parseUint(rest[0])
		if !ok {
			return m, errSyncSyntax
		}
		m.Offset = v
	case syncGranted:
		if len(rest) != 1 {
			return m, errSyncSyntax
		}
		v, ok := parseUint(rest[0])
		if !ok || v > 1<<62 {
			return m, errSyncSyntax
		}
		m.Stamp = time.Duration(v)
	case syncRequest:
		if len(rest) != 2 {
			return m, errSyncSyntax
		}
		off, ok1 := parseUint(rest[0])
		st, ok2 := parseUint(rest[1])
		if !ok1 || !ok2 || st > 1<<62 {
			return m, errSyncSyntax
		}
		m.Offset, m.Stamp = off, time.Duration(st)
	case syncEstablish, syncAbort:
		return parseSyncJob(m, rest)
	}
	return m, nil
}

// parseSyncJob reads ESTABLISH's and ABORT's SOURCE, NAME and EPOCH
// options (any order, each once) and then SLOTSRANGE, which runs to the
// end.
func parseSyncJob(m syncMsg, rest [][]byte) (syncMsg, error) {
	var haveSrc, haveName, haveEpoch bool
	for len(rest) > 0 {
		kw := strings.ToLower(string(rest[0]))
		if kw == "slotsrange" {
			rest = rest[1:]
			if len(rest) == 0 || len(rest)%2 != 0 {
				return m, errSyncSyntax
			}
			for i := 0; i < len(rest); i += 2 {
				s, ok1 := parseSlotArg(rest[i])
				e, ok2 := parseSlotArg(rest[i+1])
				if !ok1 || !ok2 {
					return m, errors.New(errBadSlot)
				}
				if s > e {
					return m, errSyncSyntax
				}
				m.Slots = append(m.Slots, wire.SlotRange{Start: s, End: e})
			}
			break
		}
		if len(rest) < 2 {
			return m, errSyncSyntax
		}
		v := rest[1]
		switch {
		case kw == "source" && !haveSrc:
			id, ok := parseNodeArg(v)
			if !ok {
				return m, errors.New("ERR Invalid node name")
			}
			m.Source, haveSrc = id, true
		case kw == "name" && !haveName:
			m.Name, haveName = string(v), true
		case kw == "epoch" && !haveEpoch:
			e, ok := parseUint(v)
			if !ok {
				return m, errSyncSyntax
			}
			m.Epoch, haveEpoch = e, true
		default:
			return m, errSyncSyntax
		}
		rest = rest[2:]
	}
	if !haveSrc || !haveName || !haveEpoch || len(m.Slots) == 0 {
		return m, errSyncSyntax
	}
	return m, nil
}

// parseUint reads a canonical non-negative decimal.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 || b[0] == '+' || b[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	return v, err == nil
}

// appendSyncJob encodes ESTABLISH or ABORT.
func appendSyncJob(b []byte, sub string, source wire.NodeID, name string, epoch uint64, slots migrate.Slots) []byte {
	args := []string{"CLUSTER", "SYNCSLOTS", sub, "SOURCE", source.String(), "NAME", name,
		"EPOCH", strconv.FormatUint(epoch, 10), "SLOTSRANGE"}
	for _, r := range slots {
		args = append(args, strconv.Itoa(int(r.Start)), strconv.Itoa(int(r.End)))
	}
	return appendStrings(b, args...)
}

// appendSync encodes a SYNCSLOTS message with numeric arguments.
func appendSync(b []byte, sub string, nums ...uint64) []byte {
	args := []string{"CLUSTER", "SYNCSLOTS", sub}
	for _, v := range nums {
		args = append(args, strconv.FormatUint(v, 10))
	}
	return appendStrings(b, args...)
}

func appendStrings(b []byte, args ...string) []byte {
	b = resp.AppendArrayLen(b, len(args))
	for _, a := range args {
		b = resp.AppendBulkString(b, a)
	}
	return b
}

// isSyncSlots reports whether args is a CLUSTER SYNCSLOTS command.
func isSyncSlots(args [][]byte) bool {
	return len(args) >= 2 && strings.EqualFold(string(args[0]), "cluster") && strings.EqualFold(string(args[1]), "syncslots")
}

// streamKind classifies one command of the replication stream for an
// export's filter.
type streamKind uint8

const (
	streamSkip  streamKind = iota // not a write to a key (PING, REPLCONF, SELECT…)
	streamKey                     // a write to the key in args[1]
	streamFlush                   // FLUSHALL/FLUSHDB: every slot at once
)

// classifyStream says what a replication stream command is. The stream
// holds effects (node/command/propagate.go): SET, DEL, PEXPIREAT,
// PERSIST, each on keys of one slot, and verbatim keyless writes.
func classifyStream(args [][]byte) streamKind {
	if len(args) == 0 {
		return streamSkip
	}
	// Every command of the node's stream passes here while an export
	// runs: compare without allocating.
	switch {
	case resp.IsOneOf(args[0], "ping", "replconf", "select", "multi", "exec"):
		return streamSkip
	case resp.IsOneOf(args[0], "flushall", "flushdb"):
		return streamFlush
	}
	if len(args) < 2 {
		return streamSkip
	}
	return streamKey
}

// slotSetOf returns a migration's slots as a set, for the constant-time
// test of the per-command filters.
func slotSetOf(s migrate.Slots) *ring.SlotSet {
	set, _ := ring.FromRanges(ringRanges(s)) // a migration's ranges are valid
	return &set
}
