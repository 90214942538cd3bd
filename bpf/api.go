package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
	_ "unsafe" // go:linkname runtime.nanotime

	"github.com/hearsay/hearsay/bpf/hbpacket"
)

// Mode is a heartbeat transport.
type Mode string

// Heartbeat modes, as in --heartbeat.
const (
	ModeAuto Mode = "auto" // XDP when possible, otherwise UDP
	ModeXDP  Mode = "xdp"  // the kernel answers PINGs (needs CAP_BPF, CAP_NET_ADMIN)
	ModeUDP  Mode = "udp"  // a userspace socket answers PINGs
)

// ErrUnsupported is wrapped by NewXDP when XDP cannot be used here: missing
// privileges, no bpffs, an old kernel, or an interface that refuses XDP.
// Under ModeAuto the caller falls back to UDP; under ModeXDP it fails fast.
var ErrUnsupported = errors.New("xdp heartbeat unsupported")

// Peer is a monitored peer: its sender key (the first 8 bytes of its node
// ID, little-endian) and its UDP heartbeat address (its bus port).
type Peer struct {
	Key  uint64
	Addr netip.AddrPort
}

// Sample is what is known about one peer's heartbeats. It is a report, not
// a verdict: the core decides liveness (a PONG whose Progress advanced is a
// fresh heartbeat). Both implementations produce identical samples.
type Sample struct {
	PeerKey   uint64
	PingsRecv uint64        // PINGs received from the peer and answered
	PongsRecv uint64        // PONGs received from the peer
	LastPong  time.Duration // CLOCK_MONOTONIC time of the last PONG; 0 = never (see MonotonicNow)
	RTT       time.Duration // round-trip time of the last PONG
	Progress  uint64        // the peer's progress counter in its last PONG
	Seq       uint64        // sequence number echoed by the last PONG
	// Kernel says the last PONG came from the peer's XDP program (it
	// carries hbpacket.FlagKernel); false means a userspace responder
	// answered: the peer's UDP fallback, or its XDP node's socket path.
	Kernel bool
}

// Stats are counters for one heartbeater. The packet counters of the XDP
// implementation are those of the program shared by all nodes on the
// interface; the UDP implementation counts its own socket.
type Stats struct {
	Pass        uint64 // packets not for a heartbeat port, passed to the stack (XDP only)
	PingTx      uint64 // PINGs answered with a PONG
	PongRx      uint64 // PONGs recorded
	BadLen      uint64 // wrong length
	BadMagic    uint64 // magic is not "HBT1"
	BadType     uint64 // type is not PING or PONG
	BadMAC      uint64 // MAC mismatch
	UnknownPeer uint64 // sender key not among the peers
	PingsSent   uint64 // PINGs this node sent
	SendErrors  uint64 // PINGs that could not be sent

	// XDP only: heartbeats that reached the socket instead of the program
	// (for example from a peer on the same host, routed over lo while the
	// program is on another interface) and were handled in userspace.
	// Both stay 0 when the fast path carries everything.
	SlowPingTx uint64
	SlowPongRx uint64
}

// Heartbeater sends PINGs to peers and reports their PONGs. The node
// runtime drives it from its tick loop: Tick, SendPings, Samples. Methods
// may be called from different goroutines but are meant for one driver.
type Heartbeater interface {
	// Mode reports the transport in use (ModeXDP or ModeUDP).
	Mode() Mode
	// SetPeers replaces the set of monitored peers. Counters of peers that
	// stay in the set are kept. Only these peers are answered.
	SetPeers(peers []Peer) error
	// Tick advances the progress counter stamped into our PONGs. Call it
	// from the node's main loop: if that loop hangs, peers see the counter
	// stop although the kernel keeps answering.
	Tick() error
	// SendPings sends one PING to every peer, batched (sendmmsg).
	SendPings() error
	// Samples appends one sample per peer to dst[:0] and returns it.
	Samples(dst []Sample) ([]Sample, error)
	// SetKey changes our sender key, stamped into PINGs and PONGs from
	// now on (a node that took a new ID, as after CLUSTER RESET HARD).
	SetKey(key uint64) error
	// Stats returns the counters.
	Stats() (Stats, error)
	// Close stops the heartbeater and removes its state; the last XDP
	// node on an interface detaches the program and unpins it.
	Close() error
}

// Config configures a heartbeater.
type Config struct {
	// Key is our sender key (the first 8 bytes of our node ID).
	Key uint64
	// Bind is the UDP heartbeat address; its port keys our state in the
	// shared XDP maps. Port 0 is not allowed.
	Bind netip.AddrPort
	// Secret, when non-nil, turns on the SipHash-2-4 MAC.
	Secret *hbpacket.Key
	// Interface is the XDP interface; empty means the one holding Bind's
	// address (lo for loopback addresses).
	Interface string
	// XDPMode forces an attach mode for the first node on the interface;
	// empty tries native, then generic. On veth, native XDP_TX frames are
	// only delivered when the peer device has an XDP program (or GRO) too,
	// so a veth whose peer runs the udp fallback needs AttachGeneric.
	XDPMode AttachMode
	// PinRoot is the bpffs directory for shared state; the program, link
	// and maps go to PinRoot/<ifname>/. Default /sys/fs/bpf/hearsay.
	PinRoot string
	// LockDir holds the per-interface lock files. Default /run/hearsay.
	LockDir string
	// Logf, if set, receives one line per notable event (attach mode,
	// fallback reason, stale state cleaned).
	Logf func(format string, args ...any)
}

func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

func (c *Config) check() error {
	if c.Bind.Port() == 0 || !c.Bind.IsValid() {
		return fmt.Errorf("heartbeat: bind address %v needs an address and a non-zero port", c.Bind)
	}
	return nil
}

// New returns a heartbeater for mode. Under ModeAuto it tries XDP and falls
// back to UDP, logging why; Mode() tells which one it got.
func New(mode Mode, cfg Config) (Heartbeater, error) {
	switch mode {
	case ModeXDP:
		if h, err := NewXDP(cfg); err == nil {
			return h, nil
		} else {
			return nil, err // a nil interface, not a nil *XDP
		}
	case ModeUDP:
		if h, err := NewUDP(cfg); err == nil {
			return h, nil
		} else {
			return nil, err
		}
	case ModeAuto, "":
		h, err := NewXDP(cfg)
		if err == nil {
			cfg.logf("heartbeat: using xdp")
			return h, nil
		}
		cfg.logf("heartbeat: xdp unavailable, using udp: %v", err)
		return New(ModeUDP, cfg)
	}
	return nil, fmt.Errorf("heartbeat: unknown mode %q (want auto, xdp or udp)", mode)
}

// MonotonicNow returns CLOCK_MONOTONIC, the clock of Sample.LastPong and of
// the send times in PINGs (the kernel's bpf_ktime_get_ns).
//
// It reads the clock through the vDSO (the Go runtime's nanotime, which is
// clock_gettime(CLOCK_MONOTONIC) on Linux), not with a clock_gettime
// system call: the system call took about 300 ns on the development VM, and
// its return half (about 260 ns) lay between the send time stamped into a
// PING and the sendmmsg that sends it, inflating every RTT.
// TestMonotonicNowIsClockMonotonic checks that both read the same clock.
func MonotonicNow() time.Duration { return time.Duration(runtimeNanotime()) }

// runtimeNanotime is the runtime's vDSO CLOCK_MONOTONIC reading (see
// go.dev/issue/67401: the runtime keeps this linkname for such users).
//
//go:linkname runtimeNanotime runtime.nanotime
func runtimeNanotime() int64
