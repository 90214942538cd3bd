package node

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// stateFileVersion is bumped when the layout of StateFile changes
// incompatibly.
const stateFileVersion = 1

// fileState is the JSON layout of the node config file. IDs are 40-char hex
// and slots are range strings so that an operator can read and diff it;
// the file is small (one record per node), so readability costs nothing.
type fileState struct {
	Version       int    `json:"version"`
	ID            string `json:"id"`
	CurrentEpoch  uint64 `json:"current_epoch"`
	ConfigEpoch   uint64 `json:"config_epoch"`
	LastVoteEpoch uint64 `json:"last_vote_epoch"`
	// VoteFloor and Votes are the failover votes this node granted.
	VoteFloor uint64       `json:"vote_floor,omitempty"`
	Votes     []fileVote   `json:"votes,omitempty"`
	Nodes     []fileRecord `json:"nodes"`
	Claims    []fileClaim  `json:"claims,omitempty"`
	// Marks are this node's open slots: SETSLOT IMPORTING/MIGRATING.
	Marks []fileMark `json:"slot_marks,omitempty"`
	// Runtime fields: where this node listened when the file was written.
	// They are informational; flags win on restart.
	Port    int    `json:"port"`
	BusPort int    `json:"bus_port"`
	Saved   string `json:"saved"`
}

type fileRecord struct {
	ID          string `json:"id"`
	IP          string `json:"ip"`
	Port        uint16 `json:"port"`
	BusPort     uint16 `json:"bus_port"`
	Flags       uint16 `json:"flags"`
	Master      string `json:"master,omitempty"`
	ConfigEpoch uint64 `json:"config_epoch"`
	Version     uint64 `json:"version"`
}

type fileMark struct {
	Slot  uint16 `json:"slot"`
	State string `json:"state"` // "importing" (from node) or "migrating" (to node)
	Node  string `json:"node"`
}

type fileVote struct {
	Epoch     uint64 `json:"epoch"`
	Candidate string `json:"candidate"`
	Master    string `json:"master"`
}

type fileClaim struct {
	Owner       string `json:"owner"`
	ConfigEpoch uint64 `json:"config_epoch"`
	Version     uint64 `json:"version"`
	Slots       string `json:"slots"`
}

func parseID(s string) (wire.NodeID, error) {
	if s == "" {
		return wire.NodeID{}, nil
	}
	return wire.ParseNodeID(s)
}

// encodeState returns the node config file for st. The file is JSON with
// the layout of fileState; see jsonWriter.state.
func encodeState(st *gossip.State, port, busPort int, now time.Time) ([]byte, error) {
	var w jsonWriter
	return w.state(st, port, busPort, now), nil
}

// state returns the node config file for st, in w's buffer, which the
// next call reuses: the node keeps one jsonWriter for its saves. It writes the
// JSON of fileState by hand, one node, claim, vote or mark per line: the
// node rewrites the file on every change of epochs, slots or membership
// (about a hundred times per node while a cluster of a hundred forms),
// and building a fileState for encoding/json cost most of each write in
// allocations and reflection. The values and their order are exactly
// what json.Marshal gives for the same fileState (state_test.go checks
// it), so the decoder reads this file and the indented one earlier
// versions wrote alike, and a line diff of two files shows what changed.
func (w *jsonWriter) state(st *gossip.State, port, busPort int, now time.Time) []byte {
	w.b = append(w.b[:0], "{\n  "...)
	w.sep, w.first = topSep, true
	w.uint("version", stateFileVersion)
	w.id("id", st.ID)
	w.uint("current_epoch", st.CurrentEpoch)
	w.uint("config_epoch", st.ConfigEpoch)
	w.uint("last_vote_epoch", st.LastVoteEpoch)
	if st.VoteFloor != 0 {
		w.uint("vote_floor", st.VoteFloor)
	}
	w.list("votes", len(st.Votes), func(i int) {
		v := &st.Votes[i]
		w.uint("epoch", v.Epoch)
		w.id("candidate", v.Candidate)
		w.id("master", v.Master)
	})
	if len(st.Nodes) == 0 {
		w.key("nodes")
		w.raw("null") // as encoding/json writes a nil slice
	}
	w.list("nodes", len(st.Nodes), func(i int) {
		r := &st.Nodes[i]
		w.id("id", r.ID)
		w.key("ip")
		w.str(r.Addr.IP.AppendTo(w.scratch[:0]))
		w.uint("port", uint64(r.Addr.Port))
		w.uint("bus_port", uint64(r.Addr.BusPort))
		w.uint("flags", uint64(r.Flags))
		if !r.Master.IsZero() {
			w.id("master", r.Master)
		}
		w.uint("config_epoch", r.ConfigEpoch)
		w.uint("version", r.Version)
	})
	w.list("claims", len(st.Claims), func(i int) {
		c := &st.Claims[i]
		w.id("owner", c.Owner)
		w.uint("config_epoch", c.ConfigEpoch)
		w.uint("version", c.Version)
		w.key("slots")
		sb := w.scratch[:0]
		for j, r := range c.Ranges {
			if j > 0 {
				sb = append(sb, ' ')
			}
			sb = ring.Range{Start: r.Start, End: r.End}.AppendTo(sb)
		}
		w.str(sb)
	})
	w.list("slot_marks", len(st.Marks), func(i int) {
		m := &st.Marks[i]
		w.uint("slot", uint64(m.Slot))
		w.key("state")
		if m.Importing {
			w.raw(`"importing"`)
		} else {
			w.raw(`"migrating"`)
		}
		w.id("node", wire.NodeID(m.Node))
	})
	w.uint("port", uint64(port))
	w.uint("bus_port", uint64(busPort))
	w.key("saved")
	w.str(now.UTC().AppendFormat(w.scratch[:0], time.RFC3339Nano))
	w.raw("\n}\n")
	return w.b
}

// Member separators: between the top-level members (one per line), and
// within an array's object (all on its line).
const (
	topSep  = ",\n  "
	itemSep = ", "
)

// jsonWriter appends the few JSON forms jsonWriter.state needs. Each
// member written puts the separator before it but for the first of its
// object.
type jsonWriter struct {
	b       []byte
	scratch []byte // for the text of one string value before it is quoted
	sep     string
	first   bool
}

func (w *jsonWriter) raw(s string) { w.b = append(w.b, s...) }

func (w *jsonWriter) key(k string) {
	if !w.first {
		w.b = append(w.b, w.sep...)
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, `": `...)
}

func (w *jsonWriter) uint(k string, v uint64) {
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}

// id writes a node ID as 40 hex digits, or "" for none.
func (w *jsonWriter) id(k string, id wire.NodeID) {
	w.key(k)
	w.b = append(w.b, '"')
	if !id.IsZero() {
		w.b = hex.AppendEncode(w.b, id[:])
	}
	w.b = append(w.b, '"')
}

// str writes s quoted. Every string the file holds is printable ASCII
// but for an IPv6 zone, which may be anything; anything else goes
// through encoding/json, escaped as it would be there.
func (w *jsonWriter) str(s []byte) {
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(string(s)) // a string always encodes
			w.b = append(w.b, q...)
			w.scratch = s[:0]
			return
		}
	}
	w.b = append(w.b, '"')
	w.b = append(w.b, s...)
	w.b = append(w.b, '"')
	w.scratch = s[:0] // s was built in scratch: keep what it grew to
}

// list writes the array k, left out when empty (omitempty), with one
// object per line, item(i) writing the members of the i-th.
func (w *jsonWriter) list(k string, n int, item func(i int)) {
	if n == 0 {
		return
	}
	w.key(k)
	w.b = append(w.b, '[')
	for i := range n {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.raw("\n    {")
		w.sep, w.first = itemSep, true
		item(i)
		w.b = append(w.b, '}')
	}
	w.raw("\n  ]")
	w.sep, w.first = topSep, false
}

func decodeState(b []byte) (*gossip.State, error) {
	var fs fileState
	if err := json.Unmarshal(b, &fs); err != nil {
		return nil, err
	}
	if fs.Version != stateFileVersion {
		return nil, fmt.Errorf("unsupported version %d", fs.Version)
	}
	st := &gossip.State{CurrentEpoch: fs.CurrentEpoch, ConfigEpoch: fs.ConfigEpoch, LastVoteEpoch: fs.LastVoteEpoch, VoteFloor: fs.VoteFloor}
	var err error
	if st.ID, err = wire.ParseNodeID(fs.ID); err != nil {
		return nil, fmt.Errorf("id: %w", err)
	}
	for _, v := range fs.Votes {
		sv := gossip.SavedVote{Epoch: v.Epoch}
		if sv.Candidate, err = wire.ParseNodeID(v.Candidate); err != nil {
			return nil, fmt.Errorf("vote in epoch %d: candidate: %w", v.Epoch, err)
		}
		if sv.Master, err = wire.ParseNodeID(v.Master); err != nil {
			return nil, fmt.Errorf("vote in epoch %d: master: %w", v.Epoch, err)
		}
		st.Votes = append(st.Votes, sv)
	}
	for _, r := range fs.Nodes {
		rec := wire.NodeRecord{Flags: wire.Flags(r.Flags), ConfigEpoch: r.ConfigEpoch, Version: r.Version}
		if rec.ID, err = wire.ParseNodeID(r.ID); err != nil {
			return nil, fmt.Errorf("node %q: %w", r.ID, err)
		}
		if rec.Master, err = parseID(r.Master); err != nil {
			return nil, fmt.Errorf("node %s master: %w", r.ID, err)
		}
		ip, err := netip.ParseAddr(r.IP)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", r.ID, err)
		}
		rec.Addr = wire.Addr{IP: ip, Port: r.Port, BusPort: r.BusPort}
		st.Nodes = append(st.Nodes, rec)
	}
	for _, c := range fs.Claims {
		cl := wire.SlotClaim{ConfigEpoch: c.ConfigEpoch, Version: c.Version}
		if cl.Owner, err = wire.ParseNodeID(c.Owner); err != nil {
			return nil, fmt.Errorf("claim owner %q: %w", c.Owner, err)
		}
		rs, err := ring.ParseRanges(c.Slots)
		if err != nil {
			return nil, fmt.Errorf("claim of %s: %w", c.Owner, err)
		}
		for _, r := range rs {
			cl.Ranges = append(cl.Ranges, wire.SlotRange{Start: r.Start, End: r.End})
		}
		st.Claims = append(st.Claims, cl)
	}
	// A claim names slots its owner serves. The node writes claims only
	// of nodes it lists, so a claim by a node the file does not list was
	// edited in or is corruption; loading it would lose those slots when
	// the file is next written (the owner has no record to keep the claim
	// with), so the start is refused instead, with the claim named.
	known := map[wire.NodeID]bool{st.ID: true}
	for _, r := range st.Nodes {
		known[r.ID] = true
	}
	for _, c := range fs.Claims {
		if id, _ := wire.ParseNodeID(c.Owner); !known[id] {
			return nil, fmt.Errorf("claim of slots %s by node %s, which the file does not list under \"nodes\": "+
				"add that node's record, or remove the claim (its slots are then unassigned and can be "+
				"given back with CLUSTER ADDSLOTS or SETSLOT)", c.Slots, c.Owner)
		}
	}
	for _, m := range fs.Marks {
		id, err := wire.ParseNodeID(m.Node)
		if err != nil || id.IsZero() {
			return nil, fmt.Errorf("mark of slot %d: bad node %q", m.Slot, m.Node)
		}
		if m.Slot >= ring.Slots || (m.State != "importing" && m.State != "migrating") {
			return nil, fmt.Errorf("mark of slot %d: bad slot or state %q", m.Slot, m.State)
		}
		st.Marks = append(st.Marks, ring.Mark{Slot: m.Slot, Importing: m.State == "importing", Node: ring.NodeID(id)})
	}
	return st, nil
}

// loadState reads the node config file in dir. It returns nil, nil when
// there is none (a fresh node).
func loadState(dir string) (*gossip.State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st, err := decodeState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return st, nil
}

// writeFileAtomic replaces dir/name with data so that a crash leaves either
// the old or the new file, never a torn one. data is written in one call:
// a buffer in between would only copy it (the node config file is
// rewritten often, and a fresh 1 MiB buffer per write showed in profiles).
func writeFileAtomic(dir, name string, data []byte) error {
	return writeFile(dir, name, data, true)
}

// writeFile is writeFileAtomic when sync is set. Without it the fsyncs
// are left out: a crash of the process leaves the new file, a loss of
// power may leave the old one, and the caller makes it durable later.
func writeFile(dir, name string, data []byte, sync bool) error {
	return replaceFile(dir, name, sync, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// writeAtomic replaces dir/name with what write produces, buffered for
// writers that stream many small pieces (the snapshot).
func writeAtomic(dir, name string, write func(io.Writer) error) error {
	return replaceFile(dir, name, true, func(f *os.File) error {
		bw := bufio.NewWriterSize(f, 1<<20)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// replaceFile replaces dir/name with what fill writes: a temp file,
// fsynced, renamed over the old one, then an fsync of the directory so the
// rename itself is durable. Without sync both fsyncs are left out.
func replaceFile(dir, name string, sync bool, fill func(*os.File) error) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err = fill(f); err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil || !sync {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
