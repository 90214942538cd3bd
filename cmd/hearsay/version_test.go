package main

import (
	"os/exec"
	"runtime/debug"
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

// TestVersionFlag builds the binary with the Makefile's -ldflags and runs
// --version.
func TestVersionFlag(t *testing.T) {
	bin := t.TempDir() + "/hearsay"
	ld := "-X main.version=v9.8.7 -X main.commit=feedface"
	if out, err := exec.Command("go", "build", "-ldflags", ld, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "hearsay v9.8.7 commit feedface") {
		t.Fatalf("--version printed %q", out)
	}
}
