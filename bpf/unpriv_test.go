package bpf

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
)

// TestUnprivilegedFallback runs only without root: NewXDP must fail with
// ErrUnsupported and a reason, and ModeAuto must fall back to UDP.
func TestUnprivilegedFallback(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("checks the non-root path; run as an unprivileged user")
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
