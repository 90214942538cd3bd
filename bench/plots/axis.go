package plots

import (
	"math"
	"strconv"
)

// axis is one axis's range, widened to whole ticks.
type axis struct{ lo, hi, step float64 }

// axisOf spans every value that pick takes from c's series, on ticks of 1,
// 2 or 5 times a power of ten, five to ten to the axis.
func axisOf(c Chart, pick func(Series) []float64) axis {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, v := range pick(s) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if lo > hi { // no points at all
		lo, hi = 0, 1
	}
	if lo == hi { // a flat line still needs a span
		d := max(math.Abs(lo)/2, 1)
		lo, hi = lo-d, hi+d
	}
	step := niceStep((hi - lo) / 8)
	return axis{lo: math.Floor(lo/step) * step, hi: math.Ceil(hi/step) * step, step: step}
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch r := raw / mag; {
	case r <= 1:
		return mag
	case r <= 2:
		return 2 * mag
	case r <= 5:
		return 5 * mag
	default:
		return 10 * mag
	}
}

// ticks are the axis's whole steps from lo to hi.
func (a axis) ticks() []float64 {
	n := int(math.Round((a.hi - a.lo) / a.step))
	out := make([]float64, 0, n+1)
	for i := 0; i <= n; i++ {
		out = append(out, a.lo+float64(i)*a.step)
	}
	return out
}

// label prints a tick with as many decimals as the step needs.
func (a axis) label(v float64) string {
	decimals := max(0, int(-math.Floor(math.Log10(a.step))))
	if math.Abs(v) < a.step/2 {
		v = 0 // no "-0" from float error at the origin
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}
