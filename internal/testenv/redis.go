package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartRedis starts redis-server on a free loopback port with its data in
// dir (a temp dir when empty), no automatic saves, and extra arguments; it
// waits until the server answers and stops it when the test ends. It
// returns the server's address. Without redis-server it skips (or fails,
// in strict mode).
func StartRedis(tb testing.TB, dir string, extra ...string) string {
	tb.Helper()
	bin := RequireBinary(tb, "redis-server")
	if dir == "" {
		dir = tb.TempDir()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	log := filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log")
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
		"--appendonly", "no", "--logfile", log}, extra...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(20 * time.Second); ; {
		if pingRedis(addr) {
			return addr
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log)
			tb.Fatalf("redis-server did not start:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pingRedis reports whether the server at addr answers PING with PONG
// (not LOADING).
func pingRedis(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	return strings.HasPrefix(string(buf[:n]), "+PONG")
}
