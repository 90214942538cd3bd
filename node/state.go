package node

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
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

func idText(id wire.NodeID) string {
	if id.IsZero() {
		return ""
	}
	return id.String()
}

func parseID(s string) (wire.NodeID, error) {
	if s == "" {
		return wire.NodeID{}, nil
	}
	return wire.ParseNodeID(s)
}

func encodeState(st *gossip.State, port, busPort int, now time.Time) ([]byte, error) {
	fs := fileState{
		Version: stateFileVersion, ID: st.ID.String(), CurrentEpoch: st.CurrentEpoch,
		ConfigEpoch: st.ConfigEpoch, LastVoteEpoch: st.LastVoteEpoch,
		Port: port, BusPort: busPort, Saved: now.UTC().Format(time.RFC3339Nano),
		VoteFloor: st.VoteFloor,
	}
	for _, v := range st.Votes {
		fs.Votes = append(fs.Votes, fileVote{Epoch: v.Epoch, Candidate: v.Candidate.String(), Master: v.Master.String()})
	}
	for _, r := range st.Nodes {
		fs.Nodes = append(fs.Nodes, fileRecord{
			ID: r.ID.String(), IP: r.Addr.IP.String(), Port: r.Addr.Port, BusPort: r.Addr.BusPort,
			Flags: uint16(r.Flags), Master: idText(r.Master), ConfigEpoch: r.ConfigEpoch, Version: r.Version,
		})
	}
	for _, c := range st.Claims {
		rs := make([]ring.Range, len(c.Ranges))
		for i, r := range c.Ranges {
			rs[i] = ring.Range{Start: r.Start, End: r.End}
		}
		fs.Claims = append(fs.Claims, fileClaim{Owner: c.Owner.String(), ConfigEpoch: c.ConfigEpoch, Version: c.Version, Slots: ring.FormatRanges(rs)})
	}
	for _, m := range st.Marks {
		state := "migrating"
		if m.Importing {
			state = "importing"
		}
		fs.Marks = append(fs.Marks, fileMark{Slot: m.Slot, State: state, Node: wire.NodeID(m.Node).String()})
	}
	b, err := json.MarshalIndent(&fs, "", "  ")
	return append(b, '\n'), err
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
// the old or the new file, never a torn one.
func writeFileAtomic(dir, name string, data []byte) error {
	return writeAtomic(dir, name, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic replaces dir/name with what write produces: a temp file,
// fsynced, renamed over the old one, then an fsync of the directory so the
// rename itself is durable.
func writeAtomic(dir, name string, write func(io.Writer) error) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = write(bw); err == nil {
		if err = bw.Flush(); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
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
