package command

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/testenv"
	"github.com/hearsay/hearsay/node/store"
)

// serveTCP runs d on a throwaway loopback listener, one goroutine per
// connection, the way a runtime drives Serve.
func serveTCP(t testing.TB, d *Dispatcher) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				c := d.NewConn()
				defer d.CloseConn(c)
				c.Addr, c.LocalAddr = nc.RemoteAddr().String(), nc.LocalAddr().String()
				in := make([]byte, 0, 64<<10)
				var out []byte
				for {
					if len(in) == cap(in) {
						in = append(in, 0)[:len(in)]
					}
					n, err := nc.Read(in[len(in):cap(in)])
					if err != nil {
						return
					}
					in = in[:len(in)+n]
					used, o, closeConn := d.Serve(c, in, out[:0])
					out = o
					if len(out) > 0 {
						if _, err := nc.Write(out); err != nil {
							return
						}
					}
					if closeConn {
						return
					}
					in = in[:copy(in, in[used:])]
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestGoRedisClient(t *testing.T) {
	d := New(store.New(), Options{})
	addr := serveTCP(t, d)
	ctx := context.Background()
	for _, proto := range []int{2, 3} {
		t.Run("RESP"+strconv.Itoa(proto), func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto, ClientName: "tester"})
			defer rdb.Close()
			d.Store().FlushAll()
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(rdb.Ping(ctx).Err())
			must(rdb.Set(ctx, "a", "hello", 0).Err())
			if v, err := rdb.Get(ctx, "a").Result(); err != nil || v != "hello" {
				t.Fatalf("GET = %q, %v", v, err)
			}
			if _, err := rdb.Get(ctx, "missing").Result(); err != redis.Nil {
				t.Fatalf("GET missing: %v", err)
			}
			if v, err := rdb.Incr(ctx, "n").Result(); err != nil || v != 1 {
				t.Fatal(v, err)
			}
			if v, err := rdb.IncrBy(ctx, "n", 41).Result(); err != nil || v != 42 {
				t.Fatal(v, err)
			}
			if err := rdb.Incr(ctx, "a").Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
				t.Fatalf("INCR string: %v", err)
			}
			if ok, err := rdb.Expire(ctx, "a", 100*time.Second).Result(); err != nil || !ok {
				t.Fatal(ok, err)
			}
			if ttl, err := rdb.TTL(ctx, "a").Result(); err != nil || ttl < 99*time.Second || ttl > 100*time.Second {
				t.Fatal(ttl, err)
			}
			must(rdb.Set(ctx, "px", "v", 1500*time.Millisecond).Err())
			if ttl, err := rdb.PTTL(ctx, "px").Result(); err != nil || ttl > 1500*time.Millisecond || ttl < 1400*time.Millisecond {
				t.Fatal(ttl, err)
			}
			must(rdb.MSet(ctx, "{u}1", "x", "{u}2", "y").Err())
			vals, err := rdb.MGet(ctx, "{u}1", "{u}2", "{u}3").Result()
			if err != nil || len(vals) != 3 || vals[0] != "x" || vals[1] != "y" || vals[2] != nil {
				t.Fatalf("MGET = %v, %v", vals, err)
			}
			if err := rdb.MGet(ctx, "a", "b").Err(); err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT") {
				t.Fatalf("cross-slot MGET: %v", err)
			}
			if n, err := rdb.Del(ctx, "{u}1", "{u}2").Result(); err != nil || n != 2 {
				t.Fatal(n, err)
			}
			hello, err := rdb.Do(ctx, "HELLO", "3").Result()
			if err != nil {
				t.Fatal(err)
			}
			m, ok := hello.(map[any]any)
			if !ok || m["proto"] != int64(3) || m["mode"] != "cluster" {
				t.Fatalf("HELLO 3 = %#v", hello)
			}
			if name, err := rdb.ClientGetName(ctx).Result(); err != nil || name != "tester" {
				t.Fatalf("client name %q %v", name, err)
			}
			keys, cursor, err := rdb.Scan(ctx, 0, "*", 100).Result()
			if err != nil || cursor != 0 || len(keys) != 3 {
				t.Fatalf("SCAN = %v %d %v", keys, cursor, err)
			}
			cfg, err := rdb.ConfigGet(ctx, "cluster-enabled").Result()
			if err != nil || cfg["cluster-enabled"] != "yes" {
				t.Fatalf("CONFIG GET = %v %v", cfg, err)
			}
			info, err := rdb.Info(ctx, "cluster").Result()
			if err != nil || !strings.Contains(info, "cluster_enabled:1") {
				t.Fatalf("INFO = %q %v", info, err)
			}
			if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 3 {
				t.Fatal(n, err)
			}
			if _, err := rdb.Command(ctx).Result(); err != nil {
				t.Fatalf("COMMAND: %v", err)
			}
			// Pipelining.
			pipe := rdb.Pipeline()
			for i := range 100 {
				pipe.Set(ctx, "p"+strconv.Itoa(i), i, 0)
			}
			get := pipe.Get(ctx, "p99")
			if _, err := pipe.Exec(ctx); err != nil || get.Val() != "99" {
				t.Fatalf("pipeline: %v %q", err, get.Val())
			}
			if err := rdb.Do(ctx, "NOSUCH", "x").Err(); err == nil || err.Error() != "ERR unknown command 'NOSUCH', with args beginning with: 'x' " {
				t.Fatalf("unknown: %v", err)
			}
		})
	}
}

func TestGoRedisAuth(t *testing.T) {
	d := New(store.New(), Options{RequirePass: "pw"})
	addr := serveTCP(t, d)
	ctx := context.Background()
	bad := redis.NewClient(&redis.Options{Addr: addr, Password: "nope", MaxRetries: -1})
	defer bad.Close()
	if err := bad.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("bad password: %v", err)
	}
	good := redis.NewClient(&redis.Options{Addr: addr, Password: "pw"})
	defer good.Close()
	if err := good.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	none := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1})
	defer none.Close()
	if err := none.Get(ctx, "k").Err(); err == nil || err.Error() != "NOAUTH Authentication required." {
		var re redis.Error
		_ = errors.As(err, &re)
		t.Fatalf("no password: %v", err)
	}
}

func TestRedisCLI(t *testing.T) {
	cli := testenv.RequireBinary(t, "redis-cli")
	d := New(store.New(), Options{})
	addr := serveTCP(t, d)
	host, port, _ := net.SplitHostPort(addr)
	rc := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "a", "b"}, "OK"},
		{[]string{"get", "a"}, "b"},
		{[]string{"incr", "n"}, "1"},
		{[]string{"expire", "a", "100"}, "1"},
		{[]string{"ttl", "a"}, "100"},
		{[]string{"mget", "a", "{a}x"}, "b"},
		{[]string{"mget", "a", "b"}, "CROSSSLOT Keys in request don't hash to the same slot"},
		{[]string{"ping"}, "PONG"},
		{[]string{"dbsize"}, "2"},
		{[]string{"config", "get", "cluster-enabled"}, "cluster-enabled\nyes"},
		{[]string{"nosuch", "x"}, "ERR unknown command 'nosuch', with args beginning with: 'x'"},
		{[]string{"cluster", "info"}, "ERR This instance has cluster support disabled"},
		{[]string{"-3", "hello", "3"}, ""},
	} {
		got := rc(tt.args...)
		if tt.want == "" {
			if !strings.Contains(got, "cluster") {
				t.Errorf("redis-cli %v = %q", tt.args, got)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("redis-cli %v = %q, want %q", tt.args, got, tt.want)
		}
	}
	// Interactive mode (sends COMMAND DOCS first) reading from stdin.
	cmd := exec.Command(cli, "-h", host, "-p", port)
	cmd.Stdin = strings.NewReader("set x 1\nget x\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") || !strings.Contains(string(out), "1") {
		t.Fatalf("redis-cli stdin: %v %q", err, out)
	}
}
