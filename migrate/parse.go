package migrate

import (
	"errors"
	"strconv"
	"strings"

	"github.com/hearsay/hearsay/gossip/wire"
)

// ErrArity is the command layer's arity error for MIGRATESLOTS.
var ErrArity = errors.New("ERR wrong number of arguments for 'cluster|migrateslots' command")

// ParseMigrateSlots parses the arguments after CLUSTER MIGRATESLOTS:
// SLOTSRANGE start end [start end ...] NODE id, repeated. It checks the
// grammar and each group's ranges with Valkey's errors; ownership and the
// target are MigrateSlots's to check. Names are left for the caller.
func ParseMigrateSlots(args []string) ([]Request, error) {
	if len(args) < 2 {
		return nil, ErrArity
	}
	var reqs []Request
	for i := 0; i < len(args); {
		if !strings.EqualFold(args[i], "SLOTSRANGE") {
			return nil, ErrSyntax
		}
		i++
		var s Slots
		for i < len(args) {
			start, ok := parseInt(args[i])
			if !ok {
				break // the next keyword
			}
			if start < 0 || start >= wire.NumSlots {
				return nil, ErrBadSlot
			}
			if i+1 >= len(args) {
				return nil, ErrNoEndSlot
			}
			end, ok := parseInt(args[i+1])
			if !ok || end < 0 || end >= wire.NumSlots {
				return nil, ErrBadSlot
			}
			if start > end {
				return nil, errStartAfterEnd(start, end)
			}
			r := wire.SlotRange{Start: uint16(start), End: uint16(end)}
			for _, p := range s {
				if r.Start <= p.End && p.Start <= r.End {
					return nil, errRangeOverlap(r, p)
				}
			}
			s = append(s, r)
			i += 2
		}
		if len(s) == 0 {
			return nil, ErrNoRanges
		}
		if i+1 >= len(args) || !strings.EqualFold(args[i], "NODE") {
			return nil, ErrSyntax
		}
		id, err := wire.ParseNodeID(args[i+1])
		if err != nil {
			return nil, ErrBadNodeName
		}
		reqs = append(reqs, Request{Target: id, Slots: s})
		i += 2
	}
	return reqs, nil
}

// parseInt reads a decimal integer as Redis's string2ll does: an optional
// minus sign and digits, nothing else.
func parseInt(s string) (int, bool) {
	if s == "" || len(s) > 20 || s[0] == '+' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < -1<<31 || n > 1<<31 {
		return 0, false
	}
	return int(n), true
}
