package main

import (
	"strings"
	"testing"
)

const run = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0.1}
{"Action":"run","Package":"p","Test":"TestB"}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: redis-server not installed\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"pass","Package":"p","Elapsed":1.5}
`

func TestSummarySkips(t *testing.T) {
	for _, strict := range []bool{false, true} {
		s := newSummary()
		var b strings.Builder
		for _, l := range strings.Split(strings.TrimSpace(run), "\n") {
			s.add(l, &b)
		}
		code := s.report(&b, strict)
		out := b.String()
		if !strings.Contains(out, "skipped: p TestB: b_test.go:9: redis-server not installed") ||
			!strings.Contains(out, "1 tests passed, 0 failed, 1 skipped") || !strings.Contains(out, "ok   p 1.5s") {
			t.Fatalf("strict=%v: summary:\n%s", strict, out)
		}
		if want := map[bool]int{false: 0, true: 1}[strict]; code != want {
			t.Fatalf("strict=%v: exit %d, want %d", strict, code, want)
		}
	}
}

func TestSummaryFailure(t *testing.T) {
	s := newSummary()
	var b strings.Builder
	for _, l := range []string{
		`{"Action":"output","Package":"q","Test":"TestC","Output":"    c_test.go:3: boom\n"}`,
		`{"Action":"fail","Package":"q","Test":"TestC","Elapsed":0.2}`,
		`{"Action":"fail","Package":"q","Elapsed":0.3}`,
		`not json: passed through`,
	} {
		s.add(l, &b)
	}
	if code := s.report(&b, false); code != 1 {
		t.Fatalf("exit %d after a failure", code)
	}
	out := b.String()
	for _, want := range []string{"=== q TestC\n    c_test.go:3: boom", "FAIL q 0.3s", "not json: passed through", "0 tests passed, 1 failed, 0 skipped"} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %q in:\n%s", want, out)
		}
	}
}

func TestSummaryNoEvents(t *testing.T) {
	var b strings.Builder
	if code := newSummary().report(&b, false); code != 1 {
		t.Fatalf("exit %d with no input", code)
	}
}
