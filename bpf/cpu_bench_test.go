package bpf

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Responder CPU cost at a fixed heartbeat rate (issue 4, "CPU cost").
//
// The responder runs in its own process (TestResponderChild, re-executed
// from the test binary) in one namespace of a veth pair, ticking its
// progress counter every 20ms as a node's bus loop does. The pinger, in
// this process and the other namespace, sends PINGs at cpuBenchRate per
// second in sendmmsg batches of cpuBenchBatch, b.N in all (use -benchtime
// Nx). Reported per million heartbeats:
//
//   - resp-cpu-s/Mhb: the responder process's utime+stime
//     (/proc/<pid>/stat). Under XDP the kernel answers in softirq context,
//     which is not charged to the responder, so this is its userspace
//     overhead only.
//   - softirq-cpu-s/Mhb and sys-cpu-s/Mhb: softirq time and all busy time
//     on every CPU (/proc/stat), to be honest about the in-kernel cost.
//     They include the pinger (same in both modes) and anything else
//     running on the machine.
//   - answered: the fraction of PINGs whose PONG came back.
const (
	cpuBenchRate  = 20000 // heartbeats per second
	cpuBenchBatch = 64    // PINGs per SendPings
)

// TestResponderChild is the responder process of BenchmarkResponderCPU.
func TestResponderChild(t *testing.T) {
	mode := Mode(os.Getenv("HEARSAY_RESPONDER"))
	if mode == "" {
		return // only a helper process of BenchmarkResponderCPU; not a skip, so CI output shows none
	}
	cfg := Config{Key: keyB, Bind: vethB, Interface: "hbvb", PinRoot: os.Getenv("PIN_ROOT"),
		LockDir: os.Getenv("LOCK_DIR"), Secret: testSecret()}
	h, err := New(mode, cfg)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if err := h.SetPeers([]Peer{{Key: keyA, Addr: vethA}}); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
		close(stop)
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	for {
		select {
		case <-tick.C:
			_ = h.Tick()
		case <-stop:
			st, _ := h.Stats()
			_ = h.Close()
			fmt.Printf("answered %d\n", st.PingTx+st.SlowPingTx)
			os.Exit(0)
		}
	}
}

func BenchmarkResponderCPU(b *testing.B) {
	for _, mode := range []Mode{ModeXDP, ModeUDP} {
		b.Run(string(mode), func(b *testing.B) {
			requireNetAdmin(b)
			nsA, nsB := vethPair(b)
			pinRoot, lockDir := testPinRoot(b), b.TempDir()

			// The responder, in nsB.
			var child *exec.Cmd
			var stdin io.WriteCloser
			var out *bufio.Reader
			must(b, inNetns(nsB, func() error {
				child = exec.Command(os.Args[0], "-test.run=^TestResponderChild$", "-test.count=1", "-test.v=false")
				child.Env = append(os.Environ(), "HEARSAY_RESPONDER="+string(mode), "PIN_ROOT="+pinRoot, "LOCK_DIR="+lockDir)
				child.Stderr = os.Stderr
				var err error
				if stdin, err = child.StdinPipe(); err != nil {
					return err
				}
				pipe, err := child.StdoutPipe()
				if err != nil {
					return err
				}
				out = bufio.NewReader(pipe)
				return child.Start()
			}))
			defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
			if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
				b.Fatalf("responder did not start: %q %v", line, err)
			}

			// The pinger, in nsA: one XDP heartbeater (so PONGs are
			// recorded and dropped in its kernel in both modes, and
			// native XDP_TX frames from the responder are received) whose
			// peer list holds the responder cpuBenchBatch times, so that
			// one SendPings is one sendmmsg batch.
			a := newXDPIn(b, nsA, Config{Key: keyA, Bind: vethA, Interface: "hbva", PinRoot: pinRoot, LockDir: lockDir, Secret: testSecret()})
			defer a.Close()
			peers := []Peer{{Key: keyB, Addr: vethB}}
			for i := 1; i < cpuBenchBatch; i++ {
				peers = append(peers, Peer{Key: keyB + uint64(i), Addr: vethB})
			}
			must(b, a.SetPeers(peers))
			// Warm up: the path works and ARP is resolved.
			deadline := time.Now().Add(5 * time.Second)
			for {
				must(b, a.SendPings())
				time.Sleep(10 * time.Millisecond)
				if st, _ := a.Stats(); st.PongRx > 0 {
					break
				}
				if time.Now().After(deadline) {
					b.Fatal("no PONG from the responder")
				}
			}
			time.Sleep(100 * time.Millisecond)

			st0, _ := a.Stats()
			pid := child.Process.Pid
			cpu0, sys0 := procCPU(b, pid), systemCPU(b)
			b.ResetTimer()
			start := time.Now()
			interval := time.Duration(float64(time.Second) * cpuBenchBatch / cpuBenchRate)
			sent := 0
			for sent < b.N {
				must(b, a.SendPings())
				sent += cpuBenchBatch
				if wait := time.Until(start.Add(time.Duration(sent/cpuBenchBatch) * interval)); wait > 0 {
					time.Sleep(wait)
				}
			}
			// Let the last PONGs land.
			deadline = time.Now().Add(time.Second)
			for {
				st, _ := a.Stats()
				if st.PongRx-st0.PongRx >= uint64(sent) || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cpu1, sys1 := procCPU(b, pid), systemCPU(b)
			st1, _ := a.Stats()

			mhb := float64(sent) / 1e6
			b.ReportMetric((cpu1-cpu0)/mhb, "resp-cpu-s/Mhb")
			b.ReportMetric((sys1.softirq-sys0.softirq)/mhb, "softirq-cpu-s/Mhb")
			b.ReportMetric((sys1.busy-sys0.busy)/mhb, "sys-cpu-s/Mhb")
			b.ReportMetric(float64(st1.PongRx-st0.PongRx)/float64(sent), "answered")
			b.ReportMetric(float64(sent)/elapsed.Seconds(), "hb/s")

			_ = stdin.Close()
			if line, err := out.ReadString('\n'); err == nil {
				b.Logf("responder (%s): %s", mode, strings.TrimSpace(line))
			}
		})
	}
}

// clkTck is USER_HZ, the unit of /proc CPU times (100 on Linux).
const clkTck = 100

// procCPU returns utime+stime of pid in seconds.
func procCPU(tb testing.TB, pid int) float64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / clkTck
}

type cpuTimes struct{ busy, softirq float64 }

// systemCPU returns busy (user+nice+system+irq+softirq+steal) and softirq
// time over all CPUs, in seconds.
func systemCPU(tb testing.TB) cpuTimes {
	tb.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		tb.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	v := make([]float64, len(f))
	for i := 1; i < len(f); i++ {
		v[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return cpuTimes{
		busy:    (v[1] + v[2] + v[3] + v[6] + v[7] + v[8]) / clkTck,
		softirq: v[7] / clkTck,
	}
}
