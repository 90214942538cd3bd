package plots

import (
	"encoding/xml"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNiceStep(t *testing.T) {
	for _, c := range []struct{ raw, want float64 }{
		{0.17, 0.2}, {0.2, 0.2}, {0.21, 0.5}, {3, 5}, {7, 10}, {10, 10}, {1200, 2000}, {0.001, 0.001},
	} {
		if got := niceStep(c.raw); math.Abs(got-c.want) > c.want*1e-9 {
			t.Errorf("niceStep(%v) = %v, want %v", c.raw, got, c.want)
		}
	}
}

func TestAxisSpansDataOnWholeTicks(t *testing.T) {
	c := Chart{Series: []Series{{X: []float64{3, 17}, Y: []float64{-0.3, 0.91}}}}
	x := axisOf(c, func(s Series) []float64 { return s.X })
	if x.lo != 2 || x.hi != 18 || x.step != 2 {
		t.Fatalf("x axis %+v for 3..17, want 2..18 on steps of 2", x)
	}
	y := axisOf(c, func(s Series) []float64 { return s.Y })
	var labels []string
	for _, v := range y.ticks() {
		labels = append(labels, y.label(v))
	}
	if got := strings.Join(labels, " "); got != "-0.4 -0.2 0.0 0.2 0.4 0.6 0.8 1.0" {
		t.Fatalf("y axis %+v for -0.3..0.91 has ticks %q, want -0.4 to 1.0 on steps of 0.2", y, got)
	}
	flat := axisOf(Chart{Series: []Series{{X: []float64{1, 2}, Y: []float64{5, 5}}}}, func(s Series) []float64 { return s.Y })
	if !(flat.lo < 5 && flat.hi > 5) {
		t.Errorf("a flat line at 5 got the axis %+v", flat)
	}
	empty := axisOf(Chart{}, func(s Series) []float64 { return s.Y })
	if empty.lo != 0 || empty.hi != 1 {
		t.Errorf("no points got the axis %+v, want 0..1", empty)
	}
}

// TestDashesKeepThePattern checks every run is a dash long (the last may be
// cut short) and the gaps between runs are the off length.
func TestDashesKeepThePattern(t *testing.T) {
	pts := []point{{0, 0}, {30, 0}, {30, 25}}
	runs := dashes(pts, 8, 4)
	length := func(r []point) float64 {
		l := 0.0
		for i := 1; i < len(r); i++ {
			l += math.Hypot(r[i].x-r[i-1].x, r[i].y-r[i-1].y)
		}
		return l
	}
	if len(runs) != 5 { // 55 px: four 12 px periods and a last 7 px dash
		t.Fatalf("%d runs, want 5: %v", len(runs), runs)
	}
	for i, r := range runs {
		want := 8.0
		if i == len(runs)-1 {
			want = 7
		}
		if math.Abs(length(r)-want) > 1e-9 {
			t.Errorf("run %d is %.2f px long, want %v: %v", i, length(r), want, r)
		}
	}
	if got := runs[2]; len(got) != 3 || got[1] != (point{30, 0}) {
		t.Errorf("the dash over the corner is %v, want it to turn at (30,0)", got)
	}
}

func TestRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]Chart{
		"ragged": {Series: []Series{{Name: "a", X: []float64{1, 2}, Y: []float64{1}}}},
		"nan":    {Series: []Series{{Name: "a", X: []float64{1}, Y: []float64{math.NaN()}}}},
		"inf":    {Series: []Series{{Name: "a", X: []float64{math.Inf(1)}, Y: []float64{1}}}},
	} {
		p := filepath.Join(dir, name+".svg")
		if err := Save(c, p); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s: a file was written for refused data", name)
		}
	}
	if err := Save(Chart{}, filepath.Join(dir, "x.pdf")); err == nil {
		t.Error("a .pdf was accepted")
	}
	if err := SaveStack(nil, filepath.Join(dir, "x.svg")); err == nil {
		t.Error("an empty stack was accepted")
	}
}

func TestSVGEscapesAndNamesEverySeries(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.svg")
	c := Chart{Title: "a <b> & c", XLabel: "x", YLabel: "y", Series: []Series{
		{Name: "one & two", X: []float64{0, 1}, Y: []float64{0, 1}},
	}}
	for i := 0; i < 8; i++ { // past the palette: the eighth line is dashed
		c.Series = append(c.Series, Series{Name: "s" + string(rune('a'+i)), X: []float64{0, 1}, Y: []float64{1, 0}})
	}
	if err := SaveStack([]Chart{c, c}, p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName xml.Name `xml:"svg"`
		Height  int      `xml:"height,attr"`
		Texts   []string `xml:"text"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not an SVG document: %v", err)
	}
	if doc.Height != 2*chartH {
		t.Errorf("a stack of two is %d high, want %d", doc.Height, 2*chartH)
	}
	joined := strings.Join(doc.Texts, "\n")
	for _, want := range []string{"a <b> & c", "one & two", "sh"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no text %q in %q", want, joined)
		}
	}
	if !strings.Contains(string(b), "stroke-dasharray") {
		t.Error("the series past the palette is not dashed")
	}
}

// TestPNGDrawsTheLines checks pixels: the line's colour along a series,
// white well away from it.
func TestPNGDrawsTheLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.png")
	c := Chart{Title: "t", XLabel: "x", YLabel: "y", Series: []Series{{Name: "diag", X: []float64{0, 10}, Y: []float64{0, 10}}}}
	if err := Save(c, p); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != chartW || b.Dy() != chartH {
		t.Fatalf("image is %v", b)
	}
	l := layoutOf(c, 0)
	x0, x1, y0, y1 := l.x0, l.x1, l.y0, l.y1
	if l.xs.lo != 0 || l.xs.hi != 10 || l.ys.lo != 0 || l.ys.hi != 10 {
		t.Fatalf("axes %+v %+v, want 0..10 both", l.xs, l.ys)
	}
	// near is whether want is within a pixel of (x, y): anti-aliasing
	// blends the line's edge pixels.
	near := func(x, y float64, want color.RGBA) bool {
		for dx := -1; dx <= 1; dx++ {
			for dy := -1; dy <= 1; dy++ {
				r, g, b, _ := img.At(int(x)+dx, int(y)+dy).RGBA()
				if uint8(r>>8) == want.R && uint8(g>>8) == want.G && uint8(b>>8) == want.B {
					return true
				}
			}
		}
		return false
	}
	// The diagonal goes corner to corner.
	for _, f := range []float64{0.3, 0.5, 0.7} {
		if x, y := x0+f*(x1-x0), y1-f*(y1-y0); !near(x, y, palette[0]) {
			t.Errorf("no line colour at %.0f%% along the diagonal (%.0f, %.0f): %v", f*100, x, y, img.At(int(x), int(y)))
		}
	}
	if x, y := x0+0.3*(x1-x0)+6, y1-0.3*(y1-y0)+6; near(x, y, palette[0]) {
		t.Errorf("(%.0f, %.0f), off the line, has its colour: %v", x, y, img.At(int(x), int(y)))
	}
}
