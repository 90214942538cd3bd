package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hearsay/hearsay/internal/procs"
	"github.com/hearsay/hearsay/node"
)

func init() {
	subcommands["node"] = subcommand{summary: "run one cluster node", run: runNode}
}

// defaultTimerSlack lets the kernel batch an idle node's timer wakeups
// (see procs.ApplyTimerSlack): at 4 ms, 100 idle nodes on one 2-CPU host
// made about half the context switches and CPU they made at the kernel's
// 50 µs, while heartbeat rounds, 250 ms apart at a 1 s node timeout, move by
// at most 4 ms.
const defaultTimerSlack = 4 * time.Millisecond

// timerSlackFor is the slack --timer-slack defaults to for a node that runs
// with procs Ps: defaultTimerSlack with one, none with more. With several
// Ps the runtime stops the world (twice in every GC cycle) by sleeping
// 100 µs at a time until the other Ps stop, and a slack of milliseconds
// would stretch each of those sleeps; with one P there is nothing to wait
// for.
func timerSlackFor(procs int) time.Duration {
	if procs == 1 {
		return defaultTimerSlack
	}
	return 0
}

// effectiveTimerSlack is the slack to apply for the --timer-slack flag,
// 0 for none: at most a fiftieth of the node timeout, so that failure
// detection moves by at most 2 %.
func effectiveTimerSlack(flag, nodeTimeout time.Duration) (time.Duration, error) {
	if flag < 0 {
		return 0, fmt.Errorf("%v is negative", flag)
	}
	return min(flag, nodeTimeout/50), nil
}

// runNode parses the flags of `hearsay node` and runs the node until
// SIGTERM or SIGINT, which shut it down gracefully.
func runNode(args []string) int {
	fs := flag.NewFlagSet("hearsay node", flag.ContinueOnError)
	var (
		cfg         node.Config
		secretFile  string
		logLevel    string
		requirePass credential
		masterAuth  credential
	)
	fs.IntVar(&cfg.Port, "port", node.DefaultPort, "RESP client port")
	fs.IntVar(&cfg.BusPort, "bus-port", 0, "cluster bus port (default port+10000)")
	fs.StringVar(&cfg.Bind, "bind", "127.0.0.1", "address to listen on")
	fs.StringVar(&cfg.AnnounceIP, "announce-ip", "", "address announced to peers and clients (default: --bind)")
	fs.StringVar(&cfg.Dir, "dir", ".", "directory of the node config file ("+node.StateFile+")")
	fs.DurationVar(&cfg.NodeTimeout, "node-timeout", node.DefaultNodeTimeout, "how long a silent peer takes to become PFAIL")
	fs.IntVar(&cfg.ReplicaValidityFactor, "replica-validity-factor", 10, "a replica whose master link was down longer than node-timeout × this (plus 10s) does not fail over automatically; 0 means any age (cluster-replica-validity-factor)")
	fs.Func("cluster-require-full-coverage", "yes: the cluster is down while any slot is unassigned or served by a FAIL master; no: only a lost majority takes it down (default yes, as redis.conf)", func(s string) error {
		full, err := parseYesNo(s)
		cfg.PartialCoverage = !full
		return err
	})
	cfg.MigrationBarrier = 1
	fs.Func("migration-barrier", "a spare replica moves to a master left without working replicas only if its own master keeps more than this many (cluster-migration-barrier, default 1)", func(s string) error {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return fmt.Errorf("want a count of replicas (0 or more), not %q", s)
		}
		cfg.MigrationBarrier = v
		return nil
	})
	fs.Func("cluster-allow-replica-migration", "no: replicas never move to orphaned masters (default yes, as redis.conf)", func(s string) error {
		allow, err := parseYesNo(s)
		cfg.NoReplicaMigration = !allow
		return err
	})
	fs.Func("cluster-allow-reads-when-down", "yes: while the cluster is down, read-only commands on slots this node serves still run (default no, as redis.conf)", func(s string) (err error) {
		cfg.AllowReadsWhenDown, err = parseYesNo(s)
		return err
	})
	fs.StringVar(&cfg.Heartbeat, "heartbeat", node.HeartbeatAuto, "heartbeat transport: auto (xdp, else udp)|xdp|udp|off (bus pings)")
	fs.StringVar(&cfg.XDPInterface, "xdp-iface", "", "interface for the XDP heartbeat program (default: the one holding --bind; lo attaches in generic mode)")
	fs.StringVar(&cfg.XDPMode, "xdp-mode", node.XDPModeAuto, "XDP attach mode for the first node on the interface: auto (native, else generic)|native|generic (a veth whose peer has no XDP program needs generic)")
	fs.StringVar(&cfg.HTTP, "http", "", "listen address for the web view, /metrics and /status (off when empty; beyond loopback it needs --http-auth)")
	httpAuth := httpAuthFlags(fs, &cfg)
	fs.StringVar(&secretFile, "cluster-secret-file", "", "file holding the cluster secret that authenticates bus frames and keys the heartbeat MAC")
	fs.BoolVar(&cfg.InsecureBus, "insecure-bus", false, "run without --cluster-secret-file although the bus is reachable beyond loopback (anyone reaching the bus port can then take this node's slots)")
	fs.StringVar(&requirePass.value, "requirepass", "", "password clients must AUTH with (visible in ps: prefer --requirepass-file or $"+envRequirePass+")")
	fs.StringVar(&requirePass.file, "requirepass-file", "", "file holding the --requirepass password (mode 600; one trailing newline is dropped)")
	fs.StringVar(&cfg.DBFilename, "dbfilename", "dump.rdb", "snapshot file in --dir: SAVE and BGSAVE write it, the node loads it at start")
	fs.BoolVar(&cfg.SaveOnShutdown, "save-on-shutdown", true, "write the snapshot when the node stops (SIGTERM)")
	fs.StringVar(&masterAuth.value, "masterauth", "", "password a replica sends its master (default: --requirepass; visible in ps: prefer --masterauth-file or $"+envMasterAuth+")")
	fs.StringVar(&masterAuth.file, "masterauth-file", "", "file holding the --masterauth password (mode 600; one trailing newline is dropped)")
	fs.Func("repl-backlog-size", "replication backlog for partial resyncs, as redis.conf's repl-backlog-size (default 1mb)", func(s string) (err error) {
		cfg.ReplBacklogSize, err = parseMemory(s)
		return err
	})
	fs.Func("proto-max-bulk-len", "longest bulk string a client may send, as redis.conf's proto-max-bulk-len (default 512mb, at least 1mb)", func(s string) (err error) {
		cfg.MaxBulkLen, err = parseMemory(s)
		return err
	})
	outLimits := node.DefaultOutputLimits
	cfg.OutputLimits = &outLimits
	fs.Func("client-output-buffer-limit", "redis.conf's client-output-buffer-limit: <class> <hard> <soft> <soft seconds>, class normal, replica or pubsub (default \"normal 1gb 256mb 60 replica 256mb 64mb 60 pubsub 32mb 8mb 60\")", func(s string) error {
		return parseOutputLimits(s, &outLimits)
	})
	fs.Func("maxmemory", "most bytes of keys and values a master holds, as redis.conf's maxmemory (e.g. 100mb, 1gb; default 0, no limit); over it --maxmemory-policy applies", func(s string) (err error) {
		cfg.MaxMemory, err = parseMemory(s)
		return err
	})
	fs.StringVar(&cfg.MaxMemoryPolicy, "maxmemory-policy", "noeviction", "what a write over --maxmemory does: noeviction (OOM error)|allkeys-lru|allkeys-random|volatile-lru|volatile-random|volatile-ttl")
	fs.IntVar(&cfg.MaxMemorySamples, "maxmemory-samples", 5, "keys sampled per eviction, as redis.conf's maxmemory-samples")
	fs.IntVar(&cfg.MaxClients, "maxclients", node.DefaultMaxClients, "most client connections and bus links together (Redis's maxclients); lowered to fit the open file limit")
	fs.IntVar(&cfg.MaxLinks, "bus-max-links", node.DefaultMaxLinks, "most bus links kept open in each direction; the least recently used one makes room")
	fs.IntVar(&cfg.IOThreads, "io-threads", 0, "event loops serving clients (0: one per two CPUs, at least one)")
	fs.StringVar(&logLevel, "log-level", "info", "debug|info|warn|error")
	var timerSlack time.Duration
	timerSlackSet := false // not given: timerSlackFor decides
	fs.Func("timer-slack", "how late the kernel may fire this process's timers to batch wakeups, at most node-timeout/50 (default 4ms when the event loops share one P, as with --io-threads 1, else 0; 0 keeps the inherited slack, e.g. systemd's TimerSlackNSec)", func(s string) (err error) {
		timerSlack, err = time.ParseDuration(s)
		timerSlackSet = true
		return err
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "hearsay node: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "hearsay node: --log-level: %v\n", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if cfg.IOThreads == 0 {
		cfg.IOThreads = max(1, runtime.GOMAXPROCS(0)/2) // node.Config's default, resolved here for the governor
	}
	if !timerSlackSet {
		timerSlack = timerSlackFor(procs.Planned(cfg.IOThreads))
	}
	slack, err := effectiveTimerSlack(timerSlack, cfg.NodeTimeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hearsay node: --timer-slack: %v\n", err)
		return 2
	}
	if slack > 0 {
		// Before anything is opened or read: this may exec the binary anew.
		if err := procs.ApplyTimerSlack(slack); err != nil {
			cfg.Logger.Warn("running with the inherited timer slack", "err", err)
		}
	}
	if err := httpAuth(); err != nil {
		fmt.Fprintf(os.Stderr, "hearsay node: %v\n", err)
		return 2
	}
	if secretFile != "" {
		secret, err := node.ReadSecretFile(secretFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "hearsay %v\n", err)
			return 2
		}
		cfg.ClusterSecret = secret
	}
	if cfg.RequirePass, err = requirePass.resolve("requirepass", envRequirePass, os.Getenv); err != nil {
		fmt.Fprintf(os.Stderr, "hearsay node: %v\n", err)
		return 2
	}
	if cfg.MasterAuth, err = masterAuth.resolve("masterauth", envMasterAuth, os.Getenv); err != nil {
		fmt.Fprintf(os.Stderr, "hearsay node: %v\n", err)
		return 2
	}
	cfg.Procs = procs.New(cfg.IOThreads)
	n, err := node.New(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "hearsay node: %s\n", strings.TrimPrefix(err.Error(), "node: "))
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	start := time.Now()
	if err := n.Run(ctx); err != nil {
		cfg.Logger.Error("node stopped", "err", err, "uptime", time.Since(start).Round(time.Millisecond))
		return 1
	}
	cfg.Logger.Info("node stopped", "uptime", time.Since(start).Round(time.Millisecond))
	return 0
}

// The environment variables that hold the node's passwords when neither
// the flag nor its -file form is given.
const (
	envRequirePass = "HEARSAY_REQUIREPASS"
	envMasterAuth  = "HEARSAY_MASTERAUTH"
)

// credential is a password given on the command line (--name), in a file
// (--name-file) or in the environment, in that order of precedence; the
// flag and the file together are an error.
type credential struct {
	value, file string
}

// resolve returns the password: the flag's value, else the file's
// contents without one trailing newline, else the environment variable
// env. A file its group or others may read or write is refused, as the
// cluster secret file is.
func (c credential) resolve(name, env string, getenv func(string) string) (string, error) {
	switch {
	case c.value != "" && c.file != "":
		return "", fmt.Errorf("--%s and --%s-file both set; give the password once (the file keeps it out of ps)", name, name)
	case c.value != "":
		return c.value, nil
	case c.file != "":
		st, err := os.Stat(c.file)
		if err != nil {
			return "", fmt.Errorf("--%s-file: %w", name, err)
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			return "", fmt.Errorf("--%s-file %s has mode %04o: its group or others may read the password; run chmod 600 %s", name, c.file, perm, c.file)
		}
		b, err := os.ReadFile(c.file)
		if err != nil {
			return "", fmt.Errorf("--%s-file: %w", name, err)
		}
		pass := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pass == "" {
			return "", fmt.Errorf("--%s-file %s is empty", name, c.file)
		}
		return pass, nil
	}
	return getenv(env), nil
}
