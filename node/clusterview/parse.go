package clusterview

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// NodeLine is one parsed line of CLUSTER NODES.
type NodeLine struct {
	ID          wire.NodeID
	IP          string // as written: empty when unknown, IPv6 without brackets
	Port        uint16
	BusPort     uint16 // 0 when the line has no "@cport" (Redis before 4.0)
	Hostname    string // Redis 7 ",hostname" suffix of the address; "" when absent
	Myself      bool
	Flags       wire.Flags
	Master      wire.NodeID // zero for "-"
	PingSent    int64       // Unix ms, 0 when none
	PongRecv    int64       // Unix ms, 0 when never
	ConfigEpoch uint64
	Connected   bool
	Slots       []ring.Range
	Open        []OpenSlot // migrating and importing slots, myself line only
}

// Addr returns "ip:port", the address clients and redis-cli use.
func (l *NodeLine) Addr() string {
	if strings.Contains(l.IP, ":") {
		return "[" + l.IP + "]:" + strconv.Itoa(int(l.Port))
	}
	return l.IP + ":" + strconv.Itoa(int(l.Port))
}

// IsMaster reports whether the line describes a master.
func (l *NodeLine) IsMaster() bool { return l.Flags&wire.FlagMaster != 0 }

// IsReplica reports whether the line describes a replica.
func (l *NodeLine) IsReplica() bool { return l.Flags&wire.FlagReplica != 0 }

// SlotCount returns how many slots the line lists (open slots excluded).
func (l *NodeLine) SlotCount() int { return rangesLen(l.Slots) }

// ParseError reports a malformed CLUSTER NODES line.
type ParseError struct {
	Line int    // 1-based line number
	Text string // the offending line
	Msg  string // what is wrong with it
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("clusterview: CLUSTER NODES line %d: %s: %q", e.Line, e.Msg, e.Text)
}

// ParseNodes parses CLUSTER NODES text from Redis or hearsay. Blank lines are
// skipped; anything else that is not a well-formed node line is an error
// naming the line. The lines are returned in the order given.
func ParseNodes(text string) ([]NodeLine, error) {
	var out []NodeLine
	for n := 1; text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		if strings.TrimSpace(line) == "" {
			continue
		}
		l, msg := parseLine(line)
		if msg != "" {
			return nil, &ParseError{Line: n, Text: line, Msg: msg}
		}
		out = append(out, l)
	}
	return out, nil
}

func parseLine(line string) (l NodeLine, msg string) {
	f := strings.Fields(line)
	if len(f) < 8 {
		return l, fmt.Sprintf("has %d fields, want at least 8 (id addr flags master ping pong epoch link)", len(f))
	}
	id, err := wire.ParseNodeID(f[0])
	if err != nil {
		return l, "node ID is not 40 lowercase hex characters"
	}
	l.ID = id
	if msg = parseAddr(&l, f[1]); msg != "" {
		return l, msg
	}
	if msg = parseFlags(&l, f[2]); msg != "" {
		return l, msg
	}
	if f[3] != "-" {
		if l.Master, err = wire.ParseNodeID(f[3]); err != nil {
			return l, "master is neither - nor a 40-character node ID"
		}
	}
	if l.PingSent, err = strconv.ParseInt(f[4], 10, 64); err != nil {
		return l, "ping_sent is not an integer"
	}
	if l.PongRecv, err = strconv.ParseInt(f[5], 10, 64); err != nil {
		return l, "pong_recv is not an integer"
	}
	if l.ConfigEpoch, err = strconv.ParseUint(f[6], 10, 64); err != nil {
		return l, "configEpoch is not an unsigned integer"
	}
	switch f[7] {
	case "connected":
		l.Connected = true
	case "disconnected":
	default:
		return l, "link state is neither connected nor disconnected"
	}
	for _, s := range f[8:] {
		if strings.HasPrefix(s, "[") {
			o, ok := parseOpen(s)
			if !ok {
				return l, fmt.Sprintf("bad open slot %q, want [slot->-id] or [slot-<-id]", s)
			}
			l.Open = append(l.Open, o)
			continue
		}
		r, err := ring.ParseRange(s)
		if err != nil {
			return l, fmt.Sprintf("bad slot range %q", s)
		}
		l.Slots = append(l.Slots, r)
	}
	return l, ""
}

func parseAddr(l *NodeLine, s string) string {
	s, l.Hostname, _ = strings.Cut(s, ",")
	hostport, cport, hasBus := strings.Cut(s, "@")
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return "address is not ip:port@cport"
	}
	l.IP = hostport[:i]
	for j := 0; j < len(l.IP); j++ {
		c := l.IP[j]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == ':' || c == '-' || c == '_' || c == '%') {
			return "address has a bad character in its host"
		}
	}
	p, err := strconv.ParseUint(hostport[i+1:], 10, 16)
	if err != nil {
		return "address port is not a number 0-65535"
	}
	l.Port = uint16(p)
	if hasBus {
		p, err := strconv.ParseUint(cport, 10, 16)
		if err != nil {
			return "address bus port is not a number 0-65535"
		}
		l.BusPort = uint16(p)
	}
	return ""
}

func parseFlags(l *NodeLine, s string) string {
	for _, w := range strings.Split(s, ",") {
		switch w {
		case "myself":
			l.Myself = true
			continue
		case "noflags":
			continue
		}
		found := false
		for _, fn := range flagNames {
			if fn.name == w {
				l.Flags |= fn.flag
				found = true
				break
			}
		}
		if !found {
			return fmt.Sprintf("unknown flag %q", w)
		}
	}
	return ""
}

func parseOpen(s string) (OpenSlot, bool) {
	if len(s) < 2 || s[len(s)-1] != ']' {
		return OpenSlot{}, false
	}
	body := s[1 : len(s)-1]
	var o OpenSlot
	slot, peer, ok := strings.Cut(body, "->-")
	if ok {
		o.Migrating = true
	} else if slot, peer, ok = strings.Cut(body, "-<-"); !ok {
		return o, false
	}
	n, err := ring.ParseSlot(slot)
	if err != nil {
		return o, false
	}
	id, err := wire.ParseNodeID(peer)
	if err != nil {
		return o, false
	}
	o.Slot, o.Peer = n, id
	return o, true
}

// AppendNodeLine appends l in CLUSTER NODES form, ending in "\n". Parsing the
// result gives l back.
func AppendNodeLine(dst []byte, l *NodeLine) []byte {
	dst = hexID(dst, l.ID)
	dst = append(dst, ' ')
	dst = append(dst, l.IP...)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, uint64(l.Port), 10)
	dst = append(dst, '@')
	dst = strconv.AppendUint(dst, uint64(l.BusPort), 10)
	if l.Hostname != "" {
		dst = append(dst, ',')
		dst = append(dst, l.Hostname...)
	}
	dst = append(dst, ' ')
	dst = AppendFlags(dst, l.Myself, l.Flags)
	dst = append(dst, ' ')
	if l.Master.IsZero() {
		dst = append(dst, '-')
	} else {
		dst = hexID(dst, l.Master)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, l.PingSent, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, l.PongRecv, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, l.ConfigEpoch, 10)
	if l.Connected {
		dst = append(dst, " connected"...)
	} else {
		dst = append(dst, " disconnected"...)
	}
	for _, r := range l.Slots {
		dst = append(dst, ' ')
		dst = appendRange(dst, r)
	}
	for _, o := range l.Open {
		dst = appendOpen(dst, o)
	}
	return append(dst, '\n')
}
