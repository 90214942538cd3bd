// Package command is the client command layer of a hearsay node: the
// command table, per-connection state, key routing hooks, and the handlers
// for the connection, server and string commands.
//
// The runtime drives it from its network loop:
//
//	d := command.New(st, command.Options{RequirePass: pass, Router: r, Cluster: c})
//	conn := d.NewConn()                       // OnOpen
//	n, out, closeConn := d.Serve(conn, in, out) // OnTraffic: all complete commands in in
//	d.CloseConn(conn)                         // OnClose
package command

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/node/store"
	"github.com/hearsay/hearsay/ring"
)

// Flags describe a command, as in COMMAND's flags field.
type Flags uint32

// Command flags.
const (
	FlagWrite    Flags = 1 << iota // may modify the keyspace
	FlagReadOnly                   // reads keys only (a READONLY replica may serve it)
	FlagFast                       // O(1) or O(log N)
	FlagNoAuth                     // allowed before AUTH
	FlagAdmin                      // administrative
	FlagLoading                    // allowed while loading
	FlagStale                      // allowed with stale replica data
	FlagAsking                     // served on an importing slot without ASKING
	FlagDenyOOM                    // may grow memory: refused over maxmemory (Redis's denyoom)
)

var flagNames = []struct {
	f    Flags
	name string
}{
	{FlagWrite, "write"}, {FlagReadOnly, "readonly"}, {FlagFast, "fast"}, {FlagNoAuth, "no_auth"},
	{FlagAdmin, "admin"}, {FlagLoading, "loading"}, {FlagStale, "stale"}, {FlagAsking, "asking"},
	{FlagDenyOOM, "denyoom"},
}

// Command is one entry of the command table.
type Command struct {
	// Name is the lowercase full name: "get", or "client|setname" for a
	// subcommand.
	Name string
	// Arity is Redis's arity: N means exactly N arguments including the
	// name, -N means at least N.
	Arity int
	Flags Flags
	// FirstKey, LastKey and Step locate the key arguments: 0 means no keys;
	// a negative LastKey counts from the end (-1 is the last argument).
	FirstKey, LastKey, Step int
	// Group is the documentation group ("string", "generic", ...).
	Group string
	// Handler executes the command.
	Handler func(x *Ctx)
	// Sub holds the subcommands of a container command (CLIENT, CONFIG...),
	// keyed by lowercase name.
	Sub map[string]*Command
	// Asking makes the command act as if ASKING preceded it
	// (RESTORE-ASKING).
	Asking bool
	// SelfSequenced marks a write that takes its slots' writer locks and
	// propagates its effects itself (MIGRATE, which must not hold them
	// while it waits on the network).
	SelfSequenced bool
	// TTLOnly marks a write that changes only a key's expiry (EXPIRE,
	// PERSIST): its effect is propagated without the value.
	TTLOnly bool
	// ID is a small number unique to this command in the process, given
	// by the built-in table and Register (1 up to NumIDs()-1; 0 until
	// then). Runtimes index per-command data (metrics) by it instead of
	// hashing the pointer.
	ID int
}

var numIDs atomic.Int64

// NumIDs is one more than the greatest Command.ID given so far.
func NumIDs() int { return int(numIDs.Load()) + 1 }

// assignIDs numbers c and its subcommands that have no ID yet.
func assignIDs(c *Command) {
	if c.ID == 0 {
		c.ID = int(numIDs.Add(1))
	}
	for _, s := range c.Sub {
		assignIDs(s)
	}
}

// HasKeys reports whether the command takes key arguments.
func (c *Command) HasKeys() bool { return c.FirstKey > 0 }

// Router decides where a keyed command runs. The dispatcher has already
// checked that all keys hash to slot (CROSSSLOT). Route returns ok to
// execute here, or the error reply to send instead, without the leading '-'
// ("MOVED 3999 127.0.0.1:6381", "ASK ...", "TRYAGAIN ...", "CLUSTERDOWN
// ..."). It is called concurrently from every event loop.
type Router interface {
	Route(conn *ConnState, cmd *Command, slot uint16, keys [][]byte) (errReply string, ok bool)
}

// Cluster executes CLUSTER subcommands. x.Args[0] is "CLUSTER"; reply
// through x.W.
type Cluster interface {
	ClusterCommand(x *Ctx)
}

// ObserveSample is how many commands of a connection share one timed
// command: one in ObserveSample is timed for Options.Observe.
const ObserveSample = 16

// Options configure a Dispatcher. The zero value serves every key locally
// with no password and cluster support disabled.
type Options struct {
	RequirePass string
	// MaxBulkLen and MaxMultibulkLen bound requests (0: Redis's defaults).
	MaxBulkLen, MaxMultibulkLen int64
	Router                      Router
	Cluster                     Cluster
	// Now returns the time in unix ms; defaults to the wall clock.
	Now func() int64
	// MaxMemory is maxmemory in bytes (0: no limit), compared with the
	// store's UsedMemory before each write; MaxMemoryPolicy says what to
	// do over it and MaxMemorySamples how many keys an eviction samples
	// (0: store.DefaultSamples). CONFIG SET changes all three.
	MaxMemory        int64
	MaxMemoryPolicy  store.Policy
	MaxMemorySamples int
	// Port is reported by INFO and CONFIG GET port.
	Port int
	// MaxClients is reported by INFO clients (default 10000).
	MaxClients int
	// Config adds or overrides CONFIG GET parameters.
	Config map[string]string
	// Info, when set, may render an INFO section itself: it appends the
	// section (with its "# Title" header) to b and returns true, or returns
	// false to use the built-in one. section is lowercase.
	Info func(section string, b []byte) ([]byte, bool)
	// StatsExtra, when set, appends the runtime's own fields to INFO's
	// stats section (replication's sync counters).
	StatsExtra func(b []byte) []byte
	// Role is reported by HELLO and INFO (default "master").
	Role func() string
	// Observe, when set, receives the executed commands of each
	// connection in runs: calls commands of cmd have completed, and d is
	// the duration of the last of them when it was timed, negative
	// otherwise. One command in ObserveSample per connection is timed (two
	// clock reads per command cost several percent of a pipelined GET),
	// and a run ends at a timed command, at another command, and when
	// Serve returns, so a pipeline of GETs costs one call per Serve
	// rather than one per command (shared counters bounce between cores).
	Observe func(cmd *Command, calls int, d time.Duration)
}

// ConnState is the per-connection state. The runtime creates it with
// NewConn and must not share it between goroutines.
type ConnState struct {
	ID              uint64
	Proto           int // 2 or 3
	Name            string
	LibName, LibVer string
	Authenticated   bool
	Asking          bool // one-shot: set by ASKING, cleared after the next command
	ReadOnly        bool // READONLY was sent (replica reads)
	// Master marks the link a replica applies its master's stream on:
	// its commands are not routed and not propagated again.
	Master bool
	// Addr and LocalAddr are set by the runtime for CLIENT INFO.
	Addr, LocalAddr string
	CreatedMs       int64
	// UserData is free for the runtime.
	UserData any
	// OutBudget, when positive, has Serve return after the command whose
	// reply takes the output to OutBudget bytes, with the rest of the
	// input unconsumed, so a pipeline's replies are produced no faster
	// than the client reads them.
	OutBudget int
	// Wake is set by the runtime: Block's resume calls it, from another
	// goroutine, to have the connection served again.
	Wake func()
	// ServeOffset is, while a command runs, how many bytes of Serve's
	// input came before it (a replica's GETACK reply needs its offset).
	ServeOffset int
	// WriteOffset is the replication offset after this connection's last
	// propagated write (WAIT waits for replicas to reach it).
	WriteOffset int64

	parser    resp.Parser
	ctx       Ctx
	keys      [][]byte
	askingSet bool
	closing   bool
	observed  uint32 // commands seen, for sampling durations
	obsCmd    *Command
	obsCalls  int // completed commands of obsCmd not yet given to Observe
	scratch   []byte
	prop      []byte // effects of the current write, for the feed
	detach    Handover
	block     *blockState
	retry     bool // the command was parked by a write pause: run it again
	onClose   []func()
	// The last top-level command and its name as the client spelt it:
	// pipelines repeat a name, which then costs a short compare instead
	// of a case fold and a map lookup.
	lastName [16]byte
	lastLen  int
	lastCmd  *Command
}

// Need returns, after Serve left an incomplete request unconsumed, the
// least number of bytes (from that request's start) the next Serve needs
// to get further, or 0 when unknown. The runtime waits for that many
// before handing the input over again.
func (c *ConnState) Need() int { return c.parser.Need() }

// Ctx is what a handler sees. It is reused for every command of a
// connection; do not keep it.
type Ctx struct {
	D    *Dispatcher
	Conn *ConnState
	Cmd  *Command
	Args [][]byte
	// Keys are the key arguments and Slot their common slot (valid when
	// Cmd.HasKeys()).
	Keys [][]byte
	Slot uint16
	Now  int64 // unix ms
	W    resp.Writer
}

// Store returns the keyspace.
func (x *Ctx) Store() *store.Store { return x.D.st }

// Close makes the connection close after the replies produced so far.
func (x *Ctx) Close() { x.Conn.closing = true }

type statShard struct {
	commands, hits, misses atomic.Int64
	_                      [40]byte
}

// Dispatcher owns the command table and executes requests. It is safe for
// concurrent use by many connections.
type Dispatcher struct {
	st    *store.Store
	opts  Options
	cmds  map[string]*Command
	runID string
	start time.Time

	configMu sync.RWMutex
	config   map[string]string

	migrate     migrateCache
	feedMu      sync.Mutex
	feed        Feed
	propagating atomic.Bool
	pause       writePause
	pauseOn     atomic.Bool
	slotPause   slotPause

	maxMemory atomic.Int64
	policy    atomic.Uint32 // a store.Policy
	samples   atomic.Int32

	nextID      atomic.Uint64
	connected   atomic.Int64
	connections atomic.Int64
	stats       [16]statShard
}

// New returns a dispatcher over st.
func New(st *store.Store, opts Options) *Dispatcher {
	if opts.Now == nil {
		opts.Now = func() int64 { return time.Now().UnixMilli() }
	}
	var id [20]byte
	_, _ = rand.Read(id[:])
	d := &Dispatcher{st: st, opts: opts, cmds: maps.Clone(defaultTable), runID: hex.EncodeToString(id[:]), start: time.Now()}
	d.config = defaultConfig(opts)
	d.maxMemory.Store(max(opts.MaxMemory, 0))
	d.policy.Store(uint32(opts.MaxMemoryPolicy))
	d.samples.Store(int32(cmp.Or(opts.MaxMemorySamples, store.DefaultSamples)))
	d.syncMemoryConfig()
	return d
}

// Store returns the dispatcher's keyspace.
func (d *Dispatcher) Store() *store.Store { return d.st }

// Register adds or replaces a top-level command. Call it before serving.
func (d *Dispatcher) Register(c *Command) {
	assignIDs(c)
	d.cmds[c.Name] = c
}

// SetConfig sets a parameter reported by CONFIG GET.
func (d *Dispatcher) SetConfig(name, value string) {
	d.configMu.Lock()
	d.config[name] = value
	d.configMu.Unlock()
}

// NewConn returns the state for a newly accepted connection.
func (d *Dispatcher) NewConn() *ConnState {
	d.connected.Add(1)
	d.connections.Add(1)
	c := &ConnState{
		ID:            d.nextID.Add(1),
		Proto:         resp.RESP2,
		Authenticated: d.opts.RequirePass == "",
		CreatedMs:     d.opts.Now(),
	}
	c.parser.MaxBulkLen = d.opts.MaxBulkLen
	c.parser.MaxMultibulkLen = d.opts.MaxMultibulkLen
	return c
}

// CloseConn records that a connection went away.
func (d *Dispatcher) CloseConn(c *ConnState) {
	d.connected.Add(-1)
	for _, fn := range c.onClose {
		fn()
	}
	c.onClose = nil
}

func (d *Dispatcher) shard(c *ConnState) *statShard { return &d.stats[c.ID%uint64(len(d.stats))] }

// Serve executes every complete request at the start of in, appending the
// replies to out (pipelining). It returns how many bytes of in were used
// (keep the rest for the next call), the extended out, and whether the
// connection must be closed once out is written (QUIT, protocol error).
// Arguments alias in, which must not change during the call.
func (d *Dispatcher) Serve(c *ConnState, in, out []byte) (consumed int, out2 []byte, closeConn bool) {
	x := &c.ctx
	x.D, x.Conn, x.Now = d, c, d.opts.Now()
	if c.Master {
		// A replica never expires keys on its own clock: its master
		// sends the deletions.
		x.Now = 0
	}
	x.W.Buf = out
	for consumed < len(in) {
		c.parser.Unauthenticated = !c.Authenticated
		args, n, err := c.parser.Parse(in[consumed:])
		if err != nil {
			if err == resp.ErrIncomplete {
				break
			}
			var pe *resp.ProtocolError
			if errors.As(err, &pe) {
				x.W.Error(pe.Msg)
			}
			return len(in), d.endServe(c), true
		}
		c.ServeOffset = consumed
		consumed += n
		if len(args) == 0 {
			continue
		}
		d.exec(x, args)
		if c.retry {
			// Parked by a write pause: the command stays unconsumed and
			// runs again when the connection is woken.
			c.retry = false
			consumed -= n
			break
		}
		if c.closing {
			return consumed, d.endServe(c), true
		}
		if c.OutBudget > 0 && len(x.W.Buf) >= c.OutBudget {
			break // the runtime serves the rest once the output drains
		}
		if c.block != nil {
			break
		}
	}
	return consumed, d.endServe(c), false
}

// endServe ends a Serve call: it gives Observe the pending run, drops the
// references into the caller's buffers and returns the replies.
func (d *Dispatcher) endServe(c *ConnState) []byte {
	d.flushObserved(c)
	x := &c.ctx
	out := x.W.Buf
	x.W.Buf, x.Args, x.Keys = nil, nil, nil
	return out
}

// lookup finds name case-insensitively without allocating.
func lookup(table map[string]*Command, name []byte) *Command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil
	}
	for i, ch := range name {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	return table[string(buf[:len(name)])]
}

// Lookup returns the command named name (case-insensitive), or nil.
func (d *Dispatcher) Lookup(name []byte) *Command { return lookup(d.cmds, name) }

func (d *Dispatcher) exec(x *Ctx, args [][]byte) {
	c := x.Conn
	x.Args, x.Keys, x.W.Proto = args, nil, c.Proto
	d.shard(c).commands.Add(1)
	d.exec1(x)
	if c.retry {
		return // ASKING still holds for the command when it runs again
	}
	if !c.askingSet {
		c.Asking = false
	}
	c.askingSet = false
}

// command finds the top-level command named name, through the
// connection's one-entry cache.
func (d *Dispatcher) command(c *ConnState, name []byte) *Command {
	if c.lastCmd != nil && len(name) == c.lastLen && string(name) == string(c.lastName[:c.lastLen]) {
		return c.lastCmd
	}
	cmd := lookup(d.cmds, name)
	if cmd != nil && len(name) <= len(c.lastName) {
		c.lastLen = copy(c.lastName[:], name)
		c.lastCmd = cmd
	}
	return cmd
}

func (d *Dispatcher) exec1(x *Ctx) {
	args := x.Args
	cmd := d.command(x.Conn, args[0])
	if cmd == nil {
		x.W.Error(unknownCommand(args))
		return
	}
	if cmd.Sub != nil && len(args) >= 2 {
		sub := lookup(cmd.Sub, args[1])
		if sub == nil {
			x.W.Error("ERR unknown subcommand '" + trunc(args[1], 128) + "'. Try " + upper(args[0]) + " HELP.")
			return
		}
		cmd = sub
	}
	x.Cmd = cmd
	if (cmd.Arity > 0 && len(args) != cmd.Arity) || len(args) < -cmd.Arity {
		x.W.Error(arityErr(cmd.Name))
		return
	}
	if !x.Conn.Authenticated && cmd.Flags&FlagNoAuth == 0 {
		x.W.Error("NOAUTH Authentication required.")
		return
	}
	if cmd.FirstKey > 0 {
		if !d.keys(x, cmd) {
			return
		}
	}
	if cmd.Flags&FlagDenyOOM != 0 && d.maxMemory.Load() > 0 && !x.Conn.Master && !d.freeMemory(x.Now) {
		x.W.Error(ErrOOM)
		return
	}
	if d.opts.Observe == nil {
		d.run(x, cmd)
		return
	}
	c := x.Conn
	if c.obsCmd != cmd {
		d.flushObserved(c)
		c.obsCmd = cmd
	}
	if c.observed++; c.observed%ObserveSample != 0 {
		d.run(x, cmd)
		c.obsCalls++
		return
	}
	t0 := time.Now()
	d.run(x, cmd)
	dur := time.Since(t0)
	d.opts.Observe(cmd, c.obsCalls+1, dur)
	c.obsCalls = 0
}

// flushObserved gives Observe the connection's pending run of commands.
func (d *Dispatcher) flushObserved(c *ConnState) {
	if c.obsCalls > 0 {
		d.opts.Observe(c.obsCmd, c.obsCalls, -1)
		c.obsCalls = 0
	}
}

// keys collects the key arguments, enforces CROSSSLOT and asks the router.
func (d *Dispatcher) keys(x *Ctx, cmd *Command) bool {
	args := x.Args
	last := cmd.LastKey
	if last < 0 {
		last += len(args)
	}
	if cmd.Step > 1 && (len(args)-cmd.FirstKey)%cmd.Step != 0 {
		x.W.Error(arityErr(cmd.Name))
		return false
	}
	keys := x.Conn.keys[:0]
	for i := cmd.FirstKey; i <= last && i < len(args); i += cmd.Step {
		keys = append(keys, args[i])
	}
	x.Conn.keys = keys
	x.Keys = keys
	if len(keys) == 0 {
		return true
	}
	slot := ring.KeySlot(keys[0])
	for _, k := range keys[1:] {
		if ring.KeySlot(k) != slot {
			x.W.Error("CROSSSLOT Keys in request don't hash to the same slot")
			return false
		}
	}
	x.Slot = slot
	if cmd.Asking {
		x.Conn.Asking = true
	}
	if d.opts.Router != nil && !x.Conn.Master {
		if msg, ok := d.opts.Router.Route(x.Conn, cmd, slot, keys); !ok {
			x.W.Error(msg)
			return false
		}
	}
	return true
}

func arityErr(name string) string {
	return "ERR wrong number of arguments for '" + name + "' command"
}

// unknownCommand formats Redis 7's reply, quoting at most about 128 bytes
// of arguments.
func unknownCommand(args [][]byte) string {
	b := make([]byte, 0, 128)
	b = append(b, "ERR unknown command '"...)
	b = append(b, trunc(args[0], 128)...)
	b = append(b, "', with args beginning with: "...)
	quoted := 0
	for _, a := range args[1:] {
		if quoted >= 128 {
			break
		}
		s := trunc(a, 128-quoted)
		b = append(b, '\'')
		b = append(b, s...)
		b = append(b, '\'', ' ')
		quoted += len(s) + 3
	}
	return string(b)
}

func trunc(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

func upper(b []byte) string {
	out := []byte(string(b))
	for i, ch := range out {
		if ch >= 'a' && ch <= 'z' {
			out[i] = ch - ('a' - 'A')
		}
	}
	return string(out)
}

// eq reports whether b equals the lowercase ASCII word s, ignoring case.
func eq(b []byte, s string) bool { return resp.IsWord(b, s) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
