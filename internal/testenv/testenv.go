// Package testenv holds the one way tests skip for a missing environment
// (not root, a tool not installed, a kernel feature absent).
//
// With HEARSAY_CI_STRICT=1 in the environment (CI sets it, having
// installed everything) such a skip fails the test instead, so a missing
// tool or privilege can never hide a test in CI. Skips that are a choice
// rather than the environment (-short, helper processes) do not use it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// StrictVar is the environment variable that turns environment skips
// into failures.
const StrictVar = "HEARSAY_CI_STRICT"

// Strict reports whether environment skips fail (HEARSAY_CI_STRICT=1).
func Strict() bool { return os.Getenv(StrictVar) == "1" }

// Skipf skips tb because the environment lacks something, or fails it
// in strict mode.
func Skipf(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		tb.Fatalf("%s=1, so this environment skip fails: %s", StrictVar, msg)
	}
	tb.Skip(msg)
}

// RequireRoot skips (or fails, in strict mode) unless the test runs as
// root; why says what root is needed for.
func RequireRoot(tb testing.TB, why string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Skipf(tb, "needs root: %s", why)
	}
}

// RequireBinary skips (or fails) unless every named program is on PATH;
// it returns the path of the first.
func RequireBinary(tb testing.TB, names ...string) string {
	tb.Helper()
	first := ""
	for _, name := range names {
		p, err := exec.LookPath(name)
		if err != nil {
			Skipf(tb, "needs %s on PATH (see .ci/run for the apt packages): %v", name, err)
		}
		if first == "" {
			first = p
		}
	}
	return first
}

// SkipShort skips in -short mode. It never fails: -short is the caller's
// choice, not a missing environment.
func SkipShort(tb testing.TB, what string) {
	tb.Helper()
	if testing.Short() {
		tb.Skipf("skipped with -short: %s", what)
	}
}

// CPUTime is the process's user and system CPU time so far (getrusage),
// for benchmarks that report CPU cost rather than wall time.
func CPUTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
