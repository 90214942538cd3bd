package main

import (
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

func TestVersionString(t *testing.T) {
	info := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-12-06T01:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	got := versionString(info, true)
	for _, want := range []string{"hearsay devel ", "commit 0123456789abcdef0123456789abcdef01234567+dirty", "(2026-12-06T01:00:00Z)", "go1."} {
		if !strings.Contains(got, want) {
			t.Errorf("versionString = %q, want it to contain %q", got, want)
		}
	}
	if got := versionString(nil, false); !strings.Contains(got, "commit unknown") {
		t.Errorf("without build info: %q", got)
	}
}

// TestVersionFlag runs --version of the binary built with the Makefile's
// kind of -ldflags (testLdflags).
func TestVersionFlag(t *testing.T) {
	out, err := exec.Command(hearsayBinary(t), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "hearsay v9.8.7 commit feedface") {
		t.Fatalf("--version printed %q", out)
	}
}

// initHeapBound is what the binary's package inits may allocate in all.
// Every idle node process keeps that heap, so a dependency that builds
// tables or parses fonts at init (a plotting library's fonts alone were
// about 260 KB) shows here first. Today's total is about 245 KB.
const initHeapBound = 384 << 10

// TestPackageInitIsSmall sums the heap every package init allocates in the
// built binary, as GODEBUG=inittrace=1 reports it.
func TestPackageInitIsSmall(t *testing.T) {
	cmd := exec.Command(hearsayBinary(t), "--version")
	cmd.Env = append(cmd.Environ(), "GODEBUG=inittrace=1")
	var trace strings.Builder
	cmd.Stderr = &trace
	if err := cmd.Run(); err != nil {
		t.Fatalf("--version: %v\n%s", err, trace.String())
	}
	total, inits := 0, 0
	var top []string
	for _, line := range strings.Split(trace.String(), "\n") {
		// init <pkg> @0.5 ms, 0.01 ms clock, 1234 bytes, 5 allocs
		f := strings.Fields(line)
		if len(f) < 10 || f[0] != "init" || f[len(f)-3] != "bytes," {
			continue
		}
		n, err := strconv.Atoi(f[len(f)-4])
		if err != nil {
			t.Fatalf("inittrace line %q: %v", line, err)
		}
		total += n
		inits++
		if n > 16<<10 {
			top = append(top, f[1]+" "+f[len(f)-4])
		}
	}
	if inits == 0 {
		t.Fatalf("GODEBUG=inittrace=1 printed no init lines:\n%s", trace.String())
	}
	if total > initHeapBound {
		t.Fatalf("package inits allocate %d bytes in %d inits, bound %d; the largest: %v", total, inits, initHeapBound, top)
	}
	t.Logf("package inits allocate %d bytes in %d inits", total, inits)
}
