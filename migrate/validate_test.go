package migrate

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

func TestMigrateSlotsValidation(t *testing.T) {
	req := func(target wire.NodeID, s Slots, name string) Request {
		return Request{Name: name, Target: target, Slots: s}
	}
	one := []Request{req(dstID, rng(0, 9), "a")}
	tests := []struct {
		name string
		self wire.NodeID
		edit func(*fakeCluster, *Table)
		reqs []Request
		want string
	}{
		{"ok", srcID, nil, one, ""},
		{"two groups to two targets", srcID, nil, []Request{req(dstID, rng(0, 9), "a"), req(thirdI, rng(10, 19), "b")}, ""},
		{"from a replica", replID, nil, one, "ERR Slot migration can only be used on primary nodes"},
		{"no ranges", srcID, nil, nil, "ERR No slot ranges specified"},
		{"empty group", srcID, nil, []Request{req(dstID, nil, "a")}, "ERR No slot ranges specified"},
		{"legacy migrating", srcID, func(f *fakeCluster, _ *Table) { f.migrating = true }, one, "ERR Slots are being manually migrated"},
		{"legacy importing", srcID, func(f *fakeCluster, _ *Table) { f.importing = true }, one, "ERR Slots are being manually imported"},
		{"slot out of range", srcID, nil, []Request{req(dstID, rng(16380, 16388), "a")}, "ERR Invalid or out of range slot"},
		{"reversed", srcID, nil, []Request{req(dstID, Slots{{Start: 5, End: 1}}, "a")}, "ERR Start slot number 5 is greater than end slot number 1."},
		{"overlap in group", srcID, nil, []Request{req(dstID, Slots{{Start: 0, End: 5}, {Start: 3, End: 6}}, "a")}, "ERR Slot range 3-6 overlaps with previous range 0-5."},
		{"unassigned slot", srcID, nil, []Request{req(dstID, rng(300, 300), "a")}, "ERR Slot 300 has no node served."},
		{"two shards", srcID, nil, []Request{req(thirdI, rng(90, 110), "a")}, "ERR Requested slots span multiple shards"},
		{"not ours", srcID, nil, []Request{req(thirdI, rng(100, 110), "a")}, "ERR Slots are not served by this node"},
		{"to itself", srcID, nil, []Request{req(srcID, rng(0, 9), "a")}, "ERR Target node can not be this node"},
		{"unknown target", srcID, nil, []Request{req(nid(9), rng(0, 9), "a")}, "ERR Unknown node name"},
		{"to a replica", srcID, nil, []Request{req(replID, rng(0, 9), "a")}, "ERR Target node is not a primary"},
		{"to a failed node", srcID, func(f *fakeCluster, _ *Table) { f.nodes[dstID] = Node{ID: dstID, IsMaster: true, Failed: true} }, one, "ERR Target node is failed"},
		{"groups overlap", srcID, nil, []Request{req(dstID, rng(0, 9), "a"), req(thirdI, rng(9, 12), "b")}, "ERR Slot ranges in migrations overlap"},
		{"already migrating", srcID, func(f *fakeCluster, tb *Table) {
			if _, err := tb.MigrateSlots(0, f, []Request{req(dstID, rng(5, 7), "old")}); err != nil {
				panic(err)
			}
		}, []Request{req(dstID, rng(0, 9), "a")}, "ERR I am already migrating slot 5"},
		{"no name", srcID, nil, []Request{req(dstID, rng(0, 9), "")}, "ERR Invalid migration name"},
		{"name twice", srcID, nil, []Request{req(dstID, rng(0, 9), "a"), req(thirdI, rng(10, 19), "a")}, "ERR Invalid migration name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := threeMasters(tc.self)
			tb := NewTable(Config{NodeTimeout: time.Second})
			if tc.edit != nil {
				tc.edit(cl, tb)
			}
			before := len(tb.Exports())
			out, err := tb.MigrateSlots(0, cl, tc.reqs)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(tb.Exports()) != before+len(tc.reqs) {
					t.Fatalf("%d exports, want %d", len(tb.Exports()), before+len(tc.reqs))
				}
				// Persist comes before Connect for every export.
				for i, in := range out {
					if in.Kind == Connect && (i == 0 || out[i-1].Kind != Persist || out[i-1].State == nil) {
						t.Fatalf("Connect not preceded by its Persist: %v", kinds(out))
					}
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if len(tb.Exports()) != before || out != nil {
				t.Fatal("a refused command started something")
			}
		})
	}
}

func TestEstablishValidation(t *testing.T) {
	tests := []struct {
		name   string
		self   wire.NodeID
		source wire.NodeID
		slots  Slots
		edit   func(*fakeCluster, *Table)
		want   error
	}{
		{"ok", dstID, srcID, rng(0, 9), nil, nil},
		{"on a replica", replID, srcID, rng(0, 9), nil, ErrNotPrimary},
		{"unknown source", dstID, nid(9), rng(0, 9), nil, ErrUnknownSource},
		{"ownership differs", dstID, srcID, rng(95, 105), nil, ErrOwnership},
		{"legacy importing", dstID, srcID, rng(0, 9), func(f *fakeCluster, _ *Table) { f.importing = true }, ErrManualImporting},
		{"already importing", dstID, srcID, rng(0, 9), func(f *fakeCluster, tb *Table) {
			if _, err := tb.Establish(0, f, "other", srcID, rng(9, 9), 1); err != nil {
				panic(err)
			}
		}, ErrAlreadyImported},
		{"name reused", dstID, srcID, rng(0, 9), func(f *fakeCluster, tb *Table) { tb.used["n"] = true }, ErrBadName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := threeMasters(tc.self)
			tb := NewTable(Config{})
			if tc.edit != nil {
				tc.edit(cl, tb)
			}
			out, err := tb.Establish(0, cl, "n", tc.source, tc.slots, 1)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && (len(out) == 0 || out[0].Kind != Persist || out[0].State == nil) {
				t.Fatalf("an accepted import must persist first: %v", kinds(out))
			}
		})
	}
}

func TestCancelAllNoMigrations(t *testing.T) {
	cl := threeMasters(dstID)
	tb := NewTable(Config{})
	if _, err := tb.CancelAll(0); err != ErrNoMigrations {
		t.Fatalf("err = %v", err)
	}
	// An import alone does not count: Valkey cancels exports only.
	if _, err := tb.Establish(0, cl, "n", srcID, rng(0, 9), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.CancelAll(0); err != ErrNoMigrations {
		t.Fatalf("err = %v with only an import", err)
	}
}

func TestParseMigrateSlots(t *testing.T) {
	id := strings.Repeat("ab", 20)
	tests := []struct {
		args string
		want string // error text, or "" for success
		n    int
	}{
		{"SLOTSRANGE 0 1 NODE " + id, "", 1},
		{"slotsrange 0 1 5 9 node " + id + " SLOTSRANGE 10 10 NODE " + id, "", 2},
		{"", ErrArity.Error(), 0},
		{"SLOTSRANGE", ErrArity.Error(), 0},
		{"INVALID 0 1", "ERR syntax error", 0},
		{"SLOTSRANGE 0", "ERR No end slot for final slot range", 0},
		{"SLOTSRANGE 16385 16388", "ERR Invalid or out of range slot", 0},
		{"SLOTSRANGE 16380 16388", "ERR Invalid or out of range slot", 0},
		{"SLOTSRANGE a 0", "ERR No slot ranges specified", 0},
		{"SLOTSRANGE 0 a", "ERR Invalid or out of range slot", 0},
		{"SLOTSRANGE 1 0", "ERR Start slot number 1 is greater than end slot number 0.", 0},
		{"SLOTSRANGE 0 5 3 6", "ERR Slot range 3-6 overlaps with previous range 0-5.", 0},
		{"SLOTSRANGE 3 6 0 5", "ERR Slot range 0-5 overlaps with previous range 3-6.", 0},
		{"SLOTSRANGE 0 0", "ERR syntax error", 0},
		{"SLOTSRANGE 0 0 NODE", "ERR syntax error", 0},
		{"SLOTSRANGE 0 0 NODE blah", "ERR Invalid node name", 0},
		{"SLOTSRANGE -1 0 NODE " + id, "ERR Invalid or out of range slot", 0},
	}
	for _, tc := range tests {
		reqs, err := ParseMigrateSlots(strings.Fields(tc.args))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want || len(reqs) != tc.n {
			t.Errorf("%q: %d requests, err %q; want %d, %q", tc.args, len(reqs), got, tc.n, tc.want)
		}
	}
}

func TestHardStateRoundTrip(t *testing.T) {
	for _, h := range []HardState{
		{Name: "a", Op: OpExport, Peer: dstID, Slots: rng(0, 9), Epoch: 7},
		{Name: strings.Repeat("f", 40), Op: OpExport, Peer: dstID, Slots: Slots{{Start: 0, End: 0}, {Start: 16383, End: 16383}}, Epoch: 1 << 60, Granted: true},
		{Name: "b", Op: OpImport, Peer: srcID, Slots: rng(5, 5), Epoch: 3},
	} {
		b, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		var g HardState
		if err := g.UnmarshalBinary(b); err != nil {
			t.Fatalf("%+v: %v", h, err)
		}
		if g.Name != h.Name || g.Op != h.Op || g.Peer != h.Peer || g.Epoch != h.Epoch || g.Granted != h.Granted || !slices.Equal(g.Slots, h.Slots) {
			t.Fatalf("round trip %+v -> %+v", h, g)
		}
		for i := range b {
			if err := g.UnmarshalBinary(b[:i]); err == nil {
				t.Fatalf("a %d-byte prefix of %d decoded", i, len(b))
			}
		}
	}
	bad := HardState{Name: "x", Op: OpImport, Peer: srcID, Slots: rng(0, 0), Granted: true}
	b, _ := bad.AppendBinary(nil)
	if (&HardState{}).UnmarshalBinary(b) == nil {
		t.Fatal("a granted import decoded")
	}
}
