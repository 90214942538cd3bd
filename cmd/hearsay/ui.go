package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"
	lgtable "github.com/charmbracelet/lipgloss/table"
	"github.com/muesli/termenv"
	"golang.org/x/term"
)

// outMode is how human output is drawn.
type outMode int

const (
	// modePlain is for a pipe or a file: plain lines, columns aligned with
	// spaces, no escape codes, no progress bar.
	modePlain outMode = iota
	// modeTTY is a terminal with NO_COLOR set (or TERM=dumb): bordered
	// tables and progress bars, but no colour.
	modeTTY
	// modeColor is a terminal: bordered tables, progress bars and colour.
	modeColor
)

func (m outMode) String() string {
	return [...]string{"plain", "tty", "color"}[m]
}

// chooseMode picks the output mode from whether stdout is a terminal and
// the environment: NO_COLOR (https://no-color.org: any non-empty value)
// and TERM=dumb turn colour off, not the terminal layout.
func chooseMode(isTTY bool, getenv func(string) string) outMode {
	switch {
	case !isTTY:
		return modePlain
	case getenv("NO_COLOR") != "" || getenv("TERM") == "dumb":
		return modeTTY
	}
	return modeColor
}

// detectMode is chooseMode for f and the process environment.
func detectMode(f *os.File) outMode {
	return chooseMode(term.IsTerminal(int(f.Fd())), os.Getenv)
}

// style names how a piece of text is drawn on a colour terminal; "" is
// unstyled. Plain and NO_COLOR output ignore it.
type style string

const (
	bold   style = "bold"
	dim    style = "dim"
	red    style = "red"
	green  style = "green"
	yellow style = "yellow"
)

// printer writes human output in one of the output modes.
type printer struct {
	w    io.Writer
	mode outMode
	lg   *lipgloss.Renderer // nil in modePlain
	bar  *bar               // the progress bar being drawn, if any
}

// newPrinter returns a printer for w in mode. The lipgloss renderer gets
// its colour profile from mode, not from probing w, so tests can ask for
// any mode on a buffer.
func newPrinter(w io.Writer, mode outMode) *printer {
	p := &printer{w: w, mode: mode}
	if mode != modePlain {
		p.lg = lipgloss.NewRenderer(w)
		if mode == modeColor {
			p.lg.SetColorProfile(termenv.ANSI)
		} else {
			p.lg.SetColorProfile(termenv.Ascii)
		}
	}
	return p
}

// style returns the lipgloss style for s.
func (p *printer) style(s style) lipgloss.Style {
	st := p.lg.NewStyle()
	switch s {
	case bold:
		st = st.Bold(true)
	case dim:
		st = st.Faint(true)
	case red:
		st = st.Foreground(lipgloss.Color("1")).Bold(true)
	case green:
		st = st.Foreground(lipgloss.Color("2"))
	case yellow:
		st = st.Foreground(lipgloss.Color("3")).Bold(true)
	}
	return st
}

func (p *printer) paint(s style, text string) string {
	if p.lg == nil || s == "" || text == "" {
		return text
	}
	return p.style(s).Render(text)
}

// line ends any progress bar, then prints text as one line.
func (p *printer) line(text string) {
	p.endBar()
	fmt.Fprintln(p.w, text)
}

func (p *printer) headf(format string, args ...any) {
	p.line(p.paint(bold, ">>> "+fmt.Sprintf(format, args...)))
}
func (p *printer) step(s string) { p.line(p.paint(dim, "    "+s)) }
func (p *printer) okf(format string, args ...any) {
	p.line(p.paint(green, "[OK] ") + fmt.Sprintf(format, args...))
}
func (p *printer) warnf(format string, args ...any) {
	p.line(p.paint(yellow, "[WARNING] ") + fmt.Sprintf(format, args...))
}
func (p *printer) errorf(format string, args ...any) {
	p.line(p.paint(red, "[ERR] ") + fmt.Sprintf(format, args...))
}

// cell is table text and its style.
type cell struct {
	text  string
	color style
}

// table collects a header and rows, then prints them in the printer's
// mode: a lipgloss table on a terminal, space-aligned columns otherwise.
type table struct {
	rows [][]cell
}

func (t *table) header(names ...string) {
	r := make([]cell, len(names))
	for i, n := range names {
		r[i] = cell{n, bold}
	}
	t.rows = append(t.rows, r)
}

func (t *table) row(cells ...cell) { t.rows = append(t.rows, cells) }

// write prints the table; the columns in right are right-aligned.
func (t *table) write(p *printer, right ...int) {
	alignRight := map[int]bool{}
	for _, i := range right {
		alignRight[i] = true
	}
	p.endBar()
	if p.lg == nil {
		t.writePlain(p, alignRight)
		return
	}
	if len(t.rows) == 0 {
		return
	}
	data := make([][]string, len(t.rows)-1)
	for i, r := range t.rows[1:] {
		for _, c := range r {
			data[i] = append(data[i], c.text)
		}
	}
	head := make([]string, len(t.rows[0]))
	for i, c := range t.rows[0] {
		head[i] = c.text
	}
	lt := lgtable.New().Border(lipgloss.RoundedBorder()).
		BorderStyle(p.style(dim)).
		Headers(head...).Rows(data...).
		StyleFunc(func(row, col int) lipgloss.Style {
			var st lipgloss.Style
			if row == lgtable.HeaderRow {
				st = p.style(bold)
			} else if row >= 0 && row+1 < len(t.rows) && col < len(t.rows[row+1]) {
				st = p.style(t.rows[row+1][col].color)
			} else {
				st = p.style("")
			}
			st = st.Padding(0, 1)
			if alignRight[col] && row != lgtable.HeaderRow {
				st = st.Align(lipgloss.Right)
			}
			return st
		})
	fmt.Fprintln(p.w, lt.Render())
}

// writePlain prints the table with two spaces between columns and no
// escape codes: the output for pipes, files and scripts.
func (t *table) writePlain(p *printer, alignRight map[int]bool) {
	var width []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c.text))
		}
	}
	var b strings.Builder
	for ri, r := range t.rows {
		b.Reset()
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c.text))
			last := i == len(r)-1
			switch {
			case alignRight[i] && ri > 0:
				b.WriteString(pad + c.text)
			case last:
				b.WriteString(c.text)
			default:
				b.WriteString(c.text + pad)
			}
			if !last {
				b.WriteString("  ")
			}
		}
		fmt.Fprintln(p.w, strings.TrimRight(b.String(), " "))
	}
}
