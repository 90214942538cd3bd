package scale

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ProcSample is what /proc says about one process at one moment.
type ProcSample struct {
	// CPUTicks is utime+stime of every thread, in clock ticks.
	CPUTicks uint64
	// CtxSwitches is voluntary plus nonvoluntary context switches summed
	// over the threads alive now: the kernel keeps them per task, and a
	// process's own status file shows only its main thread's.
	CtxSwitches uint64
	// RSSBytes is VmRSS.
	RSSBytes uint64
	// PSSBytes is the proportional set size (smaps_rollup's Pss): pages
	// shared with other processes, such as the executable's, count in
	// shares, so N nodes of one binary on a host add up to what they
	// really cost. AnonBytes is RssAnon, memory that no process shares.
	PSSBytes, AnonBytes uint64
	// Threads is the number of tasks.
	Threads int
}

// SampleProc reads the sample of pid from procfs (root is "/proc" outside
// tests).
func SampleProc(root string, pid int) (ProcSample, error) {
	var s ProcSample
	dir := filepath.Join(root, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return s, err
	}
	if s.CPUTicks, err = ParseStatCPU(string(stat)); err != nil {
		return s, fmt.Errorf("pid %d: %v", pid, err)
	}
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return s, err
	}
	s.RSSBytes = statusField(string(status), "VmRSS") * 1024 // the kernel prints kB
	s.AnonBytes = statusField(string(status), "RssAnon") * 1024
	if rollup, err := os.ReadFile(filepath.Join(dir, "smaps_rollup")); err == nil {
		s.PSSBytes = statusField(string(rollup), "Pss") * 1024
	}
	tasks, err := filepath.Glob(filepath.Join(dir, "task", "*", "status"))
	if err != nil {
		return s, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited between the listing and the read
		}
		s.CtxSwitches += statusField(string(b), "voluntary_ctxt_switches") + statusField(string(b), "nonvoluntary_ctxt_switches")
		s.Threads++
	}
	return s, nil
}

// ParseStatCPU returns utime+stime (fields 14 and 15) of a /proc/<pid>/stat
// line. The command name (field 2) is in parentheses and may itself hold
// spaces and parentheses, so the fields are counted from the last ')'.
func ParseStatCPU(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no ')' in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: utime %q stime %q", f[11], f[12])
	}
	return u + s, nil
}

// statusField returns the first number of the "name:" line of a status
// file, 0 when absent (a kernel thread has no VmRSS).
func statusField(status, name string) uint64 {
	for _, l := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || k != name {
			continue
		}
		if f := strings.Fields(v); len(f) > 0 {
			n, _ := strconv.ParseUint(f[0], 10, 64)
			return n
		}
	}
	return 0
}

// ClockTicks returns the kernel's USER_HZ, the unit of /proc/<pid>/stat's
// times, from the AT_CLKTCK entry of this process's auxiliary vector: Go has
// no sysconf(_SC_CLK_TCK). It falls back to 100, the value on every common
// Linux architecture.
func ClockTicks() uint64 {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	if err == nil && strconv.IntSize == 64 { // entries are two words
		for ; len(b) >= 16; b = b[16:] {
			if binary.NativeEndian.Uint64(b) == atClkTck {
				if v := binary.NativeEndian.Uint64(b[8:]); v > 0 {
					return v
				}
			}
		}
	}
	return 100
}
