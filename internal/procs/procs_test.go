package procs

import (
	"runtime"
	"testing"
)

func TestGovernor(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	if runtime.NumCPU() < 2 {
		// One CPU: the event loops already have all of it.
		g := New(1)
		g.Busy()()
		if got := runtime.GOMAXPROCS(0); got != 1 {
			t.Fatalf("GOMAXPROCS %d on one CPU, want 1", got)
		}
		return
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	g := New(1)
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("GOMAXPROCS %d after New(1), want 1", got)
	}
	done1 := g.Busy()
	done2 := g.Busy()
	if got := runtime.GOMAXPROCS(0); got != runtime.NumCPU() {
		t.Fatalf("GOMAXPROCS %d while busy, want %d", got, runtime.NumCPU())
	}
	done1()
	done1() // a second call is a no-op
	if got := runtime.GOMAXPROCS(0); got != runtime.NumCPU() {
		t.Fatalf("GOMAXPROCS %d with one job still busy, want %d", got, runtime.NumCPU())
	}
	done2()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("GOMAXPROCS %d after the jobs, want 1", got)
	}
	if n, ok := g.Procs(); n != 1 || !ok {
		t.Fatalf("Procs() = %d, %v", n, ok)
	}
	// More loops than CPUs: capped.
	New(1000)
	if got := runtime.GOMAXPROCS(0); got != runtime.NumCPU() {
		t.Fatalf("GOMAXPROCS %d after New(1000), want the CPU count %d", got, runtime.NumCPU())
	}
}

func TestGovernorLeavesOperatorsChoice(t *testing.T) {
	t.Setenv("GOMAXPROCS", "2")
	before := runtime.GOMAXPROCS(0)
	g := New(1)
	g.Busy()()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("GOMAXPROCS moved from %d to %d although the environment sets it", before, got)
	}
	if _, ok := g.Procs(); ok {
		t.Fatal("Procs says the Governor sets GOMAXPROCS")
	}
	var nilG *Governor
	nilG.Busy()()
}

func TestPlanned(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	for _, c := range []struct{ loops, want int }{{0, 1}, {1, 1}, {1 << 20, runtime.NumCPU()}} {
		if got := Planned(c.loops); got != c.want {
			t.Errorf("Planned(%d) = %d, want %d", c.loops, got, c.want)
		}
	}
	t.Setenv("GOMAXPROCS", "3") // the operator's choice stands: what the runtime took from it
	if got := Planned(1); got != runtime.GOMAXPROCS(0) {
		t.Errorf("Planned(1) with GOMAXPROCS set = %d, want the runtime's %d", got, runtime.GOMAXPROCS(0))
	}
}
