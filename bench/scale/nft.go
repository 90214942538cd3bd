package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hearsay/hearsay/bench/childproc"
)

// Table is the nftables table the harness owns. One name, not one per run:
// a run that was killed outright (SIGKILL, so no cleanup) leaves it behind,
// and the next run replaces it instead of accumulating tables.
const Table = "hearsay_scale"

// Bytes is what the kernel counted on the bus ports over a window.
type Bytes struct {
	TCPBytes   uint64 `json:"tcp_bytes"`
	TCPPackets uint64 `json:"tcp_packets"`
	UDPBytes   uint64 `json:"udp_bytes"`
	UDPPackets uint64 `json:"udp_packets"`
}

// Sub is b - c, counter by counter.
func (b Bytes) Sub(c Bytes) Bytes {
	return Bytes{b.TCPBytes - c.TCPBytes, b.TCPPackets - c.TCPPackets, b.UDPBytes - c.UDPBytes, b.UDPPackets - c.UDPPackets}
}

// counter counts bus bytes with nftables: a table inet Table whose output
// chain sends every packet to or from a bus port into a named counter, one
// for TCP and one for UDP. On loopback each packet passes the output hook
// exactly once (its arrival is the input hook), so each byte is counted
// once, by its sender, whichever end owns the bus port. A packet between
// two bus ports (UDP heartbeats go from bus port to bus port) matches the
// first rule only, so it is not counted twice. Bytes are whole IP packets
// (headers, and TCP's ACKs, included), which is what the kernel sees.
type counter struct {
	nft string
	dir string // where the rule files go
}

// newCounter checks that nft works here by replacing any stale table with
// an empty one.
func newCounter(nft, dir string) (*counter, error) {
	c := &counter{nft: nft, dir: dir}
	if err := c.load(""); err != nil {
		return nil, err
	}
	return c, nil
}

// watch replaces the table with one counting the bus ports lo..hi; the
// counters start at zero.
func (c *counter) watch(lo, hi int) error {
	r := fmt.Sprintf("%d-%d", lo, hi)
	return c.load(fmt.Sprintf(`
	counter bus_tcp {}
	counter bus_udp {}
	chain out {
		type filter hook output priority 0; policy accept;
		tcp dport %[1]s counter name "bus_tcp"
		tcp sport %[1]s tcp dport != %[1]s counter name "bus_tcp"
		udp dport %[1]s counter name "bus_udp"
		udp sport %[1]s udp dport != %[1]s counter name "bus_udp"
	}`, r))
}

// load replaces the table with one holding body, in one nft transaction:
// declaring the table first makes the delete succeed whether or not a
// table was there (nft 1.0.6 has no "destroy").
func (c *counter) load(body string) error {
	script := fmt.Sprintf("table inet %[1]s\ndelete table inet %[1]s\ntable inet %[1]s {%s\n}\n", Table, body)
	f := filepath.Join(c.dir, "scale.nft")
	if err := os.WriteFile(f, []byte(script), 0o644); err != nil {
		return err
	}
	_, err := childproc.Run(context.Background(), 10*time.Second, c.nft, "-f", f)
	return err
}

// read returns the counters now.
func (c *counter) read() (Bytes, error) {
	out, err := childproc.Run(context.Background(), 10*time.Second, c.nft, "-j", "list", "counters", "table", "inet", Table)
	if err != nil {
		return Bytes{}, err
	}
	return ParseCounters(out)
}

// close deletes the table. It runs on every return path of Run, including
// cancellation, so it does not take the run's context.
func (c *counter) close() error {
	_, err := childproc.Run(context.Background(), 10*time.Second, c.nft, "delete", "table", "inet", Table)
	return err
}

// ParseCounters reads bus_tcp and bus_udp from the output of
// `nft -j list counters table inet hearsay_scale`.
func ParseCounters(js string) (Bytes, error) {
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Table   string `json:"table"`
				Packets uint64 `json:"packets"`
				Bytes   uint64 `json:"bytes"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		return Bytes{}, fmt.Errorf("nft -j: %v", err)
	}
	var b Bytes
	seen := 0
	for _, o := range doc.Nftables {
		if o.Counter == nil || o.Counter.Table != Table {
			continue
		}
		switch o.Counter.Name {
		case "bus_tcp":
			b.TCPBytes, b.TCPPackets = o.Counter.Bytes, o.Counter.Packets
			seen |= 1
		case "bus_udp":
			b.UDPBytes, b.UDPPackets = o.Counter.Bytes, o.Counter.Packets
			seen |= 2
		}
	}
	if seen != 3 {
		return b, fmt.Errorf("nft -j: counters bus_tcp and bus_udp not both in %q", childproc.Clip(js, 300))
	}
	return b, nil
}
