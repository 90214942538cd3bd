package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/node/admin"
)

func TestChooseMode(t *testing.T) {
	for _, tc := range []struct {
		tty      bool
		noColor  string
		termName string
		want     outMode
	}{
		{false, "", "xterm", modePlain},
		{false, "1", "xterm", modePlain},
		{true, "", "xterm-256color", modeColor},
		{true, "1", "xterm", modeTTY},
		{true, "", "dumb", modeTTY},
	} {
		env := map[string]string{"NO_COLOR": tc.noColor, "TERM": tc.termName}
		if got := chooseMode(tc.tty, func(k string) string { return env[k] }); got != tc.want {
			t.Errorf("tty=%v NO_COLOR=%q TERM=%q: %v, want %v", tc.tty, tc.noColor, tc.termName, got, tc.want)
		}
	}
}

// TestDetectModePty checks detectMode on a real pseudo-terminal and on a
// pipe, so the terminal test itself (not only the choice) is covered.
func TestDetectModePty(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		testenv.Skipf(t, "no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	t.Setenv("TERM", "xterm")
	t.Setenv("NO_COLOR", "")
	if m := detectMode(tty); m != modeColor {
		t.Errorf("pty: %v, want color", m)
	}
	t.Setenv("NO_COLOR", "1")
	if m := detectMode(tty); m != modeTTY {
		t.Errorf("pty with NO_COLOR: %v, want tty", m)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	t.Setenv("NO_COLOR", "")
	if m := detectMode(w); m != modePlain {
		t.Errorf("pipe: %v, want plain", m)
	}
}

func sampleTable(p *printer) {
	var tb table
	tb.header("A", "COUNT", "STATUS")
	tb.row(cell{"long-value", red}, cell{"7", ""}, cell{"ok", green})
	tb.row(cell{"x", ""}, cell{"12345", ""}, cell{"fail", red})
	tb.write(p, 1)
	p.okf("done")
}

func TestTableModes(t *testing.T) {
	render := func(m outMode) string {
		var b bytes.Buffer
		sampleTable(newPrinter(&b, m))
		return b.String()
	}

	// Plain: the exact lines scripts and the other tests read.
	want := "A           COUNT  STATUS\n" +
		"long-value      7  ok\n" +
		"x           12345  fail\n" +
		"[OK] done\n"
	if got := render(modePlain); got != want {
		t.Errorf("plain:\n%s\nwant\n%s", got, want)
	}

	// NO_COLOR on a terminal: lipgloss's bordered table, no escape codes.
	got := render(modeTTY)
	if strings.Contains(got, "\x1b") {
		t.Errorf("NO_COLOR output has escape codes: %q", got)
	}
	for _, s := range []string{"╭", "│ long-value │", "│ 12345 │", "[OK] done"} {
		if !strings.Contains(got, s) {
			t.Errorf("NO_COLOR output lacks %q:\n%s", s, got)
		}
	}

	// Colour: the same table with SGR codes (red bold for the failure).
	got = render(modeColor)
	if !strings.Contains(got, "\x1b[") || !strings.Contains(got, "╭") {
		t.Errorf("colour output has no colour or no border: %q", got)
	}
	if !strings.Contains(got, "fail") || !strings.Contains(got, "31") {
		t.Errorf("colour output does not paint the failure red: %q", got)
	}
}

func TestProgressBarOnlyOnTerminal(t *testing.T) {
	for _, m := range []outMode{modePlain, modeTTY, modeColor} {
		var b bytes.Buffer
		p := newPrinter(&b, m)
		p.step("waiting for the cluster to agree")
		p.count("the nodes to agree", 2, 6)
		p.count("the nodes to agree", 6, 6)
		p.okf("agreed")
		got := stripANSI(b.String())
		if m == modePlain {
			if want := "    waiting for the cluster to agree\n[OK] agreed\n"; got != want {
				t.Errorf("plain: %q, want %q", got, want)
			}
			continue
		}
		if !strings.Contains(got, "the nodes to agree") || !strings.Contains(got, "6/6") {
			t.Errorf("%v: no finished bar in %q", m, got)
		}
		if !strings.HasSuffix(got, "[OK] agreed\n") || strings.Contains(got, "6/6[OK]") {
			t.Errorf("%v: the line after the bar does not start on its own line: %q", m, got)
		}
		if m == modeTTY && strings.Contains(b.String(), "\x1b[3") {
			t.Errorf("NO_COLOR bar has colour codes: %q", got)
		}
	}

	// A wait that gives up leaves the bar where it stopped.
	var b bytes.Buffer
	p := newPrinter(&b, modeTTY)
	p.startBar("resharding", 10).set(3, 10)
	p.errorf("gave up")
	if got := b.String(); !strings.Contains(got, "resharding") || !strings.HasSuffix(got, "\n[ERR] gave up\n") {
		t.Errorf("unfinished bar: %q", got)
	}
	var nilBar *bar
	nilBar.set(1, 2) // plain mode's bar: a no-op
}

// A slot move draws one bar over the keys with the slots and the rate on
// a terminal, and a line at most once a second otherwise.
func TestMoveProgress(t *testing.T) {
	steps := []admin.MoveProgress{
		{Slots: 10, Keys: 1000, KeysDone: 0, Elapsed: 100 * time.Millisecond},
		{Slots: 10, SlotsDone: 4, Keys: 1000, KeysDone: 400, Elapsed: time.Second},
		{Slots: 10, SlotsDone: 10, Keys: 1000, KeysDone: 1012, Elapsed: 2 * time.Second},
	}
	var b bytes.Buffer
	p := newPrinter(&b, modeTTY)
	m := newMoveProgress(p)
	for _, s := range steps {
		m.update(s)
	}
	m.end()
	p.okf("moved")
	got := stripANSI(b.String())
	if !strings.Contains(got, "slots 10/10") || !strings.Contains(got, "1000/1000") || !strings.HasSuffix(got, "\n[OK] moved\n") {
		t.Errorf("terminal: %q", got)
	}
	b.Reset()
	p = newPrinter(&b, modePlain)
	m = newMoveProgress(p)
	for _, s := range steps {
		m.update(s) // within one second: only the first prints
	}
	if got := b.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "moved 0/1000 keys, slots 0/10") || !strings.Contains(got, "ETA unknown") {
		t.Errorf("plain: %q", got)
	}
	m.lastLine = time.Time{}
	m.update(steps[1])
	if got := b.String(); !strings.Contains(got, "moved 400/1000 keys, slots 4/10, 400 keys/s, ETA 2s") {
		t.Errorf("plain with a rate: %q", got)
	}
}

// stripANSI drops SGR escape sequences (ESC [ ... m).
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
