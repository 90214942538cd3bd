package bpf

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestUnprivilegedFallback checks the non-root path: NewXDP must fail
// with ErrUnsupported and a reason, and ModeAuto must fall back to UDP.
// Run as root, it runs itself again as user nobody.
func TestUnprivilegedFallback(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestUnprivilegedFallback")
		return
	}
	cfg := Config{Key: keyA, Bind: netip.MustParseAddrPort("127.0.0.1:0"), Interface: "lo",
		PinRoot: "/sys/fs/bpf/hearsay-test-unpriv", LockDir: t.TempDir()}
	cfg.Bind = netip.AddrPortFrom(cfg.Bind.Addr(), freeUDPPort(t))
	t.Cleanup(func() { os.Remove(cfg.PinRoot) })
	_, err := NewXDP(cfg)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("NewXDP without privileges: %v, want ErrUnsupported", err)
	}
	t.Logf("NewXDP: %v", err)
	var logged []string
	cfg.Logf = func(f string, a ...any) { logged = append(logged, f) }
	h, err := New(ModeAuto, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Mode() != ModeUDP || len(logged) == 0 {
		t.Fatalf("auto chose %s, logs %q", h.Mode(), logged)
	}
}

func freeUDPPort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
}

// runAsNobody runs test in a copy of the test binary as uid/gid 65534 and
// fails unless it passes there.
func runAsNobody(t *testing.T, test string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "hearsay-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "bpf.test")
	src, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR=/tmp", "HOME=/")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	t.Logf("%s as uid 65534:\n%s", test, out)
	if err != nil || !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("%s as uid 65534 did not pass: %v", test, err)
	}
}
