package node_test

import (
	"context"
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

// TestSnapshotsWithRedis: a hearsay SAVE passes redis-check-rdb and loads in
// redis-server; a redis-server dump loads in hearsay at start; SIGTERM
// saves and a restart loads it; a corrupt file stops the start with the
// file and offset named.
func TestSnapshotsWithRedis(t *testing.T) {
	server := testenv.RequireBinary(t, "redis-server", "redis-check-rdb")
	ctx := context.Background()
	dir := t.TempDir()
	port := freePort(t)
	p := startNode(t, port, dir)
	mc := client(t, p)
	if err := mc.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "cluster ok", func() (bool, string) {
		s, _ := mc.ClusterInfo(ctx).Result()
		return strings.Contains(s, "cluster_state:ok"), s
	})
	want := map[string]string{}
	for i := range 2000 {
		k, v := "key:"+strconv.Itoa(i), strings.Repeat(strconv.Itoa(i), i%40+1)
		want[k] = v
		ttl := time.Duration(0)
		if i%5 == 0 {
			ttl = time.Hour
		}
		if err := mc.Set(ctx, k, v, ttl).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := mc.Do(ctx, "BGSAVE").Text(); err != nil || r != "Background saving started" {
		t.Fatalf("BGSAVE: %q %v", r, err)
	}
	waitFor(t, 10*time.Second, "bgsave done", func() (bool, string) {
		v := infoField(t, p.addr(), "persistence", "rdb_bgsave_in_progress")
		return v == "0", v
	})
	if err := mc.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if last, err := mc.LastSave(ctx).Result(); err != nil || time.Since(time.Unix(last, 0)) > time.Minute {
		t.Fatalf("LASTSAVE %d %v", last, err)
	}
	dump := filepath.Join(dir, "dump.rdb")
	if out, err := exec.Command("redis-check-rdb", dump).CombinedOutput(); err != nil || !strings.Contains(string(out), "RDB looks OK") {
		t.Fatalf("redis-check-rdb on hearsay's dump: %v\n%s", err, out)
	}
	// redis-server loads it.
	rdir := t.TempDir()
	b, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rdir, "dump.rdb"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	rport := freePort(t)
	rs := exec.Command(server, "--port", strconv.Itoa(rport), "--bind", "127.0.0.1", "--dir", rdir, "--save", "", "--appendonly", "no")
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rs.Process.Kill(); _ = rs.Wait() }()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(rport), Protocol: 2})
	defer rc.Close()
	waitFor(t, 10*time.Second, "redis-server up", func() (bool, string) {
		err := rc.Ping(ctx).Err()
		return err == nil, ""
	})
	if n, err := rc.DBSize(ctx).Result(); err != nil || n != int64(len(want)) {
		t.Fatalf("redis-server loaded %d keys (%v), want %d", n, err, len(want))
	}
	for _, k := range []string{"key:0", "key:7", "key:1999"} {
		if v, _ := rc.Get(ctx, k).Result(); v != want[k] {
			t.Fatalf("redis-server %s = %q, want %q", k, v, want[k])
		}
	}
	if ttl, _ := rc.PTTL(ctx, "key:5").Result(); ttl <= 0 {
		t.Fatalf("key:5 lost its TTL in redis-server: %v", ttl)
	}
	// SIGTERM saves; a restart loads.
	mc.Set(ctx, "late", "write", 0)
	p.stop(t)
	p = startNode(t, port, dir)
	if v, err := client(t, p).Get(ctx, "late").Result(); err != nil || v != "write" {
		t.Fatalf("after a restart: late = %q %v", v, err)
	}
	if n, _ := client(t, p).DBSize(ctx).Result(); n != int64(len(want))+1 {
		t.Fatalf("after a restart: %d keys, want %d", n, len(want)+1)
	}
	p.stop(t)
	// A dump written by redis-server loads in hearsay.
	rc.Set(ctx, "from-redis", "12345", 0)
	if err := rc.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(filepath.Join(rdir, "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dump, b, 0o644); err != nil {
		t.Fatal(err)
	}
	p = startNode(t, port, dir)
	if v, _ := client(t, p).Get(ctx, "from-redis").Result(); v != "12345" {
		t.Fatalf("redis-server's dump: from-redis = %q", v)
	}
	p.stop(t)
	// A corrupt file: the node refuses to start and says where.
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(dump, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "node", "--port", strconv.Itoa(port), "--dir", dir, "--heartbeat", "off").CombinedOutput()
	if err == nil || !strings.Contains(string(out), dump) || !strings.Contains(string(out), "rdb: offset ") {
		t.Fatalf("start with a corrupt dump: %v\n%s", err, out)
	}
}
