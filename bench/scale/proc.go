package scale

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hearsay/hearsay/bench/childproc"
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
	if s.CPUTicks, err = childproc.ParseStatCPU(string(stat)); err != nil {
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
