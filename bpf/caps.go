package bpf

import (
	"os"
	"strconv"
	"strings"
)

// Capability bits (linux/capability.h).
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// missingCaps names the capabilities XDP needs that this process lacks in
// its effective set: CAP_BPF (or CAP_SYS_ADMIN, which kernels before 5.8
// require instead) to load programs and maps, CAP_PERFMON (or
// CAP_SYS_ADMIN) because the verifier refuses the program's pointer
// comparisons without it ("pointer comparison prohibited", measured on
// 6.x), and CAP_NET_ADMIN to attach to an interface. It returns "" when all are present or the set cannot be
// read (the kernel will then say no itself).
func missingCaps() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	var eff uint64
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			if eff, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				return ""
			}
			found = true
		}
	}
	if !found {
		return ""
	}
	var miss []string
	if eff&(1<<capBPF|1<<capSysAdmin) == 0 {
		miss = append(miss, "CAP_BPF")
	}
	if eff&(1<<capPerfmon|1<<capSysAdmin) == 0 {
		miss = append(miss, "CAP_PERFMON")
	}
	if eff&(1<<capNetAdmin) == 0 {
		miss = append(miss, "CAP_NET_ADMIN")
	}
	return strings.Join(miss, ", ")
}
