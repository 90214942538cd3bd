package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad settings are refused with the flag's name; good ones get defaults.
func TestConfigDefaultsAndErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
		err  string // "" means accepted
	}{
		{"defaults", func(*Config) {}, ""},
		{"xdp-mode native", func(c *Config) { c.XDPMode = XDPModeNative }, ""},
		{"xdp-mode generic", func(c *Config) { c.XDPMode = XDPModeGeneric }, ""},
		{"xdp-mode bad", func(c *Config) { c.XDPMode = "skb" }, `--xdp-mode must be auto, native or generic, not "skb"`},
		{"heartbeat bad", func(c *Config) { c.Heartbeat = "tcp" }, `--heartbeat must be auto, xdp, udp or off, not "tcp"`},
		{"bus-max-links negative", func(c *Config) { c.MaxLinks = -3 }, "--bus-max-links -3 is negative"},
		{"io-threads negative", func(c *Config) { c.IOThreads = -1 }, "--io-threads -1 is negative"},
		{"bind not an IP", func(c *Config) { c.Bind = "localhost" }, `--bind "localhost" is not an IP address`},
		{"wildcard without announce", func(c *Config) { c.Bind = "0.0.0.0" }, "set --announce-ip"},
		{"loopback without secret", func(c *Config) { c.Bind = "127.0.0.2" }, ""},
		{"ipv6 loopback without secret", func(c *Config) { c.Bind = "::1" }, ""},
		{"mapped loopback without secret", func(c *Config) { c.Bind = "::ffff:127.0.0.1" }, ""},
		{"address without secret", func(c *Config) { c.Bind = "10.0.0.5" }, "refusing to start: the cluster bus listens on 10.0.0.5:17000"},
		{"wildcard without secret", func(c *Config) { c.Bind, c.AnnounceIP = "0.0.0.0", "10.0.0.5" }, "port 17000 on every interface (--bind 0.0.0.0)"},
		{"ipv6 wildcard without secret", func(c *Config) { c.Bind, c.AnnounceIP = "::", "fd00::5" }, "--insecure-bus"},
		{"address with secret", func(c *Config) { c.Bind, c.ClusterSecret = "10.0.0.5", []byte("0123456789abcdef") }, ""},
		{"address with --insecure-bus", func(c *Config) { c.Bind, c.InsecureBus = "10.0.0.5", true }, ""},
		{"wildcard with --insecure-bus", func(c *Config) { c.Bind, c.AnnounceIP, c.InsecureBus = "0.0.0.0", "10.0.0.5", true }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{}
			c.edit(&cfg)
			_, err := cfg.withDefaults()
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("error %v, want one containing %q", err, c.err)
			}
			if err == nil && (cfg.XDPMode == "" || cfg.Heartbeat != HeartbeatAuto || cfg.BusPort != cfg.Port+10000) {
				t.Fatalf("defaults not filled: %+v", cfg)
			}
		})
	}
}

// ReadSecretFile refuses files others may read and short secrets, naming
// the file and the fix.
func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // secret, or the error's substrings joined by |
		err     bool
	}{
		{"good", strings.Repeat("k", 32) + "\n", 0o600, strings.Repeat("k", 32), false},
		{"read-only owner", strings.Repeat("k", 16), 0o400, strings.Repeat("k", 16), false},
		{"group readable", strings.Repeat("k", 32), 0o640, "mode 0640|group or others|chmod 600", true},
		{"world readable", strings.Repeat("k", 32), 0o604, "mode 0604|chmod 600", true},
		{"short", "short-secret\n", 0o600, "holds 12 bytes, fewer than the 16|head -c 32 /dev/urandom >", true},
		{"only whitespace", " \n\t", 0o600, "holds 0 bytes", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, c.mode); err != nil {
				t.Fatal(err)
			}
			got, err := ReadSecretFile(path)
			if !c.err {
				if err != nil || string(got) != c.want {
					t.Fatalf("got %q, %v; want %q", got, err, c.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %q", got)
			}
			for _, w := range append(strings.Split(c.want, "|"), path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadSecretFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}
