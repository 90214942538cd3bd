package rdb

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/internal/testenv"
)

// redisServer starts redis-server in dir.
func redisServer(t *testing.T, dir string, extra ...string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: testenv.StartRedis(t, dir, extra...), Protocol: 2})
	t.Cleanup(func() { c.Close() })
	return c
}

// interop is what both directions write: every string encoding Redis
// chooses (raw, integers, LZF for long compressible values) with and
// without TTLs.
func interop() map[string]string {
	m := map[string]string{
		"raw": "hello world", "int8": "-12", "int16": "30000", "int32": "-2000000000", "big": "99999999999",
		"empty": "", "bin\x00": "\x00\xff", "lzf": strings.Repeat("compressible ", 500),
	}
	for i := range 300 {
		m["k:"+strconv.Itoa(i)] = fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i%50))
	}
	return m
}

// TestLoadRedisDump loads a dump.rdb that redis-server 7 wrote.
func TestLoadRedisDump(t *testing.T) {
	dir := t.TempDir()
	c := redisServer(t, dir)
	ctx := context.Background()
	want := interop()
	exp := map[string]int64{}
	for k, v := range want {
		ttl := time.Duration(0)
		if len(k)%3 == 0 {
			ttl = time.Hour
		}
		if err := c.Set(ctx, k, v, ttl).Err(); err != nil {
			t.Fatal(err)
		}
		if ttl != 0 {
			ms, err := c.PExpireTime(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			exp[k] = ms.Milliseconds()
		}
	}
	if err := c.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	info, err := Load(f, func(e Entry) error {
		got[string(e.Key)] = string(e.Value)
		if e.ExpireAtMs != exp[string(e.Key)] {
			return fmt.Errorf("key %q: expiry %d, Redis says %d", e.Key, e.ExpireAtMs, exp[string(e.Key)])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != 10 || len(got) != len(want) {
		t.Fatalf("version %d, %d keys, want 10 and %d", info.Version, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %q: %.40q, want %.40q", k, got[k], v)
		}
	}
}

// TestRedisLoadsOurs checks a file from Writer with redis-check-rdb and by
// starting redis-server on it.
func TestRedisLoadsOurs(t *testing.T) {
	check := testenv.RequireBinary(t, "redis-check-rdb")
	dir := t.TempDir()
	want := interop()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	must(t, w.Header([2]string{"redis-ver", "7.0.15"}, [2]string{"redis-bits", "64"}))
	must(t, w.SelectDB(0, uint64(len(want)), 0))
	at := time.Now().Add(time.Hour).UnixMilli()
	for k, v := range want {
		e := int64(0)
		if len(k)%3 == 0 {
			e = at
		}
		must(t, w.String([]byte(k), []byte(v), e))
	}
	must(t, w.Finish())
	path := filepath.Join(dir, "ours.rdb")
	must(t, os.WriteFile(path, buf.Bytes(), 0o644))
	if out, err := exec.Command(check, path).CombinedOutput(); err != nil || !bytes.Contains(out, []byte("RDB looks OK!")) {
		t.Fatalf("redis-check-rdb: %v\n%s", err, out)
	}
	c := redisServer(t, dir, "--dbfilename", "ours.rdb")
	ctx := context.Background()
	if n, err := c.DBSize(ctx).Result(); err != nil || n != int64(len(want)) {
		t.Fatalf("redis-server DBSIZE %d %v, want %d", n, err, len(want))
	}
	for k, v := range want {
		got, err := c.Get(ctx, k).Result()
		if err != nil || got != v {
			t.Fatalf("redis-server GET %q: %.40q %v, want %.40q", k, got, err, v)
		}
		if len(k)%3 == 0 {
			if ms, _ := c.PExpireTime(ctx, k).Result(); ms.Milliseconds() != at {
				t.Fatalf("redis-server PEXPIRETIME %q: %v, want %d", k, ms, at)
			}
		}
	}
}

func FuzzLoad(f *testing.F) {
	var b bytes.Buffer
	w := NewWriter(&b)
	_ = w.Header([2]string{"a", "b"})
	_ = w.SelectDB(0, 1, 1)
	_ = w.String([]byte("k"), []byte("12345"), 99)
	_ = w.String([]byte("s"), bytes.Repeat([]byte("ab"), 100), 0)
	_ = w.Finish()
	f.Add(b.Bytes())
	f.Add([]byte("REDIS0009\xfe\x00\x00\x01z\xc3\x05\x0a\x00a\xe0\x00\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		var es []Entry
		_, err := Load(bytes.NewReader(p), func(e Entry) error {
			es = append(es, Entry{Key: bytes.Clone(e.Key), Value: bytes.Clone(e.Value), ExpireAtMs: e.ExpireAtMs})
			return nil
		})
		if err != nil {
			return
		}
		// What loads writes back and loads the same (database 0 only).
		var out bytes.Buffer
		w := NewWriter(&out)
		must(t, w.Header())
		must(t, w.SelectDB(0, uint64(len(es)), 0))
		for _, e := range es {
			must(t, w.String(e.Key, e.Value, e.ExpireAtMs))
		}
		must(t, w.Finish())
		again, _, err := loadAll(out.Bytes())
		if err != nil {
			t.Fatalf("rewritten file does not load: %v", err)
		}
		if len(again) != len(es) {
			t.Fatalf("%d keys, rewritten %d", len(es), len(again))
		}
		for i := range es {
			if !bytes.Equal(again[i].Key, es[i].Key) || !bytes.Equal(again[i].Value, es[i].Value) || again[i].ExpireAtMs != es[i].ExpireAtMs {
				t.Fatalf("entry %d changed on the round trip", i)
			}
		}
	})
}

func FuzzParsePayload(f *testing.F) {
	f.Add(DumpPayload(nil, []byte("hello")))
	f.Add(DumpPayload(nil, []byte("12345")))
	f.Add(DumpPayload(nil, bytes.Repeat([]byte("z"), 300)))
	f.Fuzz(func(t *testing.T, p []byte) {
		v, err := ParsePayload(p)
		if err != nil {
			if err != ErrPayloadVersionOrChecksum && err != ErrBadDataFormat {
				t.Fatalf("error %v is neither of ParsePayload's", err)
			}
			return
		}
		if got, err := ParsePayload(DumpPayload(nil, v)); err != nil || !bytes.Equal(got, v) {
			t.Fatalf("round trip: %q %v, want %q", got, err, v)
		}
	})
}
