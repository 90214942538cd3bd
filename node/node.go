package node

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/internal/ratelog"
	"github.com/hearsay/hearsay/node/command"
	"github.com/hearsay/hearsay/node/repl"
	"github.com/hearsay/hearsay/node/store"
	"github.com/hearsay/hearsay/node/web"
)

// clockOrigin offsets the core's clock so that no real event happens at
// time zero, which some core fields use to mean "never".
const clockOrigin = time.Hour

// errShutdown is returned to admin commands once the bus loop is gone.
var errShutdown = errors.New("ERR the node is shutting down")

// Node is one hearsay node: the core, the bus and client engines, the store
// and the node config file.
type Node struct {
	cfg   Config
	addrs addrs
	log   *slog.Logger
	start time.Time // origin of the core's monotonic clock
	// writableAt is when a master restarted with slots may serve them
	// (Redis's 2-second writable delay); zero for a fresh node.
	writableAt time.Time

	// core is owned by the bus event loop once Run starts; everything else
	// reaches it through exec.
	core *gossip.Core

	store   *store.Store
	disp    *command.Dispatcher
	bus     *bus
	cli     *clientServer
	hb      *heartbeatDriver
	metrics *nodeMetrics
	http    *http.Server
	web     *web.Hub // the web view's event stream (webview.go)
	repl    *repl.Manager
	saver   *saver
	mig     *migrator // atomic slot migrations, owned by the bus loop
	// masterAuth is the password this node sends to a master it follows
	// and to the target of a slot migration.
	masterAuth string

	view atomic.Pointer[routeView]
	// stateW encodes the node config file; its buffer is reused by every
	// save, all of which run where the core is owned.
	stateW jsonWriter

	// warn rate-limits warnings that a peer or client can cause at will.
	warn *ratelog.Limiter
	// maxClients is Config.MaxClients after fitting the fd limit; conns
	// counts open client connections and bus links against it.
	maxClients int
	conns      atomic.Int64
	cliAcc     *acceptor
	busAcc     *acceptor

	stopping  atomic.Bool
	closeOnce sync.Once
	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when Run has returned
}

// New loads (or creates) the node's identity and state from cfg.Dir and
// prepares the runtime. Nothing listens until Run.
func New(cfg Config) (*Node, error) {
	a, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.HTTP != "" {
		if err := web.CheckBind(cfg.HTTP, cfg.HTTPAuth); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	st, err := loadState(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("node: loading the node config file: %w", err)
	}
	// Read before anything is written: a node that cannot trust its
	// migration records must not even create its identity.
	migRecs, err := loadMigrations(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("node: loading the slot migration records: %w", err)
	}
	start := time.Now()
	n := &Node{
		cfg: cfg, addrs: a, log: cfg.Logger, start: start,
		store: store.New(), closing: make(chan struct{}), done: make(chan struct{}),
		warn: ratelog.New(cfg.Logger), web: web.NewHub(0, 0),
	}
	if n.maxClients, err = fitFDLimit(cfg.MaxClients, n.log.Warn); err != nil {
		return nil, err
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	gcfg := gossip.Config{
		Addr:              wire.Addr{IP: a.announce, Port: uint16(cfg.Port), BusPort: uint16(cfg.BusPort)},
		NodeTimeout:       cfg.NodeTimeout,
		ValidityFactor:    validityFactor(cfg.ReplicaValidityFactor),
		MigrationBarrier:  migrationBarrier(&cfg),
		ExternalHeartbeat: cfg.Heartbeats != nil || cfg.Heartbeat != HeartbeatOff,
		// Core time t is wall time start+(t-clockOrigin): this phase puts
		// heartbeat rounds on wall-clock multiples of the interval, the
		// same instants on every node.
		HeartbeatPhase: time.Duration(start.UnixNano()) - clockOrigin,
		Seed:           binary.LittleEndian.Uint64(seed[:]),
	}
	if st == nil {
		gcfg.ID = newNodeID()
	}
	if n.core, err = gossip.New(gcfg, st); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if st == nil {
		// Make the new identity durable before anyone can learn it.
		if err := n.saveState(true); err != nil {
			return nil, fmt.Errorf("node: writing the node config file: %w", err)
		}
		n.log.Info("created a new node", "id", n.core.ID().String(), "dir", cfg.Dir)
	} else {
		if n.core.SlotCount(n.core.ID()) > 0 && n.core.KnownNodes() > 1 {
			// Alone, nobody can have taken the slots over: no delay.
			n.writableAt = time.Now().Add(writableDelay)
		}
		cur, conf := n.core.Epochs()
		n.log.Info("loaded node config", "id", n.core.ID().String(), "current_epoch", cur, "config_epoch", conf,
			"known_nodes", n.core.KnownNodes(), "slots", n.core.SlotCount(n.core.ID()))
	}
	n.metrics = newMetrics(n)
	n.bus = newBus(n)
	n.cli = &clientServer{n: n, booted: make(chan struct{})}
	if hb := cfg.Heartbeats; hb != nil || cfg.Heartbeat != HeartbeatOff {
		if hb == nil {
			t, err := openHeartbeats(&n.cfg, a, n.core.ID(), n.now, heartbeatPingInterval(n.core.Config().HeartbeatInterval))
			if err != nil {
				return nil, err
			}
			hb = t
		}
		n.hb = newHeartbeatDriver(n, hb)
		n.metrics.registerHeartbeatMetrics(n.hb)
	} else {
		n.log.Info("heartbeats off; liveness uses bus pings")
	}
	n.disp = command.New(n.store, command.Options{
		Router:      n,
		Cluster:     n,
		RequirePass: cfg.RequirePass,
		MaxBulkLen:  cfg.MaxBulkLen,
		Port:        cfg.Port,
		Config: map[string]string{
			"cluster-node-timeout":            strconv.FormatInt(cfg.NodeTimeout.Milliseconds(), 10),
			"cluster-port":                    strconv.Itoa(cfg.BusPort),
			"cluster-config-file":             StateFile,
			"cluster-announce-ip":             cfg.AnnounceIP,
			"bind":                            cfg.Bind,
			"dir":                             cfg.Dir,
			"maxclients":                      strconv.Itoa(n.maxClients),
			"cluster-require-full-coverage":   yesNo(!cfg.PartialCoverage),
			"cluster-allow-reads-when-down":   yesNo(cfg.AllowReadsWhenDown),
			"cluster-replica-validity-factor": strconv.Itoa(cfg.ReplicaValidityFactor),
			"cluster-migration-barrier":       strconv.Itoa(max(cfg.MigrationBarrier, 0)),
			"cluster-allow-replica-migration": yesNo(!cfg.NoReplicaMigration),
			"client-output-buffer-limit":      cfg.OutputLimits.String(),
		},
		MaxClients:       n.maxClients,
		MaxMemory:        cfg.MaxMemory,
		MaxMemoryPolicy:  maxMemoryPolicy(cfg.MaxMemoryPolicy),
		MaxMemorySamples: cfg.MaxMemorySamples,
		Info:             n.infoSection,
		StatsExtra: func(b []byte) []byte {
			if n.repl == nil {
				return b
			}
			return n.repl.Stats(b)
		},
		Role:    n.role,
		Observe: n.metrics.observe,
	})
	masterAuth := cfg.MasterAuth
	if masterAuth == "" {
		masterAuth = cfg.RequirePass // one password for the whole cluster is the common setup
	}
	n.masterAuth = masterAuth
	n.repl = repl.New(repl.Config{
		Store: n.store, Dispatcher: n.disp, BacklogSize: cfg.ReplBacklogSize,
		ListenPort: cfg.Port, MasterAuth: masterAuth, Logger: n.log,
		OnSync: n.metrics.replSync, OnWait: n.metrics.replWait, Busy: cfg.Procs.Busy,
		HardLimit: replicaLimit(cfg.OutputLimits.Replica.Hard), SoftLimit: replicaLimit(cfg.OutputLimits.Replica.Soft),
		SoftSeconds: replicaSoftSeconds(cfg.OutputLimits.Replica.SoftSeconds),
	})
	n.metrics.registerRepl(n.repl)
	n.saver = &saver{n: n}
	for _, c := range n.saver.commands() {
		n.disp.Register(c)
	}
	n.disp.SetConfig("dbfilename", cfg.DBFilename)
	if err := n.saver.load(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	for _, c := range n.repl.Commands() {
		n.disp.Register(c)
	}
	n.disp.SetConfig("repl-backlog-size", strconv.FormatInt(n.repl.Stream().Info().BacklogSize, 10))
	n.publish()
	// Migrations found at start settle before any client or peer is
	// served: a source that had granted pauses the slots again, a target
	// drops what it received (migrate's restart rules).
	n.mig = newMigrator(n)
	if err := n.mig.restore(migRecs); err != nil {
		return nil, fmt.Errorf("node: settling the slot migration records: %w", err)
	}
	return n, nil
}

// maxMemoryPolicy reads a policy name that Config's check accepted.
func maxMemoryPolicy(name string) store.Policy {
	p, _ := store.ParsePolicy(cmp.Or(name, "noeviction"))
	return p
}

func newNodeID() wire.NodeID {
	var id wire.NodeID
	for id.IsZero() {
		_, _ = rand.Read(id[:])
	}
	return id
}

// ID returns the node's ID as it was when New returned. A hard reset
// changes it; Status reports the current one.
func (n *Node) ID() wire.NodeID { return wire.NodeID(n.view.Load().self) }

// now is the core's clock: monotonic, from an arbitrary origin.
func (n *Node) now() time.Duration { return time.Since(n.start) + clockOrigin }

// unixMs converts a core time to wall-clock unix milliseconds.
func (n *Node) unixMs(d time.Duration) int64 {
	if d == 0 {
		return 0
	}
	return n.start.Add(d - clockOrigin).UnixMilli()
}

// saveState writes the node config file, with fsyncs unless sync is
// false. It must run where the core may be read: in New, on the bus loop,
// or after the loop stopped.
func (n *Node) saveState(sync bool) error {
	data := n.stateW.state(n.core.State(), n.cfg.Port, n.cfg.BusPort, time.Now())
	t0 := time.Now()
	err := writeFile(n.cfg.Dir, StateFile, data, sync)
	if n.metrics != nil {
		n.metrics.persistSeconds.UpdateDuration(t0)
	}
	return err
}

// exec runs fn on the bus event loop, which owns the core, and waits for
// it. It is how client loops reach the core without locks. It must not be
// called from the bus loop itself.
func (n *Node) exec(fn func(now time.Duration)) error {
	select {
	case <-n.bus.ready:
	case <-n.done:
		return errShutdown
	}
	if n.stopping.Load() {
		return errShutdown
	}
	loop := n.bus.loop.Load()
	ran := make(chan struct{})
	err := (*loop).Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		n.bus.flush()
		fn(n.now())
		close(ran)
		// Hand the P to the caller now. With one P for both loops, the
		// caller readied by close would otherwise wait until this loop is
		// back in epoll_wait and the runtime's monitor takes the P from
		// the system call: up to the timer slack, a few milliseconds. The
		// caller answers a client; this loop only goes back to sleep, so
		// it is the one that can wait.
		runtime.Gosched()
		return nil
	}))
	if err != nil {
		return errShutdown
	}
	select {
	case <-ran:
		return nil
	case <-n.done:
		return errShutdown
	}
}

// admin runs one admin call of the core on the loop and applies its Ready
// (persisting before sending) before returning the call's error.
func (n *Node) admin(fn func(c *gossip.Core, now time.Duration) (gossip.Ready, error)) error {
	return n.adminWrite(fn, true)
}

// adminDeferSync is admin for the changes Redis writes to its config file
// before it replies but does not fsync (slot assignment, the first
// configEpoch): the node config file is replaced before the reply and
// made durable by the coalesced write persistCoalesce later, instead of
// two fsyncs per command. redis-cli --cluster create sends two of them
// to every node, one node after the other. A crash of the process loses
// nothing; a loss of power within that window can leave the old file,
// as with Redis. Anything else in the same batch that needs the fsync
// (a vote, an epoch won in an election) still gets it.
func (n *Node) adminDeferSync(fn func(c *gossip.Core, now time.Duration) (gossip.Ready, error)) error {
	return n.adminWrite(fn, false)
}

func (n *Node) adminWrite(fn func(c *gossip.Core, now time.Duration) (gossip.Ready, error), fsync bool) error {
	var err error
	if xerr := n.exec(func(now time.Duration) {
		var r gossip.Ready
		r, err = fn(n.core, now)
		n.bus.applyNow(r, fsync)
	}); xerr != nil {
		return xerr
	}
	return err
}

// Run serves until ctx is done or Close is called, then shuts down
// gracefully: clients are closed, the final state is written, and the bus
// stops. It returns an error if an engine cannot start.
func (n *Node) Run(ctx context.Context) error {
	defer close(n.done)
	if n.hb != nil {
		// Runs after the engines stopped: the last XDP node on an
		// interface detaches the program and unpins it.
		defer func() {
			if err := n.hb.hb.Close(); err != nil {
				n.log.Warn("heartbeat: close", "err", err)
			}
		}()
	}
	defer n.warn.Close()
	errc := make(chan error, 3)
	busLn, err := listenTCP(net.JoinHostPort(n.cfg.Bind, strconv.Itoa(n.cfg.BusPort)))
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	cliLn, err := listenTCP(net.JoinHostPort(n.cfg.Bind, strconv.Itoa(n.cfg.Port)))
	if err != nil {
		busLn.Close()
		return fmt.Errorf("client port: %w", err)
	}
	defer busLn.Close()
	defer cliLn.Close()
	n.busAcc = n.newAcceptor("bus", busLn, func() gnet.Engine { return n.bus.eng }, "", n.metrics.acceptErrorsBus.Inc)
	n.cliAcc = n.newAcceptor("client", cliLn, func() gnet.Engine { return n.cli.eng }, errMaxClients, n.metrics.acceptErrorsClient.Inc)
	logger := gnetLogger{n.log}
	busPH, busDir, err := placeholderAddr("bus")
	if err != nil {
		return err
	}
	defer os.RemoveAll(busDir)
	cliPH, cliDir, err := placeholderAddr("client")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cliDir)
	go func() {
		errc <- fmt.Errorf("bus engine: %w", gnet.Run(n.bus, busPH,
			gnet.WithNumEventLoop(1), gnet.WithTicker(true),
			gnet.WithLoadBalancing(gnet.LeastConnections), gnet.WithLogger(logger)))
	}()
	go func() {
		errc <- fmt.Errorf("client engine: %w", gnet.Run(n.cli, cliPH,
			gnet.WithNumEventLoop(n.cfg.IOThreads), gnet.WithLoadBalancing(gnet.LeastConnections), gnet.WithTicker(true),
			gnet.WithLogger(logger)))
	}()
	// Accept once both engines run (their first ticks).
	go func() {
		for _, ch := range []chan struct{}{n.bus.booted, n.cli.booted} {
			select {
			case <-ch:
			case <-n.closing:
				return
			case <-n.done:
				return
			}
		}
		go n.busAcc.run()
		go n.cliAcc.run()
	}()
	if n.cfg.HTTP != "" {
		ln, err := net.Listen("tcp", n.cfg.HTTP)
		if err != nil {
			n.stopping.Store(true)
			n.stopEngines()
			return fmt.Errorf("node: --http: %w", err)
		}
		n.http = &http.Server{Handler: n.webHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = n.http.Serve(ln) }()
	}
	go n.expireLoop()
	n.repl.Start()
	defer n.repl.Close()

	var runErr error
	select {
	case <-ctx.Done():
	case <-n.closing:
	case runErr = <-errc:
	case <-n.bus.ready:
		procs, _ := n.cfg.Procs.Procs()
		n.log.Info("node ready", "id", n.ID().String(), "port", n.cfg.Port, "bus_port", n.cfg.BusPort,
			"io_threads", n.cfg.IOThreads, "gomaxprocs", procs)
		select {
		case <-ctx.Done():
		case <-n.closing:
		case runErr = <-errc:
		}
	}
	n.log.Info("shutting down", "err", runErr)
	n.stopping.Store(true)
	n.stopEngines()
	if n.cfg.SaveOnShutdown {
		if err := n.saver.save(); err != nil {
			n.log.Error("cannot write the snapshot on shutdown", "err", err)
		}
	}
	// The loop has stopped, so the core is ours again: write whatever
	// coalesced change is still waiting.
	if n.bus.dirty {
		if err := n.saveState(true); err != nil {
			n.log.Error("cannot write the node config file", "err", err)
		}
	}
	if n.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.http.Shutdown(sctx)
		cancel()
	}
	return runErr
}

func (n *Node) stopEngines() {
	for _, a := range []*acceptor{n.cliAcc, n.busAcc} {
		if a != nil {
			_ = a.ln.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n.cli.eng.Validate() == nil {
		_ = n.cli.eng.Stop(ctx)
	}
	if n.bus.eng.Validate() == nil {
		_ = n.bus.eng.Stop(ctx)
	}
}

// Close asks Run to shut down and waits until it has.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { close(n.closing) })
	<-n.done
	return nil
}

// Active expiry runs every expirePeriod for at most expireBudget, a
// quarter of one core as Redis's slow cycle allows itself, and within that
// keeps going while it finds expired keys, so expired memory is reclaimed
// as fast as clients create it rather than at a fixed rate.
const (
	expirePeriod = 100 * time.Millisecond
	expireBudget = expirePeriod / 4
	// expireIdlePeriod is how often a replica's expiry looks whether the
	// node was promoted.
	expireIdlePeriod = time.Second
)

// expireLoop runs the store's active expiry, as Redis's serverCron does.
// While no key has a TTL it sleeps until one gets one, and on a replica
// it looks only once a second, so that an idle node does not wake for
// nothing.
func (n *Node) expireLoop() {
	t := time.NewTimer(expirePeriod)
	defer t.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-n.closing:
			return
		case now := <-t.C:
			next := expirePeriod
			switch {
			case n.repl.IsReplica():
				// Nothing to do: a replica's master sends the deletions.
				// Polled, to notice a promotion.
				next = expireIdlePeriod
			case n.store.LenWithTTL() == 0:
				// Nothing can expire until a key gets an expiry: sleep
				// until one does rather than wake to find nothing.
				select {
				case <-n.done:
					return
				case <-n.closing:
					return
				case <-n.store.WaitTTL():
				}
			default:
				n.expireCycle(now)
			}
			t.Reset(next)
		}
	}
}

// expireCycle runs active expiry for up to expireBudget: passes over every
// slot while the last one deleted something and time is left.
func (n *Node) expireCycle(now time.Time) {
	start := time.Now()
	stop := func() bool { return time.Since(start) >= expireBudget }
	for {
		deleted, completed := n.store.ExpireUntil(now.UnixMilli(), stop)
		n.metrics.expireCycleKeys.Add(deleted)
		if !completed || deleted == 0 {
			break
		}
	}
	n.metrics.expireCycleSeconds.UpdateDuration(start)
}

// busAddrOf is the bus address of a node view.
func busAddrOf(a wire.Addr) netip.AddrPort { return netip.AddrPortFrom(a.IP, a.BusPort) }

// gnetLogger routes gnet's logs to slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }

// validityFactor maps Redis's setting (0 = any age) onto the core's
// (negative = any age, 0 = the default).
func validityFactor(f int) int {
	if f <= 0 {
		return -1
	}
	return f
}

// migrationBarrier maps the node's replica-migration settings onto the
// core's: negative turns migration off.
func migrationBarrier(cfg *Config) int {
	if cfg.NoReplicaMigration {
		return -1
	}
	return max(cfg.MigrationBarrier, 0)
}

// replicaLimit maps a client-output-buffer-limit replica size, where 0
// means no limit (redis.conf), to the replication package's, where 0 means
// its default.
func replicaLimit(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}

// replicaSoftSeconds does the same for the soft limit's seconds: 0 drops a
// replica as soon as it is over the soft limit.
func replicaSoftSeconds(v int) int {
	if v == 0 {
		return -1
	}
	return v
}
