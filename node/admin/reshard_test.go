package admin

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

func nid(b byte) wire.NodeID {
	var id wire.NodeID
	id[0] = b
	return id
}

func TestPlanRebalance(t *testing.T) {
	a, b, c := nid(1), nid(2), nid(3)
	t.Run("even", func(t *testing.T) {
		p, err := PlanRebalance([]Share{{ID: a, Weight: 1, Have: 16384}, {ID: b, Weight: 1}, {ID: c, Weight: 1}}, 2, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		sum := 0
		for _, s := range p.Shares {
			sum += s.Want
			if s.Want < 5461 || s.Want > 5462 {
				t.Errorf("%x wants %d", s.ID[0], s.Want)
			}
		}
		moved := 0
		for _, m := range p.Moves {
			if m.From != a {
				t.Errorf("move from %x", m.From[0])
			}
			moved += m.Slots
		}
		if !p.Needed || sum != 16384 || moved != 16384-p.Shares[0].Want {
			t.Fatalf("needed %v, wants sum to %d, %d moved: %+v", p.Needed, sum, moved, p)
		}
	})
	t.Run("empty masters only when asked", func(t *testing.T) {
		p, err := PlanRebalance([]Share{{ID: a, Weight: 1, Have: 8192}, {ID: b, Weight: 1, Have: 8192}, {ID: c, Weight: 1}}, 2, false, nil)
		if err != nil || p.Needed || len(p.Moves) != 0 {
			t.Fatalf("balanced masters with an empty one left out: %+v %v", p, err)
		}
		p, _ = PlanRebalance([]Share{{ID: a, Weight: 1, Have: 8192}, {ID: b, Weight: 1, Have: 8192}, {ID: c, Weight: 1}}, 2, false, map[wire.NodeID]bool{c: true})
		if !p.Needed || len(p.Moves) != 2 {
			t.Fatalf("an empty master named in --weight takes part: %+v", p)
		}
	})
	t.Run("threshold", func(t *testing.T) {
		// 8292 vs 8092: 1.2% off the 8192 share.
		shares := []Share{{ID: a, Weight: 1, Have: 8292}, {ID: b, Weight: 1, Have: 8092}}
		if p, _ := PlanRebalance(shares, 2, false, nil); p.Needed {
			t.Fatalf("within 2%%: %+v", p)
		}
		p, _ := PlanRebalance(shares, 1, false, nil)
		if !p.Needed || !reflect.DeepEqual(p.Moves, []Move{{From: a, To: b, Slots: 100}}) {
			t.Fatalf("over 1%%: %+v", p)
		}
	})
	t.Run("weights", func(t *testing.T) {
		p, _ := PlanRebalance([]Share{{ID: a, Weight: 3, Have: 8192}, {ID: b, Weight: 1, Have: 8192}}, 0, false, nil)
		if p.Shares[0].Want != 12288 || p.Shares[1].Want != 4096 || !reflect.DeepEqual(p.Moves, []Move{{From: b, To: a, Slots: 4096}}) {
			t.Fatalf("3:1: %+v", p)
		}
		p, _ = PlanRebalance([]Share{{ID: a, Weight: 0, Have: 100}, {ID: b, Weight: 1, Have: 16284}}, 50, false, nil)
		if !p.Needed || !reflect.DeepEqual(p.Moves, []Move{{From: a, To: b, Slots: 100}}) {
			t.Fatalf("weight 0 empties a master whatever the threshold: %+v", p)
		}
	})
	t.Run("errors", func(t *testing.T) {
		if _, err := PlanRebalance([]Share{{ID: a, Have: 10}, {ID: b, Have: 10}}, 2, false, nil); err == nil {
			t.Fatal("all weights 0 accepted")
		}
		if _, err := PlanRebalance([]Share{{ID: a, Weight: -1, Have: 10}, {ID: b, Weight: 1}}, 2, true, nil); err == nil {
			t.Fatal("a negative weight accepted")
		}
	})
}

func TestSplitRanges(t *testing.T) {
	rs := []ring.Range{{Start: 0, End: 9}, {Start: 20, End: 24}}
	got := splitRanges(rs, 3)
	want := [][]ring.Range{{{Start: 0, End: 4}}, {{Start: 5, End: 9}}, {{Start: 20, End: 24}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("split in 3: %v", got)
	}
	if got := splitRanges(rs, 1); !reflect.DeepEqual(got, [][]ring.Range{rs}) {
		t.Fatalf("split in 1: %v", got)
	}
	if got := splitRanges([]ring.Range{{Start: 7, End: 8}}, 5); len(got) != 2 {
		t.Fatalf("more groups than slots: %v", got)
	}
	var set ring.SlotSet
	_ = set.AddRange(ring.Range{Start: 10, End: 12})
	_ = set.AddRange(ring.Range{Start: 100, End: 200})
	if got := firstSlots(&set, 5); !reflect.DeepEqual(got, []ring.Range{{Start: 10, End: 12}, {Start: 100, End: 101}}) {
		t.Fatalf("firstSlots: %v", got)
	}
	if n := slotCount("0-5 9 12-11 x-3"); n != 7 {
		t.Fatalf("slotCount: %d", n)
	}
}

func TestParseMigrations(t *testing.T) {
	resp2 := []any{[]any{"name", "abc", "operation", "EXPORT", "slot_ranges", "0-5", "state", "success", "keys", int64(12), "message", ""}}
	resp3 := []any{map[any]any{"name": "abc", "operation": "EXPORT", "slot_ranges": "0-5", "state": "success", "keys": int64(12), "message": ""}}
	for name, v := range map[string]any{"resp2": resp2, "resp3": resp3} {
		ms, err := parseMigrations(v)
		if err != nil || len(ms) != 1 || ms[0].Name != "abc" || ms[0].Keys != 12 || !ms[0].Done() || ms[0].Slots != "0-5" {
			t.Fatalf("%s: %+v %v", name, ms, err)
		}
	}
	for _, bad := range []any{"OK", []any{"x"}, []any{[]any{"name"}}} {
		if _, err := parseMigrations(bad); err == nil || !strings.Contains(err.Error(), "GETSLOTMIGRATIONS") {
			t.Fatalf("%v: %v", bad, err)
		}
	}
}
