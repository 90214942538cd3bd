package sim

import (
	"bufio"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// SetMemoryLimit gives the Go runtime a soft memory limit of frac of the
// machine's RAM, unless GOMEMLIMIT already set one, and returns the limit in
// effect (0 if none could be set). A 10,000-node run holds ~15 GB of live
// core tables; with the default GOGC the heap would be allowed to grow to
// twice that before the next collection. The limit makes the collector run
// earlier instead, and its tables hold no pointers, so that is cheap.
func SetMemoryLimit(frac float64) int64 {
	if cur := debug.SetMemoryLimit(-1); cur != math.MaxInt64 {
		return cur
	}
	total := memTotal()
	if total <= 0 {
		return 0
	}
	limit := int64(float64(total) * frac)
	debug.SetMemoryLimit(limit)
	return limit
}

// memTotal reads MemTotal from /proc/meminfo, or returns 0.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
