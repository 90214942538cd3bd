package command

import (
	"cmp"
	"crypto/subtle"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/node/store"
)

// RedisVersion is the Redis version hearsay reports to clients and tools.
const RedisVersion = "7.0.15"

func cmdPing(x *Ctx) {
	switch len(x.Args) {
	case 1:
		x.W.Simple("PONG")
	case 2:
		x.W.Bulk(x.Args[1])
	default:
		x.W.Error(arityErr("ping"))
	}
}

func cmdEcho(x *Ctx) { x.W.Bulk(x.Args[1]) }

func cmdQuit(x *Ctx) {
	x.W.OK()
	x.Close()
}

func cmdSelect(x *Ctx) {
	db, ok := resp.ParseInt(x.Args[1])
	if !ok || db < -1<<31 || db > 1<<31-1 {
		x.W.Error(errNotInt)
		return
	}
	if db != 0 {
		// hearsay is always a cluster node; Redis answers this in cluster mode.
		x.W.Error("ERR SELECT is not allowed in cluster mode")
		return
	}
	x.W.OK()
}

func (d *Dispatcher) role() string {
	if d.opts.Role != nil {
		return d.opts.Role()
	}
	return "master"
}

// checkAuth reports whether user/pass are valid for the default user: the
// configured requirepass, or anything when none is set ("nopass").
func (d *Dispatcher) checkAuth(user, pass []byte) bool {
	if string(user) != "default" {
		return false
	}
	rp := d.opts.RequirePass
	return rp == "" || subtle.ConstantTimeCompare(pass, []byte(rp)) == 1
}

const errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."

func cmdAuth(x *Ctx) {
	args := x.Args
	var user, pass []byte
	switch len(args) {
	case 2:
		if x.D.opts.RequirePass == "" {
			x.W.Error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			return
		}
		user, pass = []byte("default"), args[1]
	case 3:
		user, pass = args[1], args[2]
	default:
		x.W.Error(errSyntax)
		return
	}
	if !x.D.checkAuth(user, pass) {
		x.W.Error(errWrongPass)
		return
	}
	x.Conn.Authenticated = true
	x.W.OK()
}

func validName(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

const errClientName = "ERR Client names cannot contain spaces, newlines or special characters."

// HELLO [protover [AUTH username password] [SETNAME clientname]]
func cmdHello(x *Ctx) {
	args, c := x.Args, x.Conn
	proto := c.Proto
	if len(args) >= 2 {
		v, ok := resp.ParseInt(args[1])
		if !ok {
			x.W.Error("ERR Protocol version is not an integer or out of range")
			return
		}
		if v < 2 || v > 3 {
			x.W.Error("NOPROTO unsupported protocol version")
			return
		}
		proto = int(v)
	}
	var user, pass, name []byte
	auth, setName := false, false
	for j := 2; j < len(args); j++ {
		more := len(args) - j - 1
		switch {
		case eq(args[j], "auth") && more >= 2:
			auth, user, pass = true, args[j+1], args[j+2]
			j += 2
		case eq(args[j], "setname") && more >= 1:
			setName, name = true, args[j+1]
			j++
		default:
			x.W.Error("ERR Syntax error in HELLO option '" + string(args[j]) + "'")
			return
		}
	}
	if auth {
		if !x.D.checkAuth(user, pass) {
			x.W.Error(errWrongPass)
			return
		}
		c.Authenticated = true
	}
	if !c.Authenticated {
		x.W.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName {
		if !validName(name) {
			x.W.Error(errClientName)
			return
		}
		c.Name = string(name)
	}
	c.Proto = proto
	x.W.Proto = proto
	x.W.Map(7)
	x.W.BulkString("server")
	x.W.BulkString("redis")
	x.W.BulkString("version")
	x.W.BulkString(RedisVersion)
	x.W.BulkString("proto")
	x.W.Int(int64(proto))
	x.W.BulkString("id")
	x.W.Int(int64(c.ID))
	x.W.BulkString("mode")
	x.W.BulkString("cluster")
	x.W.BulkString("role")
	x.W.BulkString(x.D.role())
	x.W.BulkString("modules")
	x.W.Array(0)
}

func cmdAsking(x *Ctx) {
	x.Conn.Asking = true
	x.Conn.askingSet = true
	x.W.OK()
}

func cmdReadOnly(x *Ctx) {
	x.Conn.ReadOnly = true
	x.W.OK()
}

func cmdReadWrite(x *Ctx) {
	x.Conn.ReadOnly = false
	x.W.OK()
}

func cmdCluster(x *Ctx) {
	if x.D.opts.Cluster == nil {
		x.W.Error("ERR This instance has cluster support disabled")
		return
	}
	x.D.opts.Cluster.ClusterCommand(x)
}

// ---- CLIENT -----------------------------------------------------------

func cmdClientSetName(x *Ctx) {
	if !validName(x.Args[2]) {
		x.W.Error(errClientName)
		return
	}
	x.Conn.Name = string(x.Args[2])
	x.W.OK()
}

func cmdClientGetName(x *Ctx) {
	if x.Conn.Name == "" {
		x.W.Null()
		return
	}
	x.W.BulkString(x.Conn.Name)
}

func cmdClientID(x *Ctx) { x.W.Int(int64(x.Conn.ID)) }

func cmdClientSetInfo(x *Ctx) {
	attr, val := x.Args[2], x.Args[3]
	switch {
	case eq(attr, "lib-name"):
		if !validName(val) {
			x.W.Error("ERR lib-name cannot contain spaces, newlines or special characters.")
			return
		}
		x.Conn.LibName = string(val)
	case eq(attr, "lib-ver"):
		if !validName(val) {
			x.W.Error("ERR lib-ver cannot contain spaces, newlines or special characters.")
			return
		}
		x.Conn.LibVer = string(val)
	default:
		x.W.Error("ERR Unrecognized option '" + string(attr) + "'")
		return
	}
	x.W.OK()
}

func cmdClientInfo(x *Ctx) {
	c := x.Conn
	age := (x.Now - c.CreatedMs) / 1000
	line := "id=" + itoa(int64(c.ID)) + " addr=" + c.Addr + " laddr=" + c.LocalAddr + " fd=-1 name=" + c.Name +
		" age=" + itoa(age) + " idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|info user=default redir=-1 resp=" +
		itoa(int64(c.Proto)) + " lib-name=" + c.LibName + " lib-ver=" + c.LibVer + "\n"
	x.W.Verbatim("txt", []byte(line))
}

func cmdClientNoop(x *Ctx) {
	if !eq(x.Args[2], "on") && !eq(x.Args[2], "off") {
		x.W.Error(errSyntax)
		return
	}
	x.W.OK()
}

// help returns a HELP handler listing a container's subcommands.
func help(parent string) func(x *Ctx) {
	return func(x *Ctx) {
		c := x.D.cmds[parent]
		names := slices.Sorted(maps.Keys(c.Sub))
		x.W.Array(len(names) + 1)
		x.W.Simple(strings.ToUpper(parent) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
		for _, n := range names {
			x.W.Simple(strings.ToUpper(n))
		}
	}
}

// ---- COMMAND ------------------------------------------------------------

func (d *Dispatcher) sortedCommands() []*Command {
	return slices.SortedFunc(maps.Values(d.cmds), func(a, b *Command) int { return strings.Compare(a.Name, b.Name) })
}

func writeCommandInfo(x *Ctx, c *Command) {
	w := &x.W
	w.Array(10)
	w.BulkString(c.Name)
	w.Int(int64(c.Arity))
	n := 0
	for _, f := range flagNames {
		if c.Flags&f.f != 0 {
			n++
		}
	}
	w.Set(n)
	for _, f := range flagNames {
		if c.Flags&f.f != 0 {
			w.Simple(f.name)
		}
	}
	w.Int(int64(c.FirstKey))
	w.Int(int64(c.LastKey))
	w.Int(int64(c.Step))
	w.Set(0) // ACL categories
	w.Set(0) // tips
	w.Array(0)
	subs := make([]*Command, 0, len(c.Sub))
	for _, s := range c.Sub {
		subs = append(subs, s)
	}
	slices.SortFunc(subs, func(a, b *Command) int { return strings.Compare(a.Name, b.Name) })
	w.Array(len(subs))
	for _, s := range subs {
		writeCommandInfo(x, s)
	}
}

func cmdCommand(x *Ctx) {
	cmds := x.D.sortedCommands()
	x.W.Array(len(cmds))
	for _, c := range cmds {
		writeCommandInfo(x, c)
	}
}

func cmdCommandCount(x *Ctx) { x.W.Int(int64(len(x.D.cmds))) }

func cmdCommandList(x *Ctx) {
	cmds := x.D.sortedCommands()
	x.W.Array(len(cmds))
	for _, c := range cmds {
		x.W.BulkString(c.Name)
	}
}

func cmdCommandInfo(x *Ctx) {
	if len(x.Args) == 2 {
		cmdCommand(x)
		return
	}
	x.W.Array(len(x.Args) - 2)
	for _, name := range x.Args[2:] {
		if c := x.D.Lookup(name); c != nil {
			writeCommandInfo(x, c)
		} else {
			x.W.Null()
		}
	}
}

// COMMAND DOCS [name...]: a small but well-formed map of name -> doc map.
func cmdCommandDocs(x *Ctx) {
	var cmds []*Command
	if len(x.Args) == 2 {
		cmds = x.D.sortedCommands()
	} else {
		for _, name := range x.Args[2:] {
			if c := x.D.Lookup(name); c != nil {
				cmds = append(cmds, c)
			}
		}
	}
	x.W.Map(len(cmds))
	for _, c := range cmds {
		x.W.BulkString(c.Name)
		x.W.Map(2)
		x.W.BulkString("summary")
		x.W.BulkString("")
		x.W.BulkString("group")
		x.W.BulkString(c.Group)
	}
}

func cmdCommandGetKeys(x *Ctx) {
	args := x.Args[2:]
	c := x.D.Lookup(args[0])
	if c == nil {
		x.W.Error("ERR Invalid command specified")
		return
	}
	if c.Sub != nil && len(args) >= 2 {
		if s := lookup(c.Sub, args[1]); s != nil {
			c = s
		}
	}
	if (c.Arity > 0 && len(args) != c.Arity) || len(args) < -c.Arity {
		x.W.Error("ERR Invalid number of arguments specified for command")
		return
	}
	if c.FirstKey == 0 {
		x.W.Error("ERR The command has no key arguments")
		return
	}
	last := c.LastKey
	if last < 0 {
		last += len(args)
	}
	var keys [][]byte
	for i := c.FirstKey; i <= last && i < len(args); i += c.Step {
		keys = append(keys, args[i])
	}
	x.W.Array(len(keys))
	for _, k := range keys {
		x.W.Bulk(k)
	}
}

// ---- CONFIG ---------------------------------------------------------------

func defaultConfig(o Options) map[string]string {
	maxBulk := o.MaxBulkLen
	if maxBulk <= 0 {
		maxBulk = resp.DefaultMaxBulkLen
	}
	cfg := map[string]string{
		"cluster-enabled":                 "yes",
		"cluster-config-file":             "nodes.conf",
		"cluster-node-timeout":            "15000",
		"cluster-port":                    "0",
		"cluster-require-full-coverage":   "yes",
		"cluster-allow-reads-when-down":   "no",
		"cluster-replica-validity-factor": "10",
		"cluster-migration-barrier":       "1",
		"cluster-announce-ip":             "",
		"port":                            strconv.Itoa(o.Port),
		"bind":                            "127.0.0.1",
		"databases":                       "1",
		"maxmemory":                       "0",
		"maxmemory-policy":                "noeviction",
		"maxclients":                      "10000",
		"save":                            "",
		"appendonly":                      "no",
		"appendfsync":                     "everysec",
		"dir":                             ".",
		"dbfilename":                      "dump.rdb",
		"timeout":                         "0",
		"tcp-keepalive":                   "300",
		"hz":                              "10",
		"io-threads":                      "1",
		"loglevel":                        "notice",
		"protected-mode":                  "no",
		"requirepass":                     o.RequirePass,
		"proto-max-bulk-len":              strconv.FormatInt(maxBulk, 10),
		"client-query-buffer-limit":       "1073741824",
		"lua-time-limit":                  "5000",
		"slowlog-log-slower-than":         "10000",
		"replica-read-only":               "yes",
	}
	for k, v := range o.Config {
		cfg[k] = v
	}
	return cfg
}

func hasGlob(p []byte) bool {
	for _, ch := range p {
		switch ch {
		case '*', '?', '[', '\\':
			return true
		}
	}
	return false
}

// CONFIG GET parameter [parameter ...] (glob patterns, case-insensitive).
func cmdConfigGet(x *Ctx) {
	d := x.D
	d.configMu.RLock()
	matched := map[string]string{}
	for _, pat := range x.Args[2:] {
		if !hasGlob(pat) {
			name := strings.ToLower(string(pat))
			if v, ok := d.config[name]; ok {
				matched[name] = v
			}
			continue
		}
		for name, v := range d.config {
			if store.Match(pat, []byte(name), true) {
				matched[name] = v
			}
		}
	}
	d.configMu.RUnlock()
	names := make([]string, 0, len(matched))
	for n := range matched {
		names = append(names, n)
	}
	slices.Sort(names)
	x.W.Map(len(names))
	for _, n := range names {
		x.W.BulkString(n)
		x.W.BulkString(matched[n])
	}
}

func cmdOK(x *Ctx) { x.W.OK() }

// ---- INFO -----------------------------------------------------------------

var (
	defaultSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "cluster", "keyspace"}
	allSections     = defaultSections
)

func cmdInfo(x *Ctx) {
	var sections []string
	switch {
	case len(x.Args) == 1:
		sections = defaultSections
	default:
		for _, a := range x.Args[1:] {
			s := strings.ToLower(string(a))
			switch s {
			case "all", "everything", "default":
				sections = append(sections, allSections...)
			default:
				sections = append(sections, s)
			}
		}
	}
	b := x.Conn.scratch[:0]
	seen := map[string]bool{}
	for _, s := range sections {
		if seen[s] {
			continue
		}
		seen[s] = true
		if len(b) > 0 {
			b = append(b, "\r\n"...)
		}
		b = x.D.appendInfo(x, s, b)
	}
	x.Conn.scratch = b
	x.W.Verbatim("txt", b)
}

func kv(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ':')
	b = append(b, v...)
	return append(b, "\r\n"...)
}

func kvi(b []byte, k string, v int64) []byte { return kv(b, k, itoa(v)) }

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 2, 64) + "G"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 2, 64) + "M"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 2, 64) + "K"
	}
	return strconv.FormatUint(n, 10) + "B"
}

func (d *Dispatcher) statSum() (cmds, hits, misses int64) {
	for i := range d.stats {
		cmds += d.stats[i].commands.Load()
		hits += d.stats[i].hits.Load()
		misses += d.stats[i].misses.Load()
	}
	return
}

func (d *Dispatcher) appendInfo(x *Ctx, section string, b []byte) []byte {
	if d.opts.Info != nil {
		if out, ok := d.opts.Info(section, b); ok {
			return out
		}
	}
	switch section {
	case "server":
		up := int64(x.Now/1000) - d.start.Unix()
		b = append(b, "# Server\r\n"...)
		b = kv(b, "redis_version", RedisVersion)
		b = kv(b, "redis_git_sha1", "00000000")
		b = kv(b, "redis_git_dirty", "0")
		b = kv(b, "redis_mode", "cluster")
		b = kv(b, "hearsay", "1")
		b = kv(b, "os", runtime.GOOS+" "+runtime.GOARCH)
		b = kv(b, "arch_bits", "64")
		b = kv(b, "multiplexing_api", "epoll")
		b = kv(b, "go_version", runtime.Version())
		b = kvi(b, "process_id", int64(os.Getpid()))
		b = kv(b, "run_id", d.runID)
		b = kvi(b, "tcp_port", int64(d.opts.Port))
		b = kvi(b, "server_time_usec", x.Now*1000)
		b = kvi(b, "uptime_in_seconds", up)
		b = kvi(b, "uptime_in_days", up/86400)
		b = kv(b, "hz", "10")
		b = kv(b, "executable", "")
		b = kv(b, "config_file", "")
	case "clients":
		b = append(b, "# Clients\r\n"...)
		b = kvi(b, "connected_clients", d.connected.Load())
		b = kvi(b, "maxclients", int64(cmp.Or(d.opts.MaxClients, 10000)))
		b = kv(b, "blocked_clients", "0")
	case "memory":
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b = d.appendMemoryInfo(b, ms.HeapAlloc, ms.Sys)
	case "persistence":
		b = append(b, "# Persistence\r\n"...)
		b = kv(b, "loading", "0")
		b = kv(b, "rdb_changes_since_last_save", "0")
		b = kv(b, "rdb_bgsave_in_progress", "0")
		b = kv(b, "aof_enabled", "0")
		b = kv(b, "aof_rewrite_in_progress", "0")
	case "stats":
		cmds, hits, misses := d.statSum()
		b = append(b, "# Stats\r\n"...)
		b = kvi(b, "total_connections_received", d.connections.Load())
		b = kvi(b, "total_commands_processed", cmds)
		b = kv(b, "instantaneous_ops_per_sec", "0")
		b = kv(b, "rejected_connections", "0")
		b = kvi(b, "expired_keys", d.st.ExpiredCount())
		b = kvi(b, "evicted_keys", d.st.EvictedCount())
		b = kvi(b, "keyspace_hits", hits)
		b = kvi(b, "keyspace_misses", misses)
		if d.opts.StatsExtra != nil {
			b = d.opts.StatsExtra(b)
		}
	case "replication":
		b = append(b, "# Replication\r\n"...)
		b = kv(b, "role", d.role())
		b = kv(b, "connected_slaves", "0")
		b = kv(b, "master_replid", d.runID)
		b = kv(b, "master_repl_offset", "0")
	case "cpu":
		b = append(b, "# CPU\r\n"...)
		b = kvi(b, "used_cpu_count", int64(runtime.NumCPU()))
	case "cluster":
		b = append(b, "# Cluster\r\n"...)
		b = kv(b, "cluster_enabled", "1")
	case "keyspace":
		b = append(b, "# Keyspace\r\n"...)
		if n := d.st.Len(); n > 0 {
			b = kv(b, "db0", "keys="+itoa(int64(n))+",expires="+itoa(int64(d.st.LenWithTTL()))+",avg_ttl=0")
		}
	default:
		// Unknown sections are silently empty, as in Redis; drop the
		// separator added for them.
		if len(b) >= 2 && string(b[len(b)-2:]) == "\r\n" {
			b = b[:len(b)-2]
		}
	}
	return b
}
