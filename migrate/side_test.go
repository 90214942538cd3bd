package migrate

import (
	"testing"
	"time"
)

// importAt returns an import of slots 0-9 from srcID, past the snapshot.
func importAt(t *testing.T, cl *fakeCluster) (*Table, *Import) {
	t.Helper()
	tb := NewTable(Config{NodeTimeout: time.Second})
	if _, err := tb.Establish(0, cl, "j", srcID, rng(0, 9), 1); err != nil {
		t.Fatal(err)
	}
	m := tb.Import("j")
	m.SnapshotEOF(time.Millisecond)
	return tb, m
}

// TestImportEnds: each reason an import must give up drops what it
// received and removes its record, and it never claims afterwards.
func TestImportEnds(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*fakeCluster)
		at     time.Duration
		reason string
	}{
		{"silent source", nil, 3 * time.Second, ReasonAckTimeout},
		{"source FAIL", func(f *fakeCluster) { f.nodes[srcID] = Node{ID: srcID, IsMaster: true, Failed: true} }, 10 * time.Millisecond, ReasonSourceFailed},
		{"slot moved elsewhere", func(f *fakeCluster) { f.slots[4] = binding{thirdI, 9} }, 10 * time.Millisecond, ReasonSourceNotOwner},
		{"this node failed over", func(f *fakeCluster) { f.nodes[dstID] = Node{ID: dstID, Master: nid(7)} }, 10 * time.Millisecond, ReasonFailover},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := threeMasters(dstID)
			_, m := importAt(t, cl)
			m.SourcePaused(2*time.Millisecond, 0)
			if tc.edit != nil {
				tc.edit(cl)
			}
			out := m.Tick(tc.at, cl)
			if k := kinds(out); len(k) != 3 || k[0] != DropImported || k[1] != CloseLink || k[2] != Persist {
				t.Fatalf("intents %v", k)
			}
			if st := m.Status(); st.State != Failed || st.Message != tc.reason {
				t.Fatalf("status %v %q, want failed %q", st.State, st.Message, tc.reason)
			}
			if m.Granted(tc.at, threeMasters(dstID), tc.at) != nil {
				t.Fatal("a dropped import claimed on a late grant")
			}
		})
	}
}

// TestImportRequestsOnlyWhenCaughtUp: the handoff request waits for the
// applied offset to reach the paused one, then repeats until granted.
func TestImportRequestsOnlyWhenCaughtUp(t *testing.T) {
	cl := threeMasters(dstID)
	_, m := importAt(t, cl)
	if has(m.SourcePaused(2*time.Millisecond, 10), RequestHandoff) {
		t.Fatal("requested at applied 0 of 10")
	}
	if has(m.Apply(3*time.Millisecond, 9, 9, 90), RequestHandoff) {
		t.Fatal("requested at applied 9 of 10")
	}
	if !has(m.Apply(4*time.Millisecond, 10, 10, 100), RequestHandoff) {
		t.Fatal("no request at applied 10 of 10")
	}
	if !has(m.Tick(200*time.Millisecond, cl), RequestHandoff) {
		t.Fatal("the request was not repeated")
	}
	if m.Granted(800*time.Millisecond, cl, 200*time.Millisecond) != nil {
		t.Fatal("claimed on a grant answering a request older than the claim window")
	}
	out := m.Granted(201*time.Millisecond, cl, 200*time.Millisecond)
	if k := kinds(out); len(k) != 2 || k[0] != ClaimSlots || k[1] != Persist {
		t.Fatalf("grant: %v", k)
	}
	if m.Granted(202*time.Millisecond, cl, 202*time.Millisecond) != nil {
		t.Fatal("claimed twice")
	}
	if st := m.Status(); st.State != Success || st.Keys != 10 || st.Bytes != 100 {
		t.Fatalf("status %+v", st)
	}
}

// exportAt runs an export of slots 0-9 to dstID up to Paused at offset 5.
func exportAt(t *testing.T, cl *fakeCluster) (*Table, *Export) {
	t.Helper()
	tb := NewTable(Config{NodeTimeout: time.Second, CatchUpBytes: 10})
	if _, err := tb.MigrateSlots(0, cl, []Request{{Name: "j", Target: dstID, Slots: rng(0, 9)}}); err != nil {
		t.Fatal(err)
	}
	e := tb.Export("j")
	e.Established(1)
	e.SnapshotDone(2, 3, 30, 100)
	if st := e.Status(); st.Remaining != 100 || st.Keys != 3 || st.State != WaitingToPause {
		t.Fatalf("status after snapshot %+v", st)
	}
	if has(e.Acked(3, 50), PauseWrites) {
		t.Fatal("paused 50 bytes behind with CatchUpBytes 10")
	}
	if !has(e.Acked(4, 95), PauseWrites) {
		t.Fatal("not paused 5 bytes behind")
	}
	if k := kinds(e.WritesPaused(5, 105)); len(k) != 1 || k[0] != SendPaused {
		t.Fatalf("paused: %v", k)
	}
	return tb, e
}

// TestExportGrantAndCancel: the grant needs the whole stream applied and
// is persisted before it leaves; a cancel after it waits for the target.
func TestExportGrantAndCancel(t *testing.T) {
	cl := threeMasters(srcID)
	tb, e := exportAt(t, cl)
	if e.HandoffRequested(6, 104, 6) != nil {
		t.Fatal("granted at 104 of 105")
	}
	out := e.HandoffRequested(7, 105, 70)
	if k := kinds(out); len(k) != 2 || k[0] != Persist || k[1] != SendGrant || !out[0].State.Granted || out[1].Stamp != 70 {
		t.Fatalf("grant: %v", k)
	}
	out, err := tb.CancelAll(8)
	if err != nil || has(out, ResumeWrites) || !has(out, SendAbort) || e.State() != Granted {
		t.Fatalf("cancel after the grant: %v %v, state %v", kinds(out), err, e.State())
	}
	// The target's CLAIMED answer changes nothing; its ABORTED ends it.
	if e.PeerLost(9) != nil || e.State() != Granted {
		t.Fatal("a lost connection ended a granted export")
	}
	out = e.AbortConfirmed(10, cl)
	if k := kinds(out); len(k) != 3 || k[0] != ResumeWrites || e.State() != Cancelled {
		t.Fatalf("abort confirmed: %v, state %v", k, e.State())
	}
	tb.Reap()
	if st := tb.Status(); len(st) != 1 || st[0].State != Cancelled || st[0].Message != ReasonNotClaimed {
		t.Fatalf("log %+v", st)
	}
}

// TestExportEnds: the reasons an export gives up before the grant resume
// the writes it paused and remove its record.
func TestExportEnds(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*fakeCluster)
		at     time.Duration
		reason string
	}{
		{"silent target", nil, 3 * time.Second, ReasonAckTimeout},
		{"pause too long", nil, 1500 * time.Millisecond, ReasonPauseTimeout},
		{"target FAIL", func(f *fakeCluster) { f.nodes[dstID] = Node{ID: dstID, IsMaster: true, Failed: true} }, 10, ReasonTargetFailed},
		{"slots lost", func(f *fakeCluster) { f.slots[0] = binding{replID, 5} }, 10, ReasonNotOwner},
		{"demoted", func(f *fakeCluster) { f.nodes[srcID] = Node{ID: srcID, Master: replID} }, 10, ReasonDemoted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := threeMasters(srcID)
			_, e := exportAt(t, cl)
			if tc.edit != nil {
				tc.edit(cl)
			}
			out := e.Tick(tc.at, cl)
			if k := kinds(out); len(k) != 3 || k[0] != ResumeWrites || k[1] != CloseLink || k[2] != Persist {
				t.Fatalf("intents %v", k)
			}
			if st := e.Status(); st.State != Failed || st.Message != tc.reason {
				t.Fatalf("status %v %q, want %q", st.State, st.Message, tc.reason)
			}
			if e.HandoffRequested(tc.at, 105, tc.at) != nil {
				t.Fatal("granted after giving up")
			}
		})
	}
}

// TestNextDeadline: ticking only at the deadlines NextDeadline gives does
// everything ticking every millisecond does, for a target gone silent
// after the grant: the abort requests start after the handoff timeout.
func TestNextDeadline(t *testing.T) {
	if _, ok := NewTable(Config{}).NextDeadline(); ok {
		t.Fatal("an empty table has a deadline")
	}
	cl := threeMasters(srcID)
	tb, e := exportAt(t, cl)
	e.HandoffRequested(7, 105, 7)
	var aborts []time.Duration
	now := time.Duration(7)
	for len(aborts) < 3 {
		at, ok := tb.NextDeadline()
		if !ok || at <= now {
			t.Fatalf("deadline %v %v at %v", at, ok, now)
		}
		if got := tb.Tick(at-1, cl); len(got) != 0 {
			t.Fatalf("work before the deadline: %v", kinds(got))
		}
		now = at
		if has(tb.Tick(now, cl), SendAbort) {
			aborts = append(aborts, now)
		}
	}
	cfg := tb.Config()
	if aborts[0] != 7+cfg.HandoffTimeout || aborts[1]-aborts[0] != cfg.AckEvery {
		t.Fatalf("aborts at %v", aborts)
	}
}
