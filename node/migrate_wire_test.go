package node

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/migrate"
	"github.com/hearsay/hearsay/node/resp"
)

// args parses one encoded command back into its arguments after
// "CLUSTER SYNCSLOTS".
func syncArgs(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var p resp.Parser
	args, n, err := p.Parse(b)
	if err != nil || n != len(b) || !isSyncSlots(args) {
		t.Fatalf("not one SYNCSLOTS command: %q (%v)", b, err)
	}
	out := make([][]byte, len(args)-2)
	for i, a := range args[2:] {
		out[i] = append([]byte(nil), a...)
	}
	return out
}

// TestSyncSlotsRoundTrip checks that every message the runtime sends
// decodes to what was encoded.
func TestSyncSlotsRoundTrip(t *testing.T) {
	src := newNodeID()
	slots := migrate.Slots{{Start: 0, End: 99}, {Start: 16383, End: 16383}}
	cases := []struct {
		b    []byte
		want syncMsg
	}{
		{appendSyncJob(nil, "ESTABLISH", src, "job1", 7, slots), syncMsg{Sub: syncEstablish, Name: "job1", Source: src, Epoch: 7, Slots: slots}},
		{appendSyncJob(nil, "ABORT", src, "job1", 7, slots), syncMsg{Sub: syncAbort, Name: "job1", Source: src, Epoch: 7, Slots: slots}},
		{appendSync(nil, "SNAPSHOT-EOF"), syncMsg{Sub: syncSnapshotEOF}},
		{appendSync(nil, "PAUSED", 12345), syncMsg{Sub: syncPaused, Offset: 12345}},
		{appendSync(nil, "ACK", 99), syncMsg{Sub: syncAck, Offset: 99}},
		{appendSync(nil, "FAILOVER-GRANTED", uint64(time.Hour)), syncMsg{Sub: syncGranted, Stamp: time.Hour}},
		{appendSync(nil, "REQUEST-FAILOVER", 5, uint64(time.Minute)), syncMsg{Sub: syncRequest, Offset: 5, Stamp: time.Minute}},
	}
	for _, c := range cases {
		got, err := parseSyncSlots(syncArgs(t, c.b))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v %v, want %+v", c.b, got, err, c.want)
		}
	}
}

// TestSyncSlotsRefused checks that malformed messages get an error.
func TestSyncSlotsRefused(t *testing.T) {
	id := newNodeID().String()
	for _, line := range []string{
		"",
		"nope",
		"ack",
		"ack -1",
		"ack 1 2",
		"paused +5",
		"snapshot-eof extra",
		"failover-granted 99999999999999999999",
		"request-failover 1",
		"establish source " + id + " name n epoch 1",
		"establish source " + id + " name n epoch 1 slotsrange",
		"establish source " + id + " name n epoch 1 slotsrange 5",
		"establish source " + id + " name n epoch 1 slotsrange 5 1",
		"establish source " + id + " name n epoch 1 slotsrange 0 16384",
		"establish source bad name n epoch 1 slotsrange 0 1",
		"establish source " + id + " source " + id + " name n epoch 1 slotsrange 0 1",
		"establish name n epoch 1 slotsrange 0 1",
		"establish source " + id + " name n epoch x slotsrange 0 1",
		"abort source " + id + " name n slotsrange 0 1",
	} {
		var args [][]byte
		for _, f := range strings.Fields(line) {
			args = append(args, []byte(f))
		}
		if m, err := parseSyncSlots(args); err == nil {
			t.Errorf("%q decoded as %+v", line, m)
		}
	}
}

// FuzzSyncSlots feeds arbitrary argument lists to the SYNCSLOTS decoder:
// it must answer an error or a message, never panic, and a decoded job
// message must encode and decode to itself.
func FuzzSyncSlots(f *testing.F) {
	src := newNodeID()
	for _, b := range [][]byte{
		appendSyncJob(nil, "ESTABLISH", src, "job1", 7, migrate.Slots{{Start: 0, End: 99}}),
		appendSyncJob(nil, "ABORT", src, "j", 0, migrate.Slots{{Start: 5, End: 5}, {Start: 9, End: 10}}),
		appendSync(nil, "REQUEST-FAILOVER", 5, 6),
		appendSync(nil, "ACK", 1),
	} {
		f.Add(bytes.Join(syncArgs(f, b), []byte{0}))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		args := bytes.Split(in, []byte{0})
		m, err := parseSyncSlots(args)
		if err != nil {
			return
		}
		var b []byte
		switch m.Sub {
		case syncEstablish:
			b = appendSyncJob(nil, "ESTABLISH", m.Source, m.Name, m.Epoch, m.Slots)
		case syncAbort:
			b = appendSyncJob(nil, "ABORT", m.Source, m.Name, m.Epoch, m.Slots)
		default:
			return
		}
		again, err := parseSyncSlots(syncArgs(t, b))
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("%+v re-decoded as %+v (%v)", m, again, err)
		}
	})
}

func testRecords() []migrate.HardState {
	return []migrate.HardState{
		{Name: "a", Op: migrate.OpExport, Peer: newNodeID(), Slots: migrate.Slots{{Start: 0, End: 999}}, Epoch: 4, Granted: true},
		{Name: "b", Op: migrate.OpImport, Peer: newNodeID(), Slots: migrate.Slots{{Start: 5, End: 5}, {Start: 7, End: 9}}, Epoch: 1},
	}
}

// TestMigrationsFile checks the record file: a round trip, a missing
// file, and that any change to a written file is refused, not half read.
func TestMigrationsFile(t *testing.T) {
	recs := testRecords()
	b, err := encodeMigrations(recs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMigrations(b)
	if err != nil || !reflect.DeepEqual(got, recs) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	dir := t.TempDir()
	if got, err := loadMigrations(dir); err != nil || got != nil {
		t.Fatalf("no file: %v %v", got, err)
	}
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x20
		if _, err := decodeMigrations(bad); err == nil {
			t.Fatalf("byte %d flipped: decoded", i)
		}
	}
	for i := range len(b) {
		if _, err := decodeMigrations(b[:i]); err == nil {
			t.Fatalf("cut at %d: decoded", i)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, MigrationsFile), b[:len(b)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadMigrations(dir); err == nil || !strings.Contains(err.Error(), MigrationsFile) {
		t.Fatalf("a bad file: %v, want an error naming it", err)
	}
	empty, err := encodeMigrations(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeMigrations(empty); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
}

// FuzzDecodeMigrations feeds arbitrary bytes to the record file decoder:
// an error or records, never a panic, and what decodes encodes to the
// same bytes.
func FuzzDecodeMigrations(f *testing.F) {
	b, err := encodeMigrations(testRecords())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(migrationsMagic)
	f.Fuzz(func(t *testing.T, in []byte) {
		recs, err := decodeMigrations(in)
		if err != nil {
			return
		}
		out, err := encodeMigrations(recs)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("decoded %+v re-encodes differently (%v)", recs, err)
		}
	})
}

// TestStreamFilter pins what an export forwards from the stream.
func TestStreamFilter(t *testing.T) {
	for _, c := range []struct {
		args []string
		want streamKind
	}{
		{[]string{"SET", "k", "v"}, streamKey},
		{[]string{"DEL", "k"}, streamKey},
		{[]string{"PEXPIREAT", "k", "5"}, streamKey},
		{[]string{"PING"}, streamSkip},
		{[]string{"REPLCONF", "GETACK", "*"}, streamSkip},
		{[]string{"SELECT", "0"}, streamSkip},
		{[]string{"FLUSHALL"}, streamFlush},
		{[]string{"flushdb", "async"}, streamFlush},
	} {
		var args [][]byte
		for _, a := range c.args {
			args = append(args, []byte(a))
		}
		if got := classifyStream(args); got != c.want {
			t.Errorf("%v: %v, want %v", c.args, got, c.want)
		}
	}
	bits := slotSetOf(migrate.Slots{{Start: 3, End: 5}, {Start: 16383, End: 16383}})
	for s := range uint16(wire.NumSlots) {
		if want := s >= 3 && s <= 5 || s == 16383; bits.Has(s) != want {
			t.Fatalf("slot %d: %v", s, bits.Has(s))
		}
	}
}
