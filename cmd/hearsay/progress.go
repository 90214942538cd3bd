package main

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
)

// bar is a progress bar for a long operation, drawn only on a terminal.
// cluster create draws one for each of its waits; reshard and rebalance
// are meant to use the same three calls: startBar, bar.set, endBar.
type bar struct {
	what string
	pb   *progressbar.ProgressBar
}

// startBar ends any bar being drawn and starts one named what, of total
// steps. In modePlain it draws nothing and returns nil (the step lines
// already say what is being waited for); a nil *bar ignores set.
func (p *printer) startBar(what string, total int) *bar { return p.newBar(what, total, false) }

// startMoveBar starts the bar of a slot move, which also shows the time
// left, predicted from the rate so far.
func (p *printer) startMoveBar(total int) *bar { return p.newBar("moving", total, true) }

func (p *printer) newBar(what string, total int, eta bool) *bar {
	p.endBar()
	if p.mode == modePlain {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription("    " + what),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(eta),
		progressbar.OptionThrottle(50 * time.Millisecond),
	}
	if p.mode == modeColor {
		opts = append(opts, progressbar.OptionEnableColorCodes(true),
			progressbar.OptionSetTheme(progressbar.Theme{
				Saucer: "[green]=[reset]", SaucerHead: "[green]>[reset]", SaucerPadding: " ",
				BarStart: "[", BarEnd: "]",
			}))
	} else {
		opts = append(opts, progressbar.OptionSetTheme(progressbar.ThemeASCII))
	}
	b := &bar{what: what, pb: progressbar.NewOptions(total, opts...)}
	_ = b.pb.RenderBlank()
	p.bar = b
	return b
}

// set moves the bar to done of total steps; total may change between
// calls (a node joins the count late).
func (b *bar) set(done, total int) {
	if b == nil {
		return
	}
	if total != b.pb.GetMax() {
		b.pb.ChangeMax(total)
	}
	_ = b.pb.Set(done)
}

// count is admin.Tool's Count callback: it moves the bar for what,
// starting it first when what is a new wait.
func (p *printer) count(what string, done, total int) {
	if p.mode == modePlain {
		return
	}
	if p.bar == nil || p.bar.what != what {
		p.startBar(what, total)
	}
	p.bar.set(done, total)
}

// endBar ends the bar being drawn, if any: it stays on screen, full when
// the wait was met and where it stopped when not, and the next output
// starts on a new line.
func (p *printer) endBar() {
	if p.bar == nil {
		return
	}
	if !p.bar.pb.IsFinished() {
		_ = p.bar.pb.Exit()
	}
	p.bar = nil
	fmt.Fprintln(p.w)
}
