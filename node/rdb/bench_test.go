package rdb

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/hearsay/hearsay/internal/testenv"
)

// benchKeys is the size of the benchmark file: 1M keys of 100 bytes, the
// full-sync workload.
const benchKeys = 1_000_000

var benchFile []byte

func benchData(b *testing.B) []byte {
	if benchFile == nil {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		_ = w.Header([2]string{"redis-ver", "7.0.15"})
		_ = w.SelectDB(0, benchKeys, 0)
		val := bytes.Repeat([]byte("v"), 100)
		for i := range benchKeys {
			_ = w.String(strconv.AppendInt([]byte("key:"), int64(i), 10), val, 0)
		}
		if err := w.Finish(); err != nil {
			b.Fatal(err)
		}
		benchFile = buf.Bytes()
	}
	return benchFile
}

func BenchmarkWrite(b *testing.B) {
	b.SetBytes(int64(len(benchData(b))))
	val := bytes.Repeat([]byte("v"), 100)
	key := make([]byte, 0, 32)
	for b.Loop() {
		w := NewWriter(io.Discard)
		_ = w.Header([2]string{"redis-ver", "7.0.15"})
		_ = w.SelectDB(0, benchKeys, 0)
		for i := range benchKeys {
			key = strconv.AppendInt(append(key[:0], "key:"...), int64(i), 10)
			_ = w.String(key, val, 0)
		}
		if err := w.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	p := benchData(b)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		n := 0
		if _, err := Load(bytes.NewReader(p), func(Entry) error { n++; return nil }); err != nil || n != benchKeys {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkRedisLoad is the reference for BenchmarkLoad: redis-server
// 7 loading the same file at start, timed by its own log line ("DB
// loaded from disk: N seconds"). Run it with -benchtime 3x.
func BenchmarkRedisLoad(b *testing.B) {
	bin := testenv.RequireBinary(b, "redis-server")
	p := benchData(b)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dump.rdb"), p, 0o644); err != nil {
		b.Fatal(err)
	}
	re := regexp.MustCompile(`DB loaded from disk: ([0-9.]+) seconds`)
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		log := filepath.Join(dir, "redis.log")
		_ = os.Remove(log)
		cmd := exec.CommandContext(context.Background(), bin, "--port", "0", "--unixsocket", filepath.Join(dir, "s.sock"), "--dir", dir, "--save", "",
			"--appendonly", "no", "--logfile", log)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		var secs float64
		for deadline := time.Now().Add(60 * time.Second); secs == 0; {
			if m := re.FindSubmatch(must2(os.ReadFile(log))); m != nil {
				secs, _ = strconv.ParseFloat(string(m[1]), 64)
			}
			if time.Now().After(deadline) {
				b.Fatal("redis-server did not report its load")
			}
			time.Sleep(10 * time.Millisecond)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		total += time.Duration(secs * float64(time.Second))
		b.StartTimer()
	}
	// The timer measured nothing but the loop; report Redis's own figure.
	b.ReportMetric(float64(len(p))/1e6/(total.Seconds()/float64(b.N)), "redisMB/s")
}

func must2(b []byte, _ error) []byte { return b }
