package plots

import (
	"fmt"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// faces holds the Go Regular font, parsed on the first plot and never at
// package init, with one face per size drawn.
var faces struct {
	mu    sync.Mutex
	font  *opentype.Font
	sizes map[float64]font.Face
}

// face returns Go Regular at size pixels.
func face(size float64) (font.Face, error) {
	faces.mu.Lock()
	defer faces.mu.Unlock()
	if f, ok := faces.sizes[size]; ok {
		return f, nil
	}
	if faces.font == nil {
		f, err := opentype.Parse(goregular.TTF)
		if err != nil {
			return nil, fmt.Errorf("plot: the built-in font: %w", err)
		}
		faces.font, faces.sizes = f, map[float64]font.Face{}
	}
	f, err := opentype.NewFace(faces.font, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, fmt.Errorf("plot: the built-in font at %g px: %w", size, err)
	}
	faces.sizes[size] = f
	return f, nil
}

// textWidth is s's advance at size pixels, in Go Regular. The SVG's viewer
// may pick another sans-serif font; the legend box leaves room for that.
func textWidth(s string, size float64) float64 {
	f, err := face(size)
	if err != nil {
		return 0.6 * size * float64(len(s)) // an average sans-serif advance
	}
	return fixedFloat(font.MeasureString(f, s))
}

func fixedFloat(v fixed.Int26_6) float64 { return float64(v) / 64 }
