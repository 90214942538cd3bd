package node

import (
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
