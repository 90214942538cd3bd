package node

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

// TestStateRoundTrip checks that the node config file keeps everything a
// restart needs: identity, epochs, vote, membership and slot claims.
func TestStateRoundTrip(t *testing.T) {
	a, b := newNodeID(), newNodeID()
	st := &gossip.State{
		ID: a, CurrentEpoch: 7, ConfigEpoch: 5, LastVoteEpoch: 6, VoteFloor: 2,
		Votes: []gossip.SavedVote{{Epoch: 4, Candidate: b, Master: a}, {Epoch: 6, Candidate: b, Master: a}},
		Nodes: []wire.NodeRecord{
			{ID: a, Addr: wire.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 7000, BusPort: 17000}, Flags: wire.FlagMaster, ConfigEpoch: 5, Version: 3},
			{ID: b, Addr: wire.Addr{IP: netip.MustParseAddr("::1"), Port: 7001, BusPort: 17001}, Flags: wire.FlagReplica | wire.FlagFail, Master: a, ConfigEpoch: 5, Version: 9},
		},
		Claims: []wire.SlotClaim{{Owner: a, ConfigEpoch: 5, Version: 3, Ranges: []wire.SlotRange{{Start: 0, End: 100}, {Start: 200, End: 200}}}},
		Marks:  []ring.Mark{{Slot: 5, Node: ring.NodeID(b)}, {Slot: 300, Importing: true, Node: ring.NodeID(b)}},
	}
	dir := t.TempDir()
	data, err := encodeState(st, 7000, 17000, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(dir, StateFile, data); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile+".tmp")); !os.IsNotExist(err) {
		t.Fatalf("temp file left behind: %v", err)
	}
	got, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, st)
	}
	if st, err := loadState(t.TempDir()); st != nil || err != nil {
		t.Fatalf("empty dir: %v, %v", st, err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadState(dir); err == nil {
		t.Fatal("a corrupt node config file was accepted")
	}
}

// A claim by a node the file does not list is refused, naming the claim,
// rather than loaded and lost at the next write.
func TestStateRefusesClaimOfUnknownOwner(t *testing.T) {
	a, stranger := newNodeID(), newNodeID()
	st := &gossip.State{
		ID:     a,
		Nodes:  []wire.NodeRecord{{ID: a, Addr: wire.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 7000, BusPort: 17000}, Flags: wire.FlagMaster, Version: 1}},
		Claims: []wire.SlotClaim{{Owner: stranger, ConfigEpoch: 3, Version: 1, Ranges: []wire.SlotRange{{Start: 0, End: 99}}}},
	}
	data, err := encodeState(st, 7000, 17000, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := writeFileAtomic(dir, StateFile, data); err != nil {
		t.Fatal(err)
	}
	_, err = loadState(dir)
	for _, want := range []string{filepath.Join(dir, StateFile), "claim of slots 0-99 by node " + stranger.String(), "does not list"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	// A claim by a listed node, or by the node itself, loads.
	st.Claims[0].Owner = a
	if data, err = encodeState(st, 7000, 17000, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeState(data); err != nil {
		t.Errorf("own claim refused: %v", err)
	}
}

// The file is exactly the JSON encoding/json writes for its fileState,
// indentation aside, whatever the strings hold: so it reads back as
// written, and files from before the hand-written encoder read alike.
func TestStateEncodingIsFileStateJSON(t *testing.T) {
	a, b := newNodeID(), newNodeID()
	// A zone may hold anything, the characters JSON escapes too.
	zoned := &gossip.State{ID: a}
	for _, zone := range []string{`"`, `\`, "<", ">", "&", "\x01", "\x7f", "é"} {
		zoned.Nodes = append(zoned.Nodes, wire.NodeRecord{ID: newNodeID(), Addr: wire.Addr{IP: netip.MustParseAddr("fe80::1%x" + zone)}})
	}
	for _, st := range []*gossip.State{
		{ID: a}, // no nodes: "nodes" is null, as for a nil slice
		zoned,
		{
			ID: a, CurrentEpoch: 1 << 40, ConfigEpoch: 5, LastVoteEpoch: 6, VoteFloor: 2,
			Votes: []gossip.SavedVote{{Epoch: 4, Candidate: b, Master: a}},
			Nodes: []wire.NodeRecord{
				{ID: a, Addr: wire.Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 7000, BusPort: 17000}, Flags: wire.FlagMaster, ConfigEpoch: 5, Version: 3},
				{ID: b, Addr: wire.Addr{IP: netip.MustParseAddr("::1"), Port: 1, BusPort: 65535}, Flags: wire.FlagReplica, Master: a, Version: 9},
			},
			Claims: []wire.SlotClaim{{Owner: a, ConfigEpoch: 5, Version: 3, Ranges: []wire.SlotRange{{Start: 0, End: 0}, {Start: 2, End: 16383}}}},
			Marks:  []ring.Mark{{Slot: 16383, Importing: true, Node: ring.NodeID(b)}, {Slot: 0, Node: ring.NodeID(b)}},
		},
	} {
		data, err := encodeState(st, 7000, 17000, time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)))
		if err != nil {
			t.Fatal(err)
		}
		var fs fileState
		if err := json.Unmarshal(data, &fs); err != nil {
			t.Fatalf("%v:\n%s", err, data)
		}
		want, err := json.Marshal(&fs)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := json.Compact(&got, data); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("encoded\n%s\nwant, compacted\n%s", got.Bytes(), want)
		}
		if back, err := decodeState(data); err != nil || !reflect.DeepEqual(back, st) {
			t.Errorf("round trip: %v\n got %+v\nwant %+v", err, back, st)
		}
	}
}

// A node config file as versions before the hand-written encoder wrote
// it (json.MarshalIndent) still loads.
func TestStateLoadsIndentedFile(t *testing.T) {
	const old = `{
  "version": 1,
  "id": "0a000000000000000000000000000000000000aa",
  "current_epoch": 7,
  "config_epoch": 5,
  "last_vote_epoch": 6,
  "vote_floor": 2,
  "votes": [
    {
      "epoch": 6,
      "candidate": "0b000000000000000000000000000000000000bb",
      "master": "0a000000000000000000000000000000000000aa"
    }
  ],
  "nodes": [
    {
      "id": "0a000000000000000000000000000000000000aa",
      "ip": "127.0.0.1",
      "port": 7000,
      "bus_port": 17000,
      "flags": 1,
      "config_epoch": 5,
      "version": 3
    },
    {
      "id": "0b000000000000000000000000000000000000bb",
      "ip": "::1",
      "port": 7001,
      "bus_port": 17001,
      "flags": 2,
      "master": "0a000000000000000000000000000000000000aa",
      "config_epoch": 0,
      "version": 9
    }
  ],
  "claims": [
    {
      "owner": "0a000000000000000000000000000000000000aa",
      "config_epoch": 5,
      "version": 3,
      "slots": "0-100 200"
    }
  ],
  "slot_marks": [
    {
      "slot": 300,
      "state": "importing",
      "node": "0b000000000000000000000000000000000000bb"
    }
  ],
  "port": 7000,
  "bus_port": 17000,
  "saved": "2026-01-02T03:04:05.000000006Z"
}
`
	a, _ := wire.ParseNodeID("0a000000000000000000000000000000000000aa")
	b, _ := wire.ParseNodeID("0b000000000000000000000000000000000000bb")
	want := &gossip.State{
		ID: a, CurrentEpoch: 7, ConfigEpoch: 5, LastVoteEpoch: 6, VoteFloor: 2,
		Votes: []gossip.SavedVote{{Epoch: 6, Candidate: b, Master: a}},
		Nodes: []wire.NodeRecord{
			{ID: a, Addr: wire.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 7000, BusPort: 17000}, Flags: wire.FlagMaster, ConfigEpoch: 5, Version: 3},
			{ID: b, Addr: wire.Addr{IP: netip.MustParseAddr("::1"), Port: 7001, BusPort: 17001}, Flags: wire.FlagReplica, Master: a, Version: 9},
		},
		Claims: []wire.SlotClaim{{Owner: a, ConfigEpoch: 5, Version: 3, Ranges: []wire.SlotRange{{Start: 0, End: 100}, {Start: 200, End: 200}}}},
		Marks:  []ring.Mark{{Slot: 300, Importing: true, Node: ring.NodeID(b)}},
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%v\n got %+v\nwant %+v", err, got, want)
	}
	// Written again, it keeps every value.
	data, _ := encodeState(got, 7000, 17000, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC))
	var was, is map[string]any
	if err := json.Unmarshal([]byte(old), &was); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &is); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(was, is) {
		t.Errorf("rewritten:\n%s\nwas\n%s", data, old)
	}
}

// writeFile without sync replaces the file whole, like writeFileAtomic,
// and leaves no temp file; only the fsyncs are left out.
func TestWriteFileWithoutSync(t *testing.T) {
	dir := t.TempDir()
	for _, data := range []string{"first version\n", "second\n"} {
		if err := writeFile(dir, StateFile, []byte(data), false); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, StateFile))
		if err != nil || string(got) != data {
			t.Fatalf("file holds %q, %v; want %q", got, err, data)
		}
		if _, err := os.Stat(filepath.Join(dir, StateFile+".tmp")); !os.IsNotExist(err) {
			t.Fatalf("temp file left behind: %v", err)
		}
	}
	if err := writeFile(filepath.Join(dir, "missing"), StateFile, []byte("x"), false); err == nil {
		t.Fatal("a write into a missing directory reported success")
	}
}
