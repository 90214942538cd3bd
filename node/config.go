// Package node is hearsay's runtime: it drives the deterministic gossip core
// from a gnet event loop (the cluster bus), serves clients over RESP on a
// second, multicore gnet engine, persists the node config file, and exposes
// metrics and status over HTTP.
//
// The one rule that shapes this package: the core is owned by the bus
// engine's single event loop. Inbound frames, ticks and admin commands all
// run there, one at a time, so the core needs no locks. Everything else
// (client loops, HTTP, metrics) reads immutable views that the loop
// publishes through atomic pointers after each change.
package node

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/hearsay/hearsay/internal/procs"
	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/node/store"
)

// Heartbeat modes accepted by Config.Heartbeat (the --heartbeat flag).
const (
	HeartbeatAuto = "auto"
	HeartbeatXDP  = "xdp"
	HeartbeatUDP  = "udp"
	HeartbeatOff  = "off"
)

// XDP attach modes accepted by Config.XDPMode (the --xdp-mode flag).
const (
	XDPModeAuto    = "auto"
	XDPModeNative  = "native"
	XDPModeGeneric = "generic"
)

// Default values of Config fields left zero.
const (
	DefaultPort        = 7000
	DefaultBusOffset   = 10000 // bus port = client port + 10000, as Redis
	DefaultNodeTimeout = 5 * time.Second
	DefaultMaxLinks    = 512
	// DefaultMaxClients is Redis's maxclients default.
	DefaultMaxClients = 10000
	// MinMaxBulkLen is the smallest proto-max-bulk-len, as in Redis.
	MinMaxBulkLen = 1 << 20
	// StateFile is the node config file kept in Config.Dir.
	StateFile = "nodes.json"
)

// Config configures a Node. The zero value of every field takes the default
// documented on it.
type Config struct {
	// Port is the RESP client port (default 7000).
	Port int
	// BusPort is the cluster bus port (default Port+10000). Heartbeats use
	// UDP on the same port number.
	BusPort int
	// Bind is the address both engines listen on (default 127.0.0.1).
	Bind string
	// AnnounceIP is the address other nodes and clients are told to use
	// (default: Bind). It is required when Bind is a wildcard address,
	// because a node must announce an address peers can reach.
	AnnounceIP string
	// Dir holds the node config file, StateFile (default ".").
	Dir string
	// NodeTimeout is how long a peer may stay silent before it is PFAIL
	// (default 5s).
	NodeTimeout time.Duration
	// ReplicaValidityFactor is Redis's cluster-replica-validity-factor:
	// a replica whose master link has been down longer than
	// NodeTimeout×factor (plus the 10 s replication ping period) does not
	// fail over automatically. 0 means any age, as in Redis.
	ReplicaValidityFactor int
	// PartialCoverage is Redis's cluster-require-full-coverage no: the
	// cluster stays ok (and serves the slots it still has) when some slots
	// are unassigned or served by a FAIL master, as long as this node sees
	// a majority of the masters. The zero value is Redis's default, yes.
	PartialCoverage bool
	// AllowReadsWhenDown is Redis's cluster-allow-reads-when-down yes:
	// while the cluster is down, read-only commands on slots this node
	// serves (or, with READONLY, its master serves) still run; writes get
	// "CLUSTERDOWN The cluster is down and only accepts read commands".
	AllowReadsWhenDown bool
	// MigrationBarrier is Redis's cluster-migration-barrier: a spare
	// replica moves to a master left without working replicas only if its
	// own master keeps more than this many. Default 1 (as is 0: a master
	// must have two working replicas before one can leave).
	MigrationBarrier int
	// NoReplicaMigration is Redis's cluster-allow-replica-migration no.
	NoReplicaMigration bool
	// Heartbeat is auto|xdp|udp|off (default auto): the transport of the
	// UDP heartbeats on the bus port number (package bpf). xdp has the
	// kernel answer PINGs and fails New with the reason when XDP is not
	// possible; udp answers from a userspace socket; auto tries xdp, then
	// udp, and logs which it chose and why; off leaves liveness to the
	// core's bus pings, as Redis does.
	Heartbeat string
	// XDPInterface is the interface the XDP program is attached to
	// (--xdp-iface). Empty means the interface holding Bind (or, for a
	// wildcard Bind, AnnounceIP); on lo only generic mode attaches.
	XDPInterface string
	// XDPMode is how the first node on the interface attaches the program
	// (--xdp-mode): "auto" (or empty) tries native, then generic; "native"
	// or "generic" forces one. On a veth whose peer device has no XDP
	// program, native XDP_TX frames are lost, so such setups need generic.
	XDPMode string
	// Heartbeats, when set, supplies liveness samples from outside the bus
	// and overrides Heartbeat; the core then stops pinging on the bus
	// just for liveness. Nil means: open the transport Heartbeat names.
	Heartbeats Heartbeats
	// HTTP is the listen address of /metrics and /status; empty disables it.
	HTTP string
	// HTTPAuth, when non-empty, is the token every --http request must
	// carry (--http-auth); without it HTTP must be a loopback address.
	HTTPAuth string
	// ClusterSecret, when non-empty, authenticates every bus frame with
	// HMAC-SHA256 and keys the heartbeat MAC. ReadSecretFile reads it
	// from --cluster-secret-file with the checks the command line applies.
	ClusterSecret []byte
	// InsecureBus (--insecure-bus) lets a node whose bus is reachable
	// beyond loopback run without ClusterSecret. Without it, New refuses
	// such a node, as Redis's protected mode refuses outside clients: an
	// unauthenticated bus lets anyone who reaches the port forge frames
	// that take the node's slots.
	InsecureBus bool
	// RequirePass is the client password (AUTH); empty means none.
	RequirePass string
	// DBFilename is the snapshot file in Dir (--dbfilename, default
	// dump.rdb): SAVE and BGSAVE write it, and a node loads it at start.
	DBFilename string
	// SaveOnShutdown writes the snapshot when the node stops
	// (--save-on-shutdown; the command line defaults it to true, as Redis
	// saves on shutdown with its default save points).
	SaveOnShutdown bool
	// MasterAuth is the password a replica sends its master
	// (--masterauth); empty means RequirePass.
	MasterAuth string
	// ReplBacklogSize is the replication backlog (--repl-backlog-size,
	// default 1 MB): a replica that reconnects within it resyncs
	// partially.
	ReplBacklogSize int64
	// MaxBulkLen is the longest bulk string a client may send
	// (--proto-max-bulk-len, Redis's proto-max-bulk-len): a longer "$"
	// length gets "-ERR Protocol error: invalid bulk length" and the
	// connection is closed. Default 512 MiB; at least 1 MiB, as Redis.
	MaxBulkLen int64
	// MaxLinks caps the outbound bus links, and separately the inbound
	// ones (--bus-max-links); the least recently used link of the same
	// direction is closed to make room (default 512). A peer whose inbound
	// link was closed dials again when it next has something to send.
	MaxLinks int
	// MaxClients caps the client connections and bus links together
	// (--maxclients, Redis's maxclients, which in cluster mode counts
	// cluster bus connections too; default 10000). A client over the cap
	// gets Redis's error and is closed; a bus connection is closed. At
	// start the open file limit is raised to fit it, or, where the hard
	// limit forbids, MaxClients is lowered to fit with a warning, as Redis
	// does.
	MaxClients int
	// OutputLimits are the client output buffer limits
	// (--client-output-buffer-limit); nil means DefaultOutputLimits.
	OutputLimits *OutputLimits
	// MaxMemory is maxmemory in bytes (--maxmemory; 0, the default, means
	// no limit): a master compares the keyspace's own accounting of its
	// keys and values (store.UsedMemory, not the Go heap) with it before
	// every write that may grow memory, and evicts or refuses by
	// MaxMemoryPolicy (--maxmemory-policy, Redis's names; default
	// noeviction). MaxMemorySamples is maxmemory-samples (default 5).
	// Replicas ignore the limit, as Redis's do by default.
	MaxMemory        int64
	MaxMemoryPolicy  string
	MaxMemorySamples int
	// IOThreads is the number of event loops serving clients
	// (--io-threads, like Redis's io-threads); 0 means one per two CPUs
	// (GOMAXPROCS/2, at least one), leaving the rest to the clients, the
	// kernel's network stack and the Go runtime. On 2 CPUs shared with
	// redis-benchmark, one loop matched Redis where two did not.
	IOThreads int
	// Procs, when set, holds GOMAXPROCS at the event loops' count and is
	// lent every CPU while a snapshot is written or a full sync runs (see
	// package internal/procs). The hearsay command sets it; nil leaves the
	// scheduler alone.
	Procs *procs.Governor
	// Logger receives the node's logs (default slog.Default()).
	Logger *slog.Logger
}

// addrs holds the parsed listen and announce addresses.
type addrs struct {
	bind     netip.Addr
	announce netip.Addr
}

func (c *Config) withDefaults() (addrs, error) {
	var a addrs
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.DBFilename == "" {
		c.DBFilename = "dump.rdb"
	}
	if c.DBFilename != filepath.Base(c.DBFilename) {
		return a, fmt.Errorf("node: --dbfilename %q must be a file name, not a path (the directory is --dir)", c.DBFilename)
	}
	if c.Port < 1 || c.Port > 65535-DefaultBusOffset && c.BusPort == 0 {
		return a, fmt.Errorf("node: port %d out of range (the bus port is port+%d)", c.Port, DefaultBusOffset)
	}
	if c.BusPort == 0 {
		c.BusPort = c.Port + DefaultBusOffset
	}
	if c.BusPort < 1 || c.BusPort > 65535 || c.BusPort == c.Port {
		return a, fmt.Errorf("node: bus port %d invalid", c.BusPort)
	}
	if c.Bind == "" {
		c.Bind = "127.0.0.1"
	}
	if c.Dir == "" {
		c.Dir = "."
	}
	if c.NodeTimeout <= 0 {
		c.NodeTimeout = DefaultNodeTimeout
	}
	switch c.Heartbeat {
	case "":
		c.Heartbeat = HeartbeatAuto
	case HeartbeatAuto, HeartbeatXDP, HeartbeatUDP, HeartbeatOff:
	default:
		return a, fmt.Errorf("node: --heartbeat must be auto, xdp, udp or off, not %q", c.Heartbeat)
	}
	switch c.XDPMode {
	case "":
		c.XDPMode = XDPModeAuto
	case XDPModeAuto, XDPModeNative, XDPModeGeneric:
	default:
		return a, fmt.Errorf("node: --xdp-mode must be auto, native or generic, not %q", c.XDPMode)
	}
	if c.MaxLinks < 0 {
		return a, fmt.Errorf("node: --bus-max-links %d is negative", c.MaxLinks)
	}
	if c.MaxLinks == 0 {
		c.MaxLinks = DefaultMaxLinks
	}
	if c.MaxClients < 0 {
		return a, fmt.Errorf("node: --maxclients %d is negative", c.MaxClients)
	}
	if c.MaxMemory < 0 {
		return a, fmt.Errorf("node: --maxmemory %d is negative", c.MaxMemory)
	}
	if _, ok := store.ParsePolicy(cmp.Or(c.MaxMemoryPolicy, "noeviction")); !ok {
		return a, fmt.Errorf("node: --maxmemory-policy must be noeviction, allkeys-lru, allkeys-random, volatile-lru, volatile-random or volatile-ttl, not %q", c.MaxMemoryPolicy)
	}
	if c.MaxMemorySamples < 0 || c.MaxMemorySamples > 64 {
		return a, fmt.Errorf("node: --maxmemory-samples %d is not between 1 and 64", c.MaxMemorySamples)
	}
	if c.OutputLimits == nil {
		l := DefaultOutputLimits
		c.OutputLimits = &l
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.MaxBulkLen == 0 {
		c.MaxBulkLen = resp.DefaultMaxBulkLen
	}
	if c.MaxBulkLen < MinMaxBulkLen {
		return a, fmt.Errorf("node: --proto-max-bulk-len %d is below %d (1mb), the least Redis allows", c.MaxBulkLen, MinMaxBulkLen)
	}
	if c.IOThreads < 0 {
		return a, fmt.Errorf("node: --io-threads %d is negative", c.IOThreads)
	}
	if c.IOThreads == 0 {
		c.IOThreads = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var err error
	if a.bind, err = netip.ParseAddr(c.Bind); err != nil {
		return a, fmt.Errorf("node: --bind %q is not an IP address", c.Bind)
	}
	a.bind = a.bind.Unmap()
	a.announce = a.bind
	if c.AnnounceIP != "" {
		if a.announce, err = netip.ParseAddr(c.AnnounceIP); err != nil {
			return a, fmt.Errorf("node: --announce-ip %q is not an IP address", c.AnnounceIP)
		}
		a.announce = a.announce.Unmap()
	}
	if a.announce.IsUnspecified() {
		return a, errors.New("node: --bind is a wildcard address; set --announce-ip to an address peers can reach")
	}
	if len(c.ClusterSecret) == 0 && !c.InsecureBus && !a.bind.IsLoopback() {
		return a, insecureBusError(a.bind, c.BusPort)
	}
	return a, nil
}

// insecureBusError is the refusal of a node whose bus is reachable beyond
// loopback and has no cluster secret.
func insecureBusError(bind netip.Addr, busPort int) error {
	where := netip.AddrPortFrom(bind, uint16(busPort)).String()
	if bind.IsUnspecified() {
		where = fmt.Sprintf("port %d on every interface (--bind %s)", busPort, bind)
	}
	return fmt.Errorf("node: refusing to start: the cluster bus listens on %s, which is reachable beyond "+
		"loopback, and no cluster secret is set, so anyone who can reach that port can forge bus frames "+
		"(MEET, PING, UPDATE) that take this node's slots. Make one secret for the whole cluster "+
		"(head -c 32 /dev/urandom > cluster.secret && chmod 600 cluster.secret), copy the same file to "+
		"every node and start each with --cluster-secret-file cluster.secret; or pass --insecure-bus "+
		"to run without one on a network you trust completely; or --bind 127.0.0.1 for a node only "+
		"this host reaches", where)
}

// MinSecretLen is the shortest cluster secret ReadSecretFile accepts:
// 16 bytes, 128 bits, once surrounding whitespace is trimmed.
const MinSecretLen = 16

// ReadSecretFile reads the cluster secret from path (--cluster-secret-file)
// and trims surrounding whitespace. It refuses a file that its group or
// others may read or write, and a secret shorter than MinSecretLen; each
// error names the file and says how to fix it.
func ReadSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("node: --cluster-secret-file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("node: --cluster-secret-file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("node: --cluster-secret-file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("node: --cluster-secret-file %s has mode %04o: its group or others may read it, "+
			"and whoever reads it can forge bus frames; run chmod 600 %s (owned by the user the node runs as)",
			path, perm, path)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("node: --cluster-secret-file: %w", err)
	}
	secret := bytes.TrimSpace(b)
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("node: --cluster-secret-file %s holds %d bytes, fewer than the %d a cluster secret needs; "+
			"make a new one with head -c 32 /dev/urandom > %s && chmod 600 %s, and copy it to every node",
			path, len(secret), MinSecretLen, path, path)
	}
	return secret, nil
}

// yesNo renders a bool the way redis.conf and CONFIG GET write it.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
