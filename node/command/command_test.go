package command

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/node/store"
)

type harness struct {
	t   *testing.T
	d   *Dispatcher
	c   *ConnState
	now int64
}

func newHarness(t *testing.T, o Options) *harness {
	h := &harness{t: t, now: 1_700_000_000_000}
	o.Now = func() int64 { return h.now }
	h.d = New(store.New(), o)
	h.c = h.d.NewConn()
	return h
}

// do runs one command and returns the raw reply.
func (h *harness) do(args ...string) string {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	in := resp.AppendCommand(nil, bs...)
	n, out, _ := h.d.Serve(h.c, in, nil)
	if n != len(in) {
		h.t.Fatalf("%q: consumed %d of %d", args, n, len(in))
	}
	return string(out)
}

type step struct {
	cmd  string // space-separated arguments; "_" stands for one space
	want string
}

func split(cmd string) []string {
	f := strings.Fields(cmd)
	for i := range f {
		f[i] = strings.ReplaceAll(f[i], "_", " ")
	}
	return f
}

func run(t *testing.T, h *harness, steps []step) {
	t.Helper()
	for _, s := range steps {
		if got := h.do(split(s.cmd)...); got != s.want {
			t.Errorf("%s\n got  %q\n want %q", s.cmd, got, s.want)
		}
	}
}

const (
	ok     = "+OK\r\n"
	null   = "$-1\r\n"
	syntax = "-ERR syntax error\r\n"
	notInt = "-ERR value is not an integer or out of range\r\n"
)

func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }
func num(n int64) string   { return fmt.Sprintf(":%d\r\n", n) }

func TestStringCommands(t *testing.T) {
	h := newHarness(t, Options{})
	run(t, h, []step{
		{"GET a", null},
		{"SET a 1", ok},
		{"get a", bulk("1")},
		{"SET a 2 NX", null},
		{"SET a 2 NX GET", bulk("1")},
		{"SET b 2 XX", null},
		{"SET b 2 XX GET", null},
		{"SET a 3 XX GET", bulk("1")},
		{"SET a 4 GET", bulk("3")},
		{"SET a 4 NX XX", syntax},
		{"SET a 4 EX 10 PX 100", syntax},
		{"SET a 4 EX 10 KEEPTTL", syntax},
		{"SET a 4 KEEPTTL EX 10", syntax},
		{"SET a 4 EX", syntax},
		{"SET a 4 FOO", syntax},
		{"SET a 4 EX abc", notInt},
		{"SET a 4 EX 0", "-ERR invalid expire time in 'set' command\r\n"},
		{"SET a 4 PX -5", "-ERR invalid expire time in 'set' command\r\n"},
		{"SET a 4 EX 9223372036854775807", "-ERR invalid expire time in 'set' command\r\n"},
		{"SET a 4 EX 10", ok},
		{"TTL a", num(10)},
		{"PTTL a", num(10000)},
		{"SET a 5 KEEPTTL", ok},
		{"PTTL a", num(10000)},
		{"SET a 6", ok},
		{"TTL a", num(-1)},
		{"SET a 7 PXAT 1700000005000", ok},
		{"PTTL a", num(5000)},
		{"SET a 8 EXAT 1700000010", ok},
		{"TTL a", num(10)},
		{"SET a 9 ex 1 ex 2", ok},
		{"TTL a", num(2)},
		{"SET old x EXAT 1", ok},
		{"EXISTS old", num(0)},
		{"SETNX n 1", num(1)},
		{"SETNX n 2", num(0)},
		{"GETSET n 5", bulk("1")},
		{"GETSET nn 5", null},
		{"GETDEL n", bulk("5")},
		{"GETDEL n", null},
		{"SETEX s 0 v", "-ERR invalid expire time in 'setex' command\r\n"},
		{"SETEX s 100 v", ok},
		{"PSETEX s 1500 v", ok},
		{"TTL s", num(2)},
		{"MSET {t}a 1 {t}b 2", ok},
		{"MSET {t}a 1 {t}b", "-ERR wrong number of arguments for 'mset' command\r\n"},
		{"MGET {t}a {t}b {t}c", "*3\r\n" + bulk("1") + bulk("2") + null},
		{"MGET {t}a b", "-CROSSSLOT Keys in request don't hash to the same slot\r\n"},
		{"MSET a 1 b 2", "-CROSSSLOT Keys in request don't hash to the same slot\r\n"},
		{"DEL {t}a {t}b {t}c", num(2)},
		{"EXISTS {t}a {t}a", num(0)},
		{"SET x 1", ok},
		{"EXISTS x x", num(2)},
		{"UNLINK x", num(1)},
		{"INCR i", num(1)},
		{"INCRBY i 10", num(11)},
		{"DECR i", num(10)},
		{"DECRBY i 20", num(-10)},
		{"INCRBY i abc", notInt},
		{"INCRBY i 9223372036854775807", num(9223372036854775797)},
		{"INCRBY i 100", "-ERR increment or decrement would overflow\r\n"},
		{"DECRBY i -9223372036854775808", "-ERR decrement would overflow\r\n"},
		{"SET f 1.5", ok},
		{"INCR f", notInt},
		{"SET sp _1", ok},
		{"INCR sp", notInt},
		{"APPEND ap hello", num(5)},
		{"APPEND ap _world", num(11)},
		{"GET ap", bulk("hello world")},
		{"STRLEN ap", num(11)},
		{"STRLEN nope", num(0)},
		{"TYPE ap", "+string\r\n"},
		{"TYPE nope", "+none\r\n"},
	})
}

func TestExpireCommands(t *testing.T) {
	h := newHarness(t, Options{})
	run(t, h, []step{
		{"EXPIRE k 10", num(0)},
		{"SET k v", ok},
		{"EXPIRE k abc", notInt},
		{"EXPIRE k 10 FOO", "-ERR Unsupported option FOO\r\n"},
		{"EXPIRE k 10 NX XX", "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"},
		{"EXPIRE k 10 GT LT", "-ERR GT and LT options at the same time are not compatible\r\n"},
		{"EXPIRE k 9223372036854775807", "-ERR invalid expire time in 'expire' command\r\n"},
		{"PEXPIRE k 9223372036854775807", "-ERR invalid expire time in 'pexpire' command\r\n"},
		{"EXPIRE k 10 XX", num(0)},
		{"EXPIRE k 10 GT", num(0)},
		{"EXPIRE k 100 NX", num(1)},
		{"TTL k", num(100)},
		{"EXPIRE k 50 GT", num(0)},
		{"EXPIRE k 200 GT", num(1)},
		{"EXPIRE k 300 LT", num(0)},
		{"EXPIRE k 30 LT XX", num(1)},
		{"PEXPIRE k 1500", num(1)},
		{"PTTL k", num(1500)},
		{"TTL k", num(2)},
		{"PEXPIRETIME k", num(1_700_000_001_500)},
		{"EXPIRETIME k", num(1_700_000_002)},
		{"PERSIST k", num(1)},
		{"PERSIST k", num(0)},
		{"TTL k", num(-1)},
		{"EXPIRETIME k", num(-1)},
		{"TTL nokey", num(-2)},
		{"PEXPIREAT k 1700000000500", num(1)},
		{"PTTL k", num(500)},
		{"EXPIREAT k 1700000100", num(1)},
		{"TTL k", num(100)},
		{"EXPIRE k -1", num(1)},
		{"EXISTS k", num(0)},
		{"PERSIST k", num(0)},
	})
	// Lazy expiry as time passes.
	h.do(split("SET e v PX 100")...)
	h.now += 100
	if got := h.do("GET", "e"); got != bulk("v") {
		t.Fatalf("expired too early: %q", got)
	}
	h.now++
	if got := h.do("GET", "e"); got != null {
		t.Fatalf("not expired: %q", got)
	}
}

func TestKeysScanDBSize(t *testing.T) {
	h := newHarness(t, Options{})
	for i := range 50 {
		h.do("SET", fmt.Sprintf("user:%d", i), "x")
	}
	h.do("SET", "other", "y")
	run(t, h, []step{
		{"DBSIZE", num(51)},
		{"KEYS other", "*1\r\n" + bulk("other")},
		{"KEYS nomatch*", "*0\r\n"},
		{"SCAN abc", "-ERR invalid cursor\r\n"},
		{"SCAN 0 COUNT 0", syntax},
		{"SCAN 0 COUNT x", notInt},
		{"SCAN 0 MATCH", syntax},
		{"SCAN 0 FOO bar", syntax},
		{"SCAN 0 COUNT 1000 TYPE hash", "*2\r\n" + bulk("0") + "*0\r\n"},
		{"SCAN 0 COUNT 1000 MATCH oth*", "*2\r\n" + bulk("0") + "*1\r\n" + bulk("other")},
	})
	if got := h.do("KEYS", "*"); !strings.HasPrefix(got, "*51\r\n") {
		t.Fatalf("KEYS * = %.20q", got)
	}
	// A SCAN loop sees every key exactly once.
	seen := map[string]int{}
	cursor := "0"
	for range 1000 {
		out := h.do("SCAN", cursor, "COUNT", "7")
		lines := strings.Split(out, "\r\n")
		cursor = lines[2]
		for i := 5; i+1 < len(lines); i += 2 {
			seen[lines[i]]++
		}
		if cursor == "0" {
			break
		}
	}
	if len(seen) != 51 {
		t.Fatalf("scan saw %d keys", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", k, n)
		}
	}
	run(t, h, []step{
		{"FLUSHALL FOO", syntax},
		{"FLUSHALL ASYNC", ok},
		{"DBSIZE", num(0)},
	})
}

func TestConnectionCommands(t *testing.T) {
	h := newHarness(t, Options{Port: 7000})
	helloMap := func(proto, id int) string {
		head := "%7\r\n"
		if proto == 2 {
			head = "*14\r\n"
		}
		return head + bulk("server") + bulk("redis") + bulk("version") + bulk(RedisVersion) +
			bulk("proto") + num(int64(proto)) + bulk("id") + num(int64(id)) + bulk("mode") + bulk("cluster") +
			bulk("role") + bulk("master") + bulk("modules") + "*0\r\n"
	}
	run(t, h, []step{
		{"PING", "+PONG\r\n"},
		{"PING hi", bulk("hi")},
		{"PING a b", "-ERR wrong number of arguments for 'ping' command\r\n"},
		{"ECHO", "-ERR wrong number of arguments for 'echo' command\r\n"},
		{"ECHO hello", bulk("hello")},
		{"SELECT 0", ok},
		{"SELECT 1", "-ERR SELECT is not allowed in cluster mode\r\n"},
		{"SELECT x", notInt},
		{"AUTH pw", "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"},
		{"AUTH default anything", ok},
		{"AUTH bob pw", "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{"AUTH a b c", syntax},
		{"CLIENT", "-ERR wrong number of arguments for 'client' command\r\n"},
		{"CLIENT FOO", "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n"},
		{"client foo", "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n"},
		{"CLIENT GETNAME", null},
		{"CLIENT SETNAME", "-ERR wrong number of arguments for 'client|setname' command\r\n"},
		{"CLIENT SETNAME a_b", "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
		{"CLIENT SETNAME conn1", ok},
		{"CLIENT GETNAME", bulk("conn1")},
		{"CLIENT ID", num(1)},
		{"CLIENT SETINFO LIB-NAME go-redis(,go1.26)", ok},
		{"CLIENT SETINFO LIB-VER 9.23.0", ok},
		{"CLIENT SETINFO FOO x", "-ERR Unrecognized option 'FOO'\r\n"},
		{"HELLO 4", "-NOPROTO unsupported protocol version\r\n"},
		{"HELLO x", "-ERR Protocol version is not an integer or out of range\r\n"},
		{"HELLO 3 FOO", "-ERR Syntax error in HELLO option 'FOO'\r\n"},
		{"HELLO 3 AUTH default", "-ERR Syntax error in HELLO option 'AUTH'\r\n"},
		{"HELLO 3 AUTH bob x", "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{"HELLO", helloMap(2, 1)},
		{"HELLO 3 SETNAME n3", helloMap(3, 1)},
		{"GET missing", "_\r\n"},
		{"CLIENT GETNAME", bulk("n3")},
		{"CONFIG GET maxmemory", "%1\r\n" + bulk("maxmemory") + bulk("0")},
		{"HELLO 2", helloMap(2, 1)},
		{"GET missing", null},
		{"CONFIG GET cluster-enabled", "*2\r\n" + bulk("cluster-enabled") + bulk("yes")},
		{"CONFIG GET CLUSTER-ENABLED", "*2\r\n" + bulk("cluster-enabled") + bulk("yes")},
		{"CONFIG GET save appendonly", "*4\r\n" + bulk("appendonly") + bulk("no") + bulk("save") + bulk("")},
		{"CONFIG GET port", "*2\r\n" + bulk("port") + bulk("7000")},
		{"CONFIG GET nosuch", "*0\r\n"},
		{"CONFIG GET", "-ERR wrong number of arguments for 'config|get' command\r\n"},
		{"CONFIG SET appendonly yes", "-ERR Unknown option or number of arguments for CONFIG SET - 'appendonly'\r\n"},
		{"COMMAND COUNT", num(int64(len(defaultTable)))},
		{"COMMAND DOCS nosuch", "*0\r\n"},
		{"COMMAND DOCS get", "*2\r\n" + bulk("get") + "*4\r\n" + bulk("summary") + bulk("") + bulk("group") + bulk("string")},
		{"COMMAND INFO get nosuch", "*2\r\n*10\r\n" + bulk("get") + num(2) + "*2\r\n+readonly\r\n+fast\r\n" + num(1) + num(1) + num(1) + "*0\r\n*0\r\n*0\r\n*0\r\n" + null},
		{"COMMAND GETKEYS mset a 1 b 2", "*2\r\n" + bulk("a") + bulk("b")},
		{"COMMAND GETKEYS ping", "-ERR The command has no key arguments\r\n"},
		{"COMMAND GETKEYS nosuch", "-ERR Invalid command specified\r\n"},
		{"CLUSTER INFO", "-ERR This instance has cluster support disabled\r\n"},
		{"CLUSTER", "-ERR wrong number of arguments for 'cluster' command\r\n"},
		{"FOO", "-ERR unknown command 'FOO', with args beginning with: \r\n"},
		{"foo a b", "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"},
		{"GET", "-ERR wrong number of arguments for 'get' command\r\n"},
		{"gEt a b", "-ERR wrong number of arguments for 'get' command\r\n"},
		{"SET a", "-ERR wrong number of arguments for 'set' command\r\n"},
	})
	if got := h.do("COMMAND"); !strings.HasPrefix(got, fmt.Sprintf("*%d\r\n*10\r\n", len(defaultTable))) {
		t.Errorf("COMMAND = %.40q", got)
	}
	if got := h.do("COMMAND", "DOCS"); !strings.HasPrefix(got, fmt.Sprintf("*%d\r\n", 2*len(defaultTable))) {
		t.Errorf("COMMAND DOCS = %.40q", got)
	}
	if got := h.do("CLIENT", "INFO"); !strings.Contains(got, "id=1 ") || !strings.Contains(got, "lib-ver=9.23.0") {
		t.Errorf("CLIENT INFO = %q", got)
	}
	if got := h.do("CLIENT", "HELP"); !strings.Contains(got, "SETNAME") {
		t.Errorf("CLIENT HELP = %q", got)
	}
	if got := h.do("CONFIG", "GET", "cluster-*"); !strings.Contains(got, "cluster-node-timeout") || strings.Contains(got, "maxmemory") {
		t.Errorf("CONFIG GET cluster-* = %q", got)
	}
	h.do("SET", "k", "v", "EX", "100")
	info := h.do("INFO")
	for _, want := range []string{"# Server\r\n", "redis_version:7.0.15\r\n", "redis_mode:cluster\r\n", "tcp_port:7000\r\n",
		"# Clients\r\nconnected_clients:1\r\n", "# Memory\r\n", "# Stats\r\n", "# Replication\r\nrole:master\r\n",
		"# Cluster\r\ncluster_enabled:1\r\n", "db0:keys=1,expires=1,avg_ttl=0\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q", want)
		}
	}
	if got := h.do("INFO", "cluster"); got != bulk("# Cluster\r\ncluster_enabled:1\r\n") {
		t.Errorf("INFO cluster = %q", got)
	}
	if got := h.do("INFO", "nosuch", "cluster"); got != bulk("# Cluster\r\ncluster_enabled:1\r\n") {
		t.Errorf("INFO nosuch cluster = %q", got)
	}
	// Unknown command argument quoting stops after about 128 bytes.
	long := strings.Repeat("x", 200)
	got := h.do("nope", long, "second")
	if want := "-ERR unknown command 'nope', with args beginning with: '" + strings.Repeat("x", 128) + "' \r\n"; got != want {
		t.Errorf("long unknown = %q", got)
	}
}

func TestAuth(t *testing.T) {
	h := newHarness(t, Options{RequirePass: "s3cret"})
	run(t, h, []step{
		{"GET a", "-NOAUTH Authentication required.\r\n"},
		{"PING", "-NOAUTH Authentication required.\r\n"},
		{"FOO", "-ERR unknown command 'FOO', with args beginning with: \r\n"},
		{"HELLO 3", "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"},
		{"AUTH wrong", "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{"AUTH default wrong", "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{"AUTH s3cret", ok},
		{"GET a", null},
	})
	h.c = h.d.NewConn()
	if got := h.do("HELLO", "3", "AUTH", "default", "s3cret"); !strings.HasPrefix(got, "%7\r\n") {
		t.Fatalf("HELLO AUTH = %q", got)
	}
	if got := h.do("GET", "a"); got != "_\r\n" {
		t.Fatalf("after HELLO AUTH: %q", got)
	}
	// Unauthenticated clients get Redis's tight request limits.
	c := h.d.NewConn()
	_, out, closeConn := h.d.Serve(c, []byte("*20\r\n"), nil)
	if string(out) != "-ERR Protocol error: unauthenticated multibulk length\r\n" || !closeConn {
		t.Fatalf("unauth multibulk: %q %v", out, closeConn)
	}
}

func TestPipelineAndProtocolErrors(t *testing.T) {
	h := newHarness(t, Options{})
	in := []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n\r\n*0\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*2\r\n$3\r\nGET")
	n, out, closeConn := h.d.Serve(h.c, in, nil)
	if closeConn || string(out) != ok+"+PONG\r\n"+bulk("v")+num(1) {
		t.Fatalf("pipeline: %q close=%v", out, closeConn)
	}
	rest := append([]byte(nil), in[n:]...)
	if string(rest) != "*2\r\n$3\r\nGET" {
		t.Fatalf("unconsumed %q", rest)
	}
	rest = append(rest, "\r\n$1\r\nk\r\nQUIT\r\nPING\r\n"...)
	n, out, closeConn = h.d.Serve(h.c, rest, out[:0])
	if !closeConn || string(out) != bulk("v")+ok || string(rest[n:]) != "PING\r\n" {
		t.Fatalf("QUIT: %q close=%v rest=%q", out, closeConn, rest[n:])
	}

	for _, tt := range []struct{ in, want string }{
		{"*1\r\n$4\r\nPING\r\n*x\r\n", "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"},
		{"*1\r\nGET\r\n", "-ERR Protocol error: expected '$', got 'G'\r\n"},
		{"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"SET \"a b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{strings.Repeat("x", 70000), "-ERR Protocol error: too big inline request\r\n"},
	} {
		c := h.d.NewConn()
		n, out, closeConn := h.d.Serve(c, []byte(tt.in), nil)
		if !closeConn || string(out) != tt.want || n != len(tt.in) {
			t.Errorf("%.20q: %q close=%v n=%d", tt.in, out, closeConn, n)
		}
	}

	d := New(store.New(), Options{MaxBulkLen: 4, MaxMultibulkLen: 2})
	c := d.NewConn()
	if _, out, cl := d.Serve(c, []byte("*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n"), nil); string(out) != "-ERR Protocol error: invalid bulk length\r\n" || !cl {
		t.Errorf("bulk limit: %q", out)
	}
	c = d.NewConn()
	if _, out, _ := d.Serve(c, []byte("*3\r\n"), nil); string(out) != "-ERR Protocol error: invalid multibulk length\r\n" {
		t.Errorf("multibulk limit: %q", out)
	}
}

type fakeRouter struct {
	calls []string
}

func (r *fakeRouter) Route(c *ConnState, cmd *Command, slot uint16, keys [][]byte) (string, bool) {
	r.calls = append(r.calls, fmt.Sprintf("%s %d %d asking=%v ro=%v", cmd.Name, slot, len(keys), c.Asking, c.ReadOnly))
	if string(keys[0]) == "foo" && !c.Asking {
		return "MOVED 12182 127.0.0.1:7001", false
	}
	return "", true
}

type fakeCluster struct{}

func (fakeCluster) ClusterCommand(x *Ctx) {
	x.W.BulkString("cluster " + strings.ToLower(string(x.Args[1])))
}

func TestRouterAndClusterHook(t *testing.T) {
	r := &fakeRouter{}
	h := newHarness(t, Options{Router: r, Cluster: fakeCluster{}})
	run(t, h, []step{
		{"GET foo", "-MOVED 12182 127.0.0.1:7001\r\n"},
		{"ASKING", ok},
		{"GET foo", null},
		{"GET foo", "-MOVED 12182 127.0.0.1:7001\r\n"},
		{"ASKING", ok},
		{"PING", "+PONG\r\n"},
		{"GET foo", "-MOVED 12182 127.0.0.1:7001\r\n"},
		{"READONLY", ok},
		{"MGET {x}1 {x}2", "*2\r\n" + null + null},
		{"READWRITE", ok},
		{"MGET a b", "-CROSSSLOT Keys in request don't hash to the same slot\r\n"},
		{"CLUSTER INFO", bulk("cluster info")},
		{"PING", "+PONG\r\n"},
	})
	want := []string{
		"get 12182 1 asking=false ro=false",
		"get 12182 1 asking=true ro=false",
		"get 12182 1 asking=false ro=false",
		"get 12182 1 asking=false ro=false",
		"mget 16287 2 asking=false ro=true",
	}
	if strings.Join(r.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("router calls:\n%s\nwant\n%s", strings.Join(r.calls, "\n"), strings.Join(want, "\n"))
	}
}

func TestRegisterAndObserve(t *testing.T) {
	var observed []string
	h := newHarness(t, Options{})
	h.d.opts.Observe = func(c *Command, calls int, _ time.Duration) {
		observed = append(observed, c.Name+"*"+strconv.Itoa(calls))
	}
	h.d.Register(&Command{Name: "wait", Arity: 3, Handler: func(x *Ctx) { x.W.Int(0) }})
	run(t, h, []step{{"WAIT 0 0", num(0)}, {"GET a", null}, {"NOPE", "-ERR unknown command 'NOPE', with args beginning with: \r\n"}})
	if strings.Join(observed, ",") != "wait*1,get*1" {
		t.Fatalf("observed %v", observed)
	}
	if !strings.Contains(h.do("INFO", "stats"), "total_commands_processed:4") {
		t.Fatal(h.do("INFO", "stats"))
	}
	// A pipeline is reported in runs of one command, each timed run ending
	// at its timed command: 20 GETs then 3 WAITs on a fresh connection
	// are GET*16 (the 16th timed), GET*4, then WAIT*3.
	observed = nil
	var timed int
	h.d.opts.Observe = func(c *Command, calls int, d time.Duration) {
		observed = append(observed, c.Name+"*"+strconv.Itoa(calls))
		if d >= 0 {
			timed++
		}
	}
	var in []byte
	for range 20 {
		in = resp.AppendCommand(in, []byte("GET"), []byte("a"))
	}
	for range 3 {
		in = resp.AppendCommand(in, []byte("WAIT"), []byte("0"), []byte("0"))
	}
	c := h.d.NewConn()
	if n, _, _ := h.d.Serve(c, in, nil); n != len(in) {
		t.Fatalf("consumed %d of %d", n, len(in))
	}
	if got := strings.Join(observed, ","); got != "get*16,get*4,wait*3" || timed != 1 {
		t.Fatalf("observed %s with %d timed", got, timed)
	}
}

// FuzzServe feeds arbitrary bytes through the dispatcher: it must never
// panic or hang, never consume more than it was given, and always leave the
// keyspace usable.
func FuzzServe(f *testing.F) {
	for _, s := range []string{
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "GET k\r\n", "SET k v EX 10 NX GET\r\n", "MSET {a}1 2 {a}3\r\n",
		"SCAN 0 MATCH * COUNT 3 TYPE string\r\n", "HELLO 3 AUTH default x SETNAME n\r\n", "EXPIRE k 10 GT\r\n",
		"CONFIG GET *\r\n", "INFO all\r\n", "COMMAND GETKEYS mset a b\r\n", "KEYS [a-\r\n", "INCRBY k -9223372036854775808\r\n",
	} {
		f.Add([]byte(s))
	}
	d := New(store.New(), Options{Now: func() int64 { return 1_000_000 }})
	f.Fuzz(func(t *testing.T, in []byte) {
		c := d.NewConn()
		defer d.CloseConn(c)
		n, out, closeConn := d.Serve(c, in, nil)
		if n < 0 || n > len(in) {
			t.Fatalf("consumed %d of %d", n, len(in))
		}
		if !closeConn && n < len(in) {
			// The rest must be an incomplete request.
			var p resp.Parser
			if _, _, err := p.Parse(in[n:]); err != resp.ErrIncomplete {
				t.Fatalf("stopped at %d/%d with %v", n, len(in), err)
			}
		}
		_ = out
	})
}
