// Command testsummary reads `go test -json` on stdin and prints what a
// person needs from a long test run: one line per package and the output
// of every failed test as they finish, then every skipped test with its
// reason and the counts of passed, failed and skipped tests. It exits 1
// when anything failed or no test ran, and,
// when HEARSAY_CI_STRICT=1, also when any test was skipped: CI installs
// every tool the tests need, so a skip there would only hide a test.
//
// Usage: go test -json ./... | go run ./internal/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type key struct{ pkg, test string }

// summary accumulates a run.
type summary struct {
	out            map[key][]string // output so far, per test (and per package with test "")
	passed, failed int
	skipped        []string // "pkg Test: reason"
	events         int
	bad            bool
}

func newSummary() *summary { return &summary{out: map[key][]string{}} }

// add takes one input line; lines that are not JSON events pass through.
func (s *summary) add(line string, w io.Writer) {
	var e event
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil {
		fmt.Fprintln(w, line)
		return
	}
	s.events++
	k := key{e.Package, e.Test}
	switch e.Action {
	case "output", "build-output":
		s.out[k] = append(s.out[k], e.Output)
	case "pass":
		if e.Test == "" {
			fmt.Fprintf(w, "ok   %s %.1fs\n", e.Package, e.Elapsed)
		} else {
			s.passed++
		}
		delete(s.out, k)
	case "skip":
		if e.Test == "" {
			fmt.Fprintf(w, "ok   %s (no tests)\n", e.Package)
		} else {
			s.skipped = append(s.skipped, e.Package+" "+e.Test+": "+skipReason(s.out[k]))
		}
		delete(s.out, k)
	case "fail", "build-fail":
		s.bad = true
		if e.Test == "" {
			fmt.Fprint(w, strings.Join(s.out[k], ""))
			fmt.Fprintf(w, "FAIL %s %.1fs\n", e.Package, e.Elapsed)
		} else {
			s.failed++
			fmt.Fprintf(w, "=== %s %s\n%s", e.Package, e.Test, strings.Join(s.out[k], ""))
		}
		delete(s.out, k)
	}
}

// skipReason picks the message a test gave t.Skip from its output.
func skipReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		return l
	}
	return "(no reason given)"
}

// report prints the skips and the counts and returns the exit code.
func (s *summary) report(w io.Writer, strict bool) int {
	sort.Strings(s.skipped)
	for _, l := range s.skipped {
		fmt.Fprintln(w, "skipped: "+l)
	}
	fmt.Fprintf(w, "%d tests passed, %d failed, %d skipped\n", s.passed, s.failed, len(s.skipped))
	switch {
	case s.bad:
		return 1
	case s.events == 0:
		fmt.Fprintln(w, "FAIL: no test events read (did go test run with -json?)")
		return 1
	case strict && len(s.skipped) > 0:
		fmt.Fprintln(w, "FAIL: tests were skipped although HEARSAY_CI_STRICT=1 says every tool is installed")
		return 1
	}
	return 0
}

func main() {
	s := newSummary()
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		s.add(sc.Text(), os.Stdout)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	os.Exit(s.report(os.Stdout, os.Getenv("HEARSAY_CI_STRICT") == "1"))
}
