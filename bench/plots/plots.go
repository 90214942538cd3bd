// Package plots draws the simulator's results as line charts: the fraction
// of sites an update has reached per cycle, one line per strategy, or a
// cluster's convergence over virtual time. The output format follows the
// file name: .svg or .png.
//
// It draws its own charts rather than using a plotting library because the
// hearsay binary that runs these plots is also the node binary: a library
// that parses its fonts at package init puts that heap into every idle
// node process. Here the font is parsed only when a plot is drawn.
package plots

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Series is one named line: Y[i] at X[i].
type Series struct {
	Name string
	X, Y []float64
}

// Chart is a titled line chart.
type Chart struct {
	Title, XLabel, YLabel string
	Series                []Series
}

// palette is colour-blind friendly (Okabe and Ito). Series past its end
// reuse it with dashed lines.
var palette = []color.RGBA{
	{0, 114, 178, 255}, {213, 94, 0, 255}, {0, 158, 115, 255},
	{204, 121, 167, 255}, {230, 159, 0, 255}, {86, 180, 233, 255}, {0, 0, 0, 255},
}

// Chart geometry in pixels (SVG user units).
const (
	chartW, chartH = 960, 600
	marginR        = 24
	marginB        = 58
	titleH         = 44
	topNoTitle     = 20
	lineWidth      = 2
	titleSize      = 18
	labelSize      = 14
	tickSize       = 12
	legendSize     = 13
)

var (
	black = color.RGBA{0, 0, 0, 255}
	white = color.RGBA{255, 255, 255, 255}
	grid  = color.RGBA{220, 220, 220, 255}
	frame = color.RGBA{160, 160, 160, 255}
)

// Save writes c to path, as SVG or PNG by its extension.
func Save(c Chart, path string) error { return SaveStack([]Chart{c}, path) }

// SaveStack writes charts one above the other into path, as SVG or PNG by
// its extension.
func SaveStack(charts []Chart, path string) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".svg" && ext != ".png" {
		return fmt.Errorf("plot: %s: the file name must end in .svg or .png", path)
	}
	if len(charts) == 0 {
		return fmt.Errorf("plot: %s: nothing to draw", path)
	}
	for _, c := range charts {
		if err := check(c); err != nil {
			return err
		}
	}
	w, h := chartW, chartH*len(charts)
	var cv canvas
	if ext == ".svg" {
		cv = newSVG(w, h)
	} else {
		cv = newRaster(w, h)
	}
	for i, c := range charts {
		drawChart(cv, c, float64(i*chartH))
	}
	var buf bytes.Buffer
	if err := cv.encode(&buf); err != nil {
		return fmt.Errorf("plot: %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// check refuses data that has no place on an axis.
func check(c Chart) error {
	for _, s := range c.Series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plot: series %q has %d x and %d y values", s.Name, len(s.X), len(s.Y))
		}
		for i := range s.X {
			if !finite(s.X[i]) || !finite(s.Y[i]) {
				return fmt.Errorf("plot: series %q: point %d (%v, %v) is not finite", s.Name, i, s.X[i], s.Y[i])
			}
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// point is a position in pixels, y growing downwards.
type point struct{ x, y float64 }

// canvas is what a chart is drawn onto: the SVG writer or the PNG raster.
type canvas interface {
	// polyline strokes pts with width pixels, dashed when dash is set.
	polyline(pts []point, c color.RGBA, width float64, dash bool)
	// rect fills and outlines a rectangle.
	rect(x, y, w, h float64, fill, stroke color.RGBA)
	// text writes s with its baseline at y. align places x at the start
	// (0), middle (0.5) or end (1) of the text; vertical turns it a quarter
	// anticlockwise about (x, y).
	text(x, y float64, s string, size, align float64, vertical bool, c color.RGBA)
	encode(buf *bytes.Buffer) error
}

// layout is where a chart's plot area and axes fall in its band.
type layout struct {
	x0, x1, y0, y1 float64 // the plot area
	xs, ys         axis
}

// layoutOf places c in the band of the canvas that starts at top. The left
// margin fits the rotated Y label and the widest Y tick label.
func layoutOf(c Chart, top float64) layout {
	l := layout{
		xs: axisOf(c, func(s Series) []float64 { return s.X }),
		ys: axisOf(c, func(s Series) []float64 { return s.Y }),
	}
	wide := 0.0
	for _, t := range l.ys.ticks() {
		wide = max(wide, textWidth(l.ys.label(t), tickSize))
	}
	l.x0, l.x1 = yTicksLeft+wide+6, float64(chartW-marginR)
	l.y0 = top + topNoTitle
	if c.Title != "" {
		l.y0 = top + titleH
	}
	l.y1 = top + chartH - marginB
	return l
}

// yLabelBase is the rotated Y label's baseline; its glyphs rise to the left
// of it. The Y tick labels start at yTicksLeft.
const yLabelBase, yTicksLeft = 8 + labelSize, 8 + labelSize + 12

func (l layout) sx(v float64) float64 { return l.x0 + (v-l.xs.lo)/(l.xs.hi-l.xs.lo)*(l.x1-l.x0) }
func (l layout) sy(v float64) float64 { return l.y1 - (v-l.ys.lo)/(l.ys.hi-l.ys.lo)*(l.y1-l.y0) }

// drawChart draws c in the band of the canvas that starts at top.
func drawChart(cv canvas, c Chart, top float64) {
	l := layoutOf(c, top)
	if c.Title != "" {
		cv.text(chartW/2, top+28, c.Title, titleSize, 0.5, false, black)
	}
	for _, t := range l.xs.ticks() {
		x := l.sx(t)
		cv.polyline([]point{{x, l.y0}, {x, l.y1}}, grid, 1, false)
		cv.text(x, l.y1+18, l.xs.label(t), tickSize, 0.5, false, black)
	}
	for _, t := range l.ys.ticks() {
		y := l.sy(t)
		cv.polyline([]point{{l.x0, y}, {l.x1, y}}, grid, 1, false)
		cv.text(l.x0-6, y+4, l.ys.label(t), tickSize, 1, false, black)
	}
	cv.polyline([]point{{l.x0, l.y0}, {l.x0, l.y1}, {l.x1, l.y1}}, black, 1, false)
	cv.text((l.x0+l.x1)/2, l.y1+44, c.XLabel, labelSize, 0.5, false, black)
	cv.text(yLabelBase, (l.y0+l.y1)/2, c.YLabel, labelSize, 0.5, true, black)

	for i, s := range c.Series {
		pts := make([]point, len(s.X))
		for j := range s.X {
			pts[j] = point{l.sx(s.X[j]), l.sy(s.Y[j])}
		}
		cv.polyline(pts, palette[i%len(palette)], lineWidth, i >= len(palette))
	}
	legend(cv, c.Series, l.x1, l.y1)
}

// legend boxes the series' names in the plot area's lower right corner.
func legend(cv canvas, series []Series, right, bottom float64) {
	if len(series) == 0 {
		return
	}
	const row, sample, pad = 19.0, 28.0, 8.0
	w := 0.0
	for _, s := range series {
		w = max(w, 1.1*textWidth(s.Name, legendSize))
	}
	bw, bh := pad+sample+6+w+pad, pad+row*float64(len(series))+pad/2
	bx, by := right-10-bw, bottom-10-bh
	cv.rect(bx, by, bw, bh, white, frame)
	for i, s := range series {
		base := by + pad + row*float64(i) + 12
		cv.polyline([]point{{bx + pad, base - 4}, {bx + pad + sample, base - 4}}, palette[i%len(palette)], lineWidth, i >= len(palette))
		cv.text(bx+pad+sample+6, base, s.Name, legendSize, 0, false, black)
	}
}
