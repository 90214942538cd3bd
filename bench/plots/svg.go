package plots

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image/color"
	"strings"
)

// svgCanvas writes the chart as SVG elements; the viewer renders the text.
type svgCanvas struct {
	w, h int
	body bytes.Buffer
}

func newSVG(w, h int) *svgCanvas { return &svgCanvas{w: w, h: h} }

func hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

func (s *svgCanvas) polyline(pts []point, c color.RGBA, width float64, dash bool) {
	if len(pts) == 0 {
		return
	}
	var p strings.Builder
	for i, q := range pts {
		if i > 0 {
			p.WriteByte(' ')
		}
		fmt.Fprintf(&p, "%.1f,%.1f", q.x, q.y)
	}
	dashes := ""
	if dash {
		dashes = ` stroke-dasharray="8 4"`
	}
	fmt.Fprintf(&s.body, `<polyline fill="none" stroke="%s" stroke-width="%g" stroke-linejoin="round"%s points="%s"/>`+"\n",
		hex(c), width, dashes, p.String())
}

func (s *svgCanvas) rect(x, y, w, h float64, fill, stroke color.RGBA) {
	fmt.Fprintf(&s.body, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="%s"/>`+"\n",
		x, y, w, h, hex(fill), hex(stroke))
}

func (s *svgCanvas) text(x, y float64, str string, size, align float64, vertical bool, c color.RGBA) {
	if str == "" {
		return
	}
	anchor := "start"
	switch {
	case align >= 1:
		anchor = "end"
	case align > 0:
		anchor = "middle"
	}
	turn := ""
	if vertical {
		turn = fmt.Sprintf(` transform="rotate(-90 %.1f %.1f)"`, x, y)
	}
	fmt.Fprintf(&s.body, `<text x="%.1f" y="%.1f" font-size="%g" text-anchor="%s" fill="%s"%s>`, x, y, size, anchor, hex(c), turn)
	xml.EscapeText(&s.body, []byte(str))
	s.body.WriteString("</text>\n")
}

func (s *svgCanvas) encode(buf *bytes.Buffer) error {
	fmt.Fprintf(buf, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Go, 'Liberation Sans', Arial, sans-serif">`+"\n"+
		`<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", s.w, s.h, s.w, s.h, s.w, s.h)
	buf.Write(s.body.Bytes())
	buf.WriteString("</svg>\n")
	return nil
}
