package command

const (
	rw   = FlagWrite
	ro   = FlagReadOnly
	fast = FlagFast
	// oom marks the writes that may grow memory (Redis's denyoom): over
	// maxmemory, with nothing left to evict, they are refused.
	oom = FlagDenyOOM
)

func key1(name string, arity int, flags Flags, group string, h func(*Ctx)) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: 1, Step: 1, Group: group, Handler: h}
}

func keysAll(name string, arity int, flags Flags, group string, h func(*Ctx)) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: 1, LastKey: -1, Step: 1, Group: group, Handler: h}
}

func nokey(name string, arity int, flags Flags, group string, h func(*Ctx)) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, Group: group, Handler: h}
}

func container(name string, arity int, flags Flags, group string, h func(*Ctx), subs ...*Command) *Command {
	c := nokey(name, arity, flags, group, h)
	c.Sub = map[string]*Command{}
	for _, s := range subs {
		s.Name = name + "|" + s.Name
		s.Group = group
		c.Sub[s.Name[len(name)+1:]] = s
	}
	c.Sub["help"] = nokey(name+"|help", 2, FlagLoading|FlagStale, group, help(name))
	return c
}

func containerNoop(x *Ctx) { x.W.Error(arityErr(x.Cmd.Name)) }

var defaultTable = buildTable()

// ttlOnly marks c as changing only expiries (Command.TTLOnly).
func ttlOnly(c *Command) *Command {
	c.TTLOnly = true
	return c
}

func buildTable() map[string]*Command {
	cmds := []*Command{
		// connection
		nokey("ping", -1, fast, "connection", cmdPing),
		nokey("echo", 2, fast, "connection", cmdEcho),
		nokey("hello", -1, FlagNoAuth|fast|FlagLoading|FlagStale, "connection", cmdHello),
		nokey("auth", -2, FlagNoAuth|fast|FlagLoading|FlagStale, "connection", cmdAuth),
		nokey("select", 2, fast|FlagLoading|FlagStale, "connection", cmdSelect),
		nokey("quit", -1, FlagNoAuth|fast|FlagLoading|FlagStale, "connection", cmdQuit),
		nokey("asking", 1, fast, "cluster", cmdAsking),
		nokey("readonly", 1, fast|FlagLoading|FlagStale, "cluster", cmdReadOnly),
		nokey("readwrite", 1, fast|FlagLoading|FlagStale, "cluster", cmdReadWrite),
		nokey("cluster", -2, 0, "cluster", cmdCluster),
		container("client", -2, FlagLoading|FlagStale, "connection", containerNoop,
			nokey("setname", 3, FlagLoading|FlagStale, "", cmdClientSetName),
			nokey("getname", 2, FlagLoading|FlagStale, "", cmdClientGetName),
			nokey("id", 2, FlagLoading|FlagStale, "", cmdClientID),
			nokey("setinfo", 4, FlagLoading|FlagStale, "", cmdClientSetInfo),
			nokey("info", 2, FlagLoading|FlagStale, "", cmdClientInfo),
			nokey("no-evict", 3, FlagLoading|FlagStale, "", cmdClientNoop),
			nokey("no-touch", 3, FlagLoading|FlagStale, "", cmdClientNoop),
		),
		container("command", -1, FlagLoading|FlagStale, "server", cmdCommand,
			nokey("count", 2, FlagLoading|FlagStale, "", cmdCommandCount),
			nokey("docs", -2, FlagLoading|FlagStale, "", cmdCommandDocs),
			nokey("info", -2, FlagLoading|FlagStale, "", cmdCommandInfo),
			nokey("list", -2, FlagLoading|FlagStale, "", cmdCommandList),
			nokey("getkeys", -3, FlagLoading|FlagStale, "", cmdCommandGetKeys),
		),
		container("config", -2, FlagAdmin|FlagLoading|FlagStale, "server", containerNoop,
			nokey("get", -3, FlagAdmin|FlagLoading|FlagStale, "", cmdConfigGet),
			nokey("set", -4, FlagAdmin|FlagLoading|FlagStale, "", cmdConfigSet),
			nokey("resetstat", 2, FlagAdmin|FlagLoading|FlagStale, "", cmdOK),
			nokey("rewrite", 2, FlagAdmin|FlagLoading|FlagStale, "", cmdOK),
		),
		nokey("info", -1, FlagLoading|FlagStale, "server", cmdInfo),
		nokey("dbsize", 1, ro|fast, "server", cmdDBSize),
		nokey("flushall", -1, rw, "server", cmdFlushAll),
		nokey("flushdb", -1, rw, "server", cmdFlushAll),
		nokey("keys", 2, ro, "generic", cmdKeys),
		nokey("scan", -2, ro, "generic", cmdScan),

		// strings
		key1("get", 2, ro|fast, "string", cmdGet),
		key1("set", -3, rw|oom, "string", cmdSet),
		key1("setnx", 3, rw|oom|fast, "string", cmdSetNX),
		key1("setex", 4, rw|oom, "string", setex(1000)),
		key1("psetex", 4, rw|oom, "string", setex(1)),
		key1("getset", 3, rw|oom|fast, "string", cmdGetSet),
		key1("getdel", 2, rw|fast, "string", cmdGetDel),
		keysAll("mget", -2, ro|fast, "string", cmdMGet),
		{Name: "mset", Arity: -3, Flags: rw | oom, FirstKey: 1, LastKey: -1, Step: 2, Group: "string", Handler: cmdMSet},
		key1("incr", 2, rw|oom|fast, "string", cmdIncr),
		key1("decr", 2, rw|oom|fast, "string", cmdDecr),
		key1("incrby", 3, rw|oom|fast, "string", cmdIncrBy),
		key1("decrby", 3, rw|oom|fast, "string", cmdDecrBy),
		key1("append", 3, rw|oom|fast, "string", cmdAppend),
		key1("strlen", 2, ro|fast, "string", cmdStrlen),

		// keyspace
		keysAll("del", -2, rw, "generic", cmdDel),
		keysAll("unlink", -2, rw|fast, "generic", cmdDel),
		keysAll("exists", -2, ro|fast, "generic", cmdExists),
		ttlOnly(key1("expire", -3, rw|fast, "generic", expire(1000, true))),
		ttlOnly(key1("pexpire", -3, rw|fast, "generic", expire(1, true))),
		ttlOnly(key1("expireat", -3, rw|fast, "generic", expire(1000, false))),
		ttlOnly(key1("pexpireat", -3, rw|fast, "generic", expire(1, false))),
		key1("ttl", 2, ro|fast, "generic", ttl(false)),
		key1("pttl", 2, ro|fast, "generic", ttl(true)),
		key1("expiretime", 2, ro|fast, "generic", expireTime(false)),
		key1("pexpiretime", 2, ro|fast, "generic", expireTime(true)),
		ttlOnly(key1("persist", 2, rw|fast, "generic", cmdPersist)),
		key1("dump", 2, ro, "generic", cmdDump),
		key1("restore", -4, rw|oom, "generic", cmdRestore),
		restoreAsking(key1("restore-asking", -4, rw|oom|FlagAsking, "server", cmdRestore)),
		// MIGRATE's keys are the third argument or follow KEYS; it finds
		// and routes them itself (migrate.go).
		{Name: "migrate", Arity: -6, Flags: rw, Group: "generic", Handler: cmdMigrate, SelfSequenced: true},
		key1("type", 2, ro|fast, "generic", cmdType),
	}
	m := make(map[string]*Command, len(cmds))
	for _, c := range cmds {
		assignIDs(c)
		m[c.Name] = c
	}
	return m
}
