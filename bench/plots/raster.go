package plots

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// rasterCanvas paints the chart into an RGBA image, anti-aliased, for PNG.
type rasterCanvas struct {
	img *image.RGBA
	err error // the first text that could not be drawn
}

func newRaster(w, h int) *rasterCanvas {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	return &rasterCanvas{img: img}
}

// dashOn and dashOff are the dash pattern's lengths in pixels.
const dashOn, dashOff = 8.0, 4.0

func (r *rasterCanvas) polyline(pts []point, c color.RGBA, width float64, dash bool) {
	if dash {
		for _, run := range dashes(pts, dashOn, dashOff) {
			r.stroke(run, c, width)
		}
		return
	}
	r.stroke(pts, c, width)
}

// stroke fills each segment as a quad and each inner vertex as an octagon
// (the round join), all in one coverage pass over the line's bounding box.
// Every shape winds the same way, so overlaps add up instead of cancelling.
func (r *rasterCanvas) stroke(pts []point, c color.RGBA, width float64) {
	if len(pts) < 2 {
		return
	}
	hw := width / 2
	box := image.Rectangle{}
	for i, p := range pts {
		pr := image.Rect(int(math.Floor(p.x-hw-1)), int(math.Floor(p.y-hw-1)), int(math.Ceil(p.x+hw+1)), int(math.Ceil(p.y+hw+1)))
		if i == 0 {
			box = pr
		} else {
			box = box.Union(pr)
		}
	}
	box = box.Intersect(r.img.Bounds())
	if box.Empty() {
		return
	}
	z := vector.NewRasterizer(box.Dx(), box.Dy())
	ox, oy := float64(box.Min.X), float64(box.Min.Y)
	move := func(x, y float64) { z.MoveTo(float32(x-ox), float32(y-oy)) }
	line := func(x, y float64) { z.LineTo(float32(x-ox), float32(y-oy)) }
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		dx, dy := b.x-a.x, b.y-a.y
		l := math.Hypot(dx, dy)
		if l == 0 {
			continue
		}
		nx, ny := -dy/l*hw, dx/l*hw
		move(a.x+nx, a.y+ny)
		line(b.x+nx, b.y+ny)
		line(b.x-nx, b.y-ny)
		line(a.x-nx, a.y-ny)
		z.ClosePath()
	}
	for _, p := range pts[1 : len(pts)-1] {
		for k := 0; k < 8; k++ {
			t := -float64(k) * math.Pi / 4 // the quads' winding, or the overlap cancels
			if k == 0 {
				move(p.x+hw*math.Cos(t), p.y+hw*math.Sin(t))
			} else {
				line(p.x+hw*math.Cos(t), p.y+hw*math.Sin(t))
			}
		}
		z.ClosePath()
	}
	z.Draw(r.img, box, image.NewUniform(c), image.Point{})
}

// dashes cuts pts into the runs that a dash pattern of on and off pixels
// draws.
func dashes(pts []point, on, off float64) [][]point {
	var out [][]point
	var run []point
	drawing, left := true, on
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		l := math.Hypot(b.x-a.x, b.y-a.y)
		pos := 0.0
		for l-pos > left {
			pos += left
			q := point{a.x + (b.x-a.x)*pos/l, a.y + (b.y-a.y)*pos/l}
			if drawing {
				if len(run) == 0 {
					run = append(run, a)
				}
				out = append(out, append(run, q))
				run = nil
			} else {
				run = []point{q}
			}
			drawing = !drawing
			left = on
			if !drawing {
				left = off
			}
		}
		left -= l - pos
		if drawing {
			if len(run) == 0 {
				run = append(run, a)
			}
			run = append(run, b)
		}
	}
	if drawing && len(run) > 1 {
		out = append(out, run)
	}
	return out
}

func (r *rasterCanvas) rect(x, y, w, h float64, fill, stroke color.RGBA) {
	rc := image.Rect(int(math.Round(x)), int(math.Round(y)), int(math.Round(x+w)), int(math.Round(y+h)))
	draw.Draw(r.img, rc, image.NewUniform(stroke), image.Point{}, draw.Src)
	draw.Draw(r.img, rc.Inset(1), image.NewUniform(fill), image.Point{}, draw.Src)
}

func (r *rasterCanvas) text(x, y float64, s string, size, align float64, vertical bool, c color.RGBA) {
	if s == "" {
		return
	}
	f, err := face(size)
	if err != nil {
		if r.err == nil {
			r.err = err
		}
		return
	}
	adv := fixedFloat(font.MeasureString(f, s))
	m := f.Metrics()
	asc, desc := int(math.Ceil(fixedFloat(m.Ascent))), int(math.Ceil(fixedFloat(m.Descent)))
	// The text is drawn into a mask with its baseline at asc, then the mask
	// is laid (turned, if vertical) onto the image.
	mask := image.NewAlpha(image.Rect(0, 0, int(math.Ceil(adv))+1, asc+desc))
	(&font.Drawer{Dst: mask, Src: image.Opaque, Face: f, Dot: fixed.P(0, asc)}).DrawString(s)
	src := image.NewUniform(c)
	if !vertical {
		at := image.Pt(int(math.Round(x-align*adv)), int(math.Round(y))-asc)
		draw.DrawMask(r.img, mask.Bounds().Add(at), src, image.Point{}, mask, image.Point{}, draw.Over)
		return
	}
	b := mask.Bounds()
	turned := image.NewAlpha(image.Rect(0, 0, b.Dy(), b.Dx()))
	for my := 0; my < b.Dy(); my++ {
		for mx := 0; mx < b.Dx(); mx++ {
			turned.SetAlpha(my, b.Dx()-1-mx, mask.AlphaAt(mx, my))
		}
	}
	// Turned anticlockwise, the baseline runs up the column x and the text
	// starts align*adv below y.
	at := image.Pt(int(math.Round(x))-asc, int(math.Round(y+align*adv))-b.Dx())
	draw.DrawMask(r.img, turned.Bounds().Add(at), src, image.Point{}, turned, image.Point{}, draw.Over)
}

func (r *rasterCanvas) encode(buf *bytes.Buffer) error {
	if r.err != nil {
		return r.err
	}
	return png.Encode(buf, r.img)
}
