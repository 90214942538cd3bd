package command

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/node/rdb"
	"github.com/hearsay/hearsay/node/store"
)

func TestDumpRestore(t *testing.T) {
	h := newHarness(t, Options{})
	h.do("SET", "a", "hello")
	payload := string(rdb.DumpPayload(nil, []byte("hello")))
	if got := h.do("DUMP", "a"); got != bulk(payload) {
		t.Fatalf("DUMP a: %q", got)
	}
	bad := []byte(payload)
	bad[len(bad)-1] ^= 1
	future := strconv.FormatInt(h.now+60000, 10)
	past := strconv.FormatInt(h.now-1, 10)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"DUMP", "missing"}, null},
		{[]string{"RESTORE", "b", "0", payload}, ok},
		{[]string{"GET", "b"}, bulk("hello")},
		{[]string{"RESTORE", "b", "0", payload}, "-BUSYKEY Target key name already exists.\r\n"},
		{[]string{"RESTORE", "b", "x", payload, "REPLACE"}, notInt},
		{[]string{"RESTORE", "c", "-1", payload}, "-ERR Invalid TTL value, must be >= 0\r\n"},
		{[]string{"RESTORE", "c", "0", string(bad)}, "-ERR DUMP payload version or checksum are wrong\r\n"},
		{[]string{"RESTORE", "c", "0", payload, "BOGUS"}, syntax},
		{[]string{"RESTORE", "c", "0", payload, "IDLETIME", "-1"}, "-ERR Invalid IDLETIME value, must be >= 0\r\n"},
		{[]string{"RESTORE", "c", "0", payload, "FREQ", "256"}, "-ERR Invalid FREQ value, must be >= 0 and <= 255\r\n"},
		{[]string{"RESTORE", "c", "0", payload, "IDLETIME", "5", "FREQ", "5"}, syntax},
		{[]string{"RESTORE", "c", "0", payload, "IDLETIME", "5"}, ok},
		{[]string{"RESTORE", "d", "5000", payload}, ok},
		{[]string{"PTTL", "d"}, num(5000)},
		{[]string{"RESTORE", "e", future, payload, "ABSTTL"}, ok},
		{[]string{"PTTL", "e"}, num(60000)},
		{[]string{"RESTORE", "f", past, payload, "ABSTTL"}, ok},
		{[]string{"EXISTS", "f"}, num(0)},
		{[]string{"RESTORE", "b", past, payload, "ABSTTL", "REPLACE"}, ok},
		{[]string{"EXISTS", "b"}, num(0)},
		{[]string{"RESTORE-ASKING", "g", "0", payload}, ok},
		{[]string{"GET", "g"}, bulk("hello")},
	} {
		if got := h.do(c.args...); got != c.want {
			t.Errorf("%.60q: got %q, want %q", c.args, got, c.want)
		}
	}
	// A well-formed payload of another type is "Bad data format".
	list := []byte{1, 1, 1, 'x'}
	list = append(list, 10, 0)
	crc := rdb.CRC64(0, list)
	for i := range 8 {
		list = append(list, byte(crc>>(8*i)))
	}
	if got := h.do("RESTORE", "h", "0", string(list)); got != "-ERR Bad data format\r\n" {
		t.Fatalf("RESTORE of a list payload: %q", got)
	}
}

// startRedis starts a redis-server for the interop tests.
func startRedis(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: testenv.StartRedis(t, ""), Protocol: 2})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDumpRestoreWithRedis(t *testing.T) {
	rc := startRedis(t)
	ctx := context.Background()
	d := New(store.New(), Options{})
	hc := redis.NewClient(&redis.Options{Addr: serveTCP(t, d), Protocol: 2})
	defer hc.Close()
	for _, v := range []string{"", "hello", "12345", "-77", strings.Repeat("compressible ", 1000), "\x00\xff"} {
		rc.Set(ctx, "k", v, 0)
		p, err := rc.Dump(ctx, "k").Result()
		if err != nil {
			t.Fatal(err)
		}
		if err := hc.RestoreReplace(ctx, "k", 0, p).Err(); err != nil {
			t.Fatalf("hearsay RESTORE of Redis's DUMP of %.20q: %v", v, err)
		}
		if got, _ := hc.Get(ctx, "k").Result(); got != v {
			t.Fatalf("after RESTORE: %.20q, want %.20q", got, v)
		}
		p2, err := hc.Dump(ctx, "k").Result()
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.RestoreReplace(ctx, "k2", time.Minute, p2).Err(); err != nil {
			t.Fatalf("Redis RESTORE of hearsay's DUMP of %.20q: %v", v, err)
		}
		if got, _ := rc.Get(ctx, "k2").Result(); got != v {
			t.Fatalf("Redis after RESTORE: %.20q, want %.20q", got, v)
		}
	}
}

func TestMigrate(t *testing.T) {
	rc := startRedis(t)
	ctx := context.Background()
	raddr := rc.Options().Addr
	host, port, _ := net.SplitHostPort(raddr)
	d := New(store.New(), Options{})
	hc := redis.NewClient(&redis.Options{Addr: serveTCP(t, d), Protocol: 2})
	defer hc.Close()
	do := func(args ...any) (any, error) { return hc.Do(ctx, args...).Result() }

	if r, err := do("MIGRATE", host, port, "missing", 0, 1000); err != nil || r != "NOKEY" {
		t.Fatalf("MIGRATE of a missing key: %v %v", r, err)
	}
	hc.Set(ctx, "a", "1", time.Minute)
	if r, err := do("MIGRATE", host, port, "a", 0, 1000); err != nil || r != "OK" {
		t.Fatalf("MIGRATE a: %v %v", r, err)
	}
	if n, _ := hc.Exists(ctx, "a").Result(); n != 0 {
		t.Fatal("source kept the migrated key")
	}
	if v, _ := rc.Get(ctx, "a").Result(); v != "1" {
		t.Fatalf("target: a = %q", v)
	}
	if ttl, _ := rc.PTTL(ctx, "a").Result(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("target TTL %v", ttl)
	}
	// KEYS with the same slot tag, COPY keeps them here.
	hc.Set(ctx, "{t}x", "x", 0)
	hc.Set(ctx, "{t}y", "y", 0)
	if r, err := do("MIGRATE", host, port, "", 0, 1000, "COPY", "KEYS", "{t}x", "{t}y", "{t}missing"); err != nil || r != "OK" {
		t.Fatalf("MIGRATE COPY KEYS: %v %v", r, err)
	}
	if n, _ := hc.Exists(ctx, "{t}x", "{t}y").Result(); n != 2 {
		t.Fatal("COPY deleted the source keys")
	}
	// Now the target has them: BUSYKEY, unless REPLACE.
	_, err := do("MIGRATE", host, port, "", 0, 1000, "KEYS", "{t}x")
	if err == nil || err.Error() != "ERR Target instance replied with error: BUSYKEY Target key name already exists." {
		t.Fatalf("MIGRATE onto an existing key: %v", err)
	}
	if n, _ := hc.Exists(ctx, "{t}x").Result(); n != 1 {
		t.Fatal("a key the target refused was deleted")
	}
	if r, err := do("MIGRATE", host, port, "", 0, 1000, "REPLACE", "KEYS", "{t}x", "{t}y"); err != nil || r != "OK" {
		t.Fatalf("MIGRATE REPLACE: %v %v", r, err)
	}
	for _, c := range []struct {
		args []any
		want string
	}{
		{[]any{"MIGRATE", host, port, "a", 0, 1000, "KEYS", "b"}, "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"},
		{[]any{"MIGRATE", host, port, "a", 0, 1000, "BOGUS"}, "ERR syntax error"},
		{[]any{"MIGRATE", host, port, "a", "x", 1000}, "ERR value is not an integer or out of range"},
		{[]any{"MIGRATE", host, port, "", 0, 1000, "KEYS", "a", "b"}, "CROSSSLOT Keys in request don't hash to the same slot"},
	} {
		if _, err := do(c.args...); err == nil || err.Error() != c.want {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	hc.Set(ctx, "z", "1", 0)
	if _, err := do("MIGRATE", host, port, "z", 0, 1000, "AUTH", "nope"); err == nil || !strings.HasPrefix(err.Error(), "ERR Target instance replied with error: ") {
		t.Fatalf("MIGRATE with a refused AUTH: %v", err)
	}
	// A target nobody listens on.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	if _, err := do("MIGRATE", "127.0.0.1", deadPort, "z", 0, 200); err == nil || err.Error() != "IOERR error or timeout connecting to the client" {
		t.Fatalf("MIGRATE to a closed port: %v", err)
	}
	if n, _ := hc.Exists(ctx, "z").Result(); n != 1 {
		t.Fatal("a failed MIGRATE deleted the key")
	}
	// A target that is not Redis: it answers, but not +OK. The key stays.
	web, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	go func() {
		for {
			c, err := web.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
				}
			}()
		}
	}()
	webPort := strconv.Itoa(web.Addr().(*net.TCPAddr).Port)
	if _, err := do("MIGRATE", "127.0.0.1", webPort, "z", 0, 500); err == nil || !strings.Contains(err.Error(), "unexpected reply") {
		t.Fatalf("MIGRATE to a port that is not Redis: %v", err)
	}
	if v, _ := hc.Get(ctx, "z").Result(); v != "1" {
		t.Fatalf("a MIGRATE to a non-Redis port lost the key: %q", v)
	}
}
