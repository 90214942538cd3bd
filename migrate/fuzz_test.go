package migrate

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzHardState: any input either fails to decode or decodes to a record
// that encodes back to the same bytes, so a restart acts only on a record
// it read whole.
func FuzzHardState(f *testing.F) {
	for _, h := range []HardState{
		{Name: "a", Op: OpExport, Peer: dstID, Slots: rng(0, 9), Epoch: 7, Granted: true},
		{Name: "b", Op: OpImport, Peer: srcID, Slots: Slots{{Start: 0, End: 0}, {Start: 16383, End: 16383}}, Epoch: 3},
	} {
		b, _ := h.AppendBinary(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h HardState
		if h.UnmarshalBinary(b) != nil {
			return
		}
		out, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", h, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, out)
		}
	})
}

// FuzzParseMigrateSlots: the parser never panics, and what it accepts
// is a list of valid, non-overlapping ranges per group.
func FuzzParseMigrateSlots(f *testing.F) {
	id := strings.Repeat("ab", 20)
	f.Add("SLOTSRANGE 0 1 NODE " + id)
	f.Add("SLOTSRANGE 0 5 3 6 NODE " + id + " SLOTSRANGE 7 7 NODE " + id)
	f.Add("SLOTSRANGE 16383 0")
	f.Fuzz(func(t *testing.T, s string) {
		reqs, err := ParseMigrateSlots(strings.Fields(s))
		if err != nil {
			return
		}
		if len(reqs) == 0 {
			t.Fatal("accepted with no group")
		}
		for _, r := range reqs {
			if err := checkRanges(r.Slots); err != nil {
				t.Fatalf("accepted %v: %v", r.Slots, err)
			}
		}
	})
}
