package node

import (
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
