package repl

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearsay/hearsay/node/store"
)

// writeMix runs a mix of every write command against n: plain, expiring
// and already expired keys, counters, appends, expiry changes, deletes.
func writeMix(n *testNode, rng *rand.Rand, ops int) {
	now := time.Now().UnixMilli()
	for range ops {
		k := "k" + strconv.Itoa(rng.IntN(500))
		switch rng.IntN(12) {
		case 0, 1:
			n.exec("SET", k, "v"+strconv.Itoa(rng.IntN(1e6)))
		case 2:
			n.exec("SET", k, "ttl", "PX", strconv.Itoa(10000+rng.IntN(10000)))
		case 3:
			n.exec("INCR", "n"+k)
		case 4:
			n.exec("APPEND", k, "+")
		case 5:
			n.exec("EXPIRE", k, "100")
		case 6:
			n.exec("PERSIST", k)
		case 7:
			n.exec("DEL", k)
		case 8:
			n.exec("SET", k, "kept", "KEEPTTL")
		case 9:
			n.exec("PEXPIREAT", k, strconv.FormatInt(now-1, 10)) // deletes
		case 10:
			n.exec("GETDEL", k)
		case 11:
			n.exec("MSET", "{"+k+"}a", "1", "{"+k+"}b", "2")
		}
	}
}

func TestFullSyncThenStream(t *testing.T) {
	master := newTestNode(t, Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	writeMix(master, rng, 3000)
	replica := newTestNode(t, Config{})
	replica.m.SetRole(true, master.addr)
	waitCaughtUp(t, master, replica)
	sameKeyspace(t, master, replica)
	writeMix(master, rng, 3000)
	waitCaughtUp(t, master, replica)
	sameKeyspace(t, master, replica)
	if got := master.m.FullSyncs.Load(); got != 1 {
		t.Errorf("full syncs on the master: %d, want 1", got)
	}
	waitFor(t, func() bool { r := master.m.Replicas(); return len(r) == 1 && r[0].Offset == master.m.Offset() })
	info := string(master.m.Info(nil))
	for _, want := range []string{"role:master\r\n", "connected_slaves:1\r\n", "slave0:ip=127.0.0.1,port=0,state=online,offset=" + strconv.FormatInt(master.m.Offset(), 10),
		"master_repl_offset:" + strconv.FormatInt(master.m.Offset(), 10) + "\r\n", "repl_backlog_active:1\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("master INFO lacks %q:\n%s", want, info)
		}
	}
	info = string(replica.m.Info(nil))
	for _, want := range []string{"role:slave\r\n", "master_link_status:up\r\n", "slave_repl_offset:" + strconv.FormatInt(master.m.Offset(), 10) + "\r\n",
		"master_replid:" + master.m.stream.Info().ReplID + "\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("replica INFO lacks %q:\n%s", want, info)
		}
	}
}

// TestSyncUnderLoad checks the snapshot taken while writers run: the stream
// replayed on it must reach the master's state.
func TestSyncUnderLoad(t *testing.T) {
	master := newTestNode(t, Config{})
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		master.exec("SET", "pre"+strconv.Itoa(i), strings.Repeat("x", 100))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := &testNode{st: master.st, d: master.d, m: master.m, cs: master.d.NewConn()}
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for {
				select {
				case <-stop:
					return
				default:
				}
				writeMix(n, r, 50)
				n.exec("INCR", "pre"+strconv.Itoa(r.IntN(20000)))
			}
		}()
	}
	replica := newTestNode(t, Config{})
	replica.m.SetRole(true, master.addr)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	writeMix(master, rng, 10)
	waitCaughtUp(t, master, replica)
	sameKeyspace(t, master, replica)
}

func TestPartialResyncAfterDrop(t *testing.T) {
	master := newTestNode(t, Config{})
	replica := newTestNode(t, Config{})
	replica.m.SetRole(true, master.addr)
	rng := rand.New(rand.NewPCG(5, 6))
	writeMix(master, rng, 500)
	waitCaughtUp(t, master, replica)
	// Cut the link; write while it is down.
	replica.m.link.wmu.Lock()
	replica.m.link.conn.Close()
	replica.m.link.wmu.Unlock()
	writeMix(master, rng, 500)
	waitCaughtUp(t, master, replica)
	sameKeyspace(t, master, replica)
	if f, p := master.m.FullSyncs.Load(), master.m.PartialSyncs.Load(); f != 1 || p != 1 {
		t.Fatalf("master: %d full and %d partial syncs, want 1 and 1", f, p)
	}
	if p := replica.m.SyncsWithMaster[0].Load(); p != 1 {
		t.Fatalf("replica: %d partial syncs, want 1", p)
	}
}

func TestPsyncRules(t *testing.T) {
	master := newTestNode(t, Config{BacklogSize: 1 << 10})
	master.exec("SET", "a", "1")
	c := dialRaw(t, master.addr)
	if r := c.ask(t, "PSYNC", "?", "-1"); !strings.HasPrefix(r, "+FULLRESYNC ") {
		t.Fatalf("PSYNC ? -1: %q", r)
	}
	id := master.m.stream.Info().ReplID
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown id", []string{"PSYNC", strings.Repeat("a", 40), "1"}, "+FULLRESYNC "},
		{"offset past the end", []string{"PSYNC", id, "99999"}, "+FULLRESYNC "},
		{"bad offset", []string{"PSYNC", id, "x"}, "-ERR value is not an integer or out of range"},
		{"replconf odd", []string{"REPLCONF", "listening-port"}, "-ERR syntax error"},
		{"replconf port", []string{"REPLCONF", "listening-port", "x"}, "-ERR value is not an integer or out of range"},
		{"replconf unknown", []string{"REPLCONF", "bogus", "1"}, "-ERR Unrecognized REPLCONF option: bogus"},
		{"wait args", []string{"WAIT", "1", "-1"}, "-ERR timeout is negative"},
		{"wait none", []string{"WAIT", "0", "0"}, ":"},
	} {
		c := dialRaw(t, master.addr)
		if r := c.ask(t, tc.args...); !strings.HasPrefix(r, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, r, tc.want)
		}
	}
	// Beyond the backlog: the bytes from offset 1 are gone.
	for i := range 100 {
		master.exec("SET", "a", strings.Repeat("y", 100)+strconv.Itoa(i))
	}
	c = dialRaw(t, master.addr)
	if r := c.ask(t, "PSYNC", id, "1"); !strings.HasPrefix(r, "+FULLRESYNC ") {
		t.Fatalf("PSYNC from an offset trimmed from the backlog: %q", r)
	}
	if master.m.PartialSyncErrors.Load() < 2 {
		t.Fatalf("partial sync errors: %d", master.m.PartialSyncErrors.Load())
	}
}

func TestWait(t *testing.T) {
	master := newTestNode(t, Config{})
	replica := newTestNode(t, Config{})
	replica.m.SetRole(true, master.addr)
	master.exec("SET", "a", "1")
	waitCaughtUp(t, master, replica)
	c := dialRaw(t, master.addr)
	if r := c.ask(t, "SET", "b", "2"); r != "+OK" {
		t.Fatal(r)
	}
	if r := c.ask(t, "WAIT", "1", "2000"); r != ":1" {
		t.Fatalf("WAIT 1 with a live replica: %q", r)
	}
	if r := c.ask(t, "WAIT", "2", "100"); r != ":1" {
		t.Fatalf("WAIT 2 with one replica: %q", r)
	}
	replica.m.Close()
	if r := c.ask(t, "SET", "c", "3"); r != "+OK" {
		t.Fatal(r)
	}
	start := time.Now()
	if r := c.ask(t, "WAIT", "1", "300"); r != ":0" {
		t.Fatalf("WAIT 1 with the replica gone: %q", r)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("WAIT returned after %v, before its timeout", d)
	}
	// Pipelined commands after a blocked WAIT wait for it.
	if _, err := c.Write([]byte(string(encode("WAIT", "1", "100")) + string(encode("PING")))); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{":0", "+PONG"} {
		line, err := c.br.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != want {
			t.Fatalf("pipelined after WAIT: %q %v, want %q", line, err, want)
		}
	}
}

func TestReplicaThatNeverReadsIsDropped(t *testing.T) {
	master := newTestNode(t, Config{HardLimit: 1 << 20})
	c := dialRaw(t, master.addr)
	if _, err := c.Write(encode("PSYNC", "?", "-1")); err != nil {
		t.Fatal(err)
	}
	// The replica reads nothing from here on; the kernel's socket buffers
	// take a few MB, the limit the rest.
	big := strings.Repeat("z", 64<<10)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; master.m.ReplicaDrops.Load() == 0; i++ {
		master.exec("SET", "big"+strconv.Itoa(i%100), big)
		if time.Now().After(deadline) {
			t.Fatalf("replica not dropped; retained %d bytes", master.m.stream.Info().Retained)
		}
	}
	waitFor(t, func() bool { return len(master.m.Replicas()) == 0 })
	// The stream lets go of what the dropped replica held.
	for i := range 40 {
		master.exec("SET", "big"+strconv.Itoa(i), big)
	}
	if r := master.m.stream.Info().Retained; r > 2<<20 {
		t.Fatalf("stream still retains %d bytes", r)
	}
}

// TestPromotionKeepsHistory is PSYNC2: after a replica is promoted, its
// sibling continues from it with a partial resync.
func TestPromotionKeepsHistory(t *testing.T) {
	master := newTestNode(t, Config{})
	a := newTestNode(t, Config{})
	b := newTestNode(t, Config{})
	a.m.SetRole(true, master.addr)
	b.m.SetRole(true, master.addr)
	writeMix(master, rand.New(rand.NewPCG(7, 8)), 1000)
	waitCaughtUp(t, master, a)
	waitCaughtUp(t, master, b)
	old := master.m.stream.Info().ReplID
	master.m.Close()
	a.m.SetRole(false, "")
	if in := a.m.stream.Info(); in.ReplID2 != old || in.SecondOffset != in.Offset+1 {
		t.Fatalf("promoted: replid2 %s second offset %d (offset %d), want %s", in.ReplID2, in.SecondOffset, in.Offset, old)
	}
	b.m.SetRole(true, a.addr)
	writeMix(a, rand.New(rand.NewPCG(9, 10)), 500)
	waitCaughtUp(t, a, b)
	sameKeyspace(t, a, b)
	if f := a.m.FullSyncs.Load(); f != 0 {
		t.Fatalf("the sibling full-synced from the promoted replica (%d)", f)
	}
	if p := a.m.PartialSyncs.Load(); p != 1 {
		t.Fatalf("partial syncs on the promoted replica: %d", p)
	}
}

func TestMarkReader(t *testing.T) {
	mark := strings.Repeat("m", 40)
	for _, chunk := range []int{1, 7, 40, 41, 1000} {
		src := &chunked{data: []byte("payload-bytes" + mark + "rest"), n: chunk}
		mr := &markReader{r: src, mark: []byte(mark)}
		got, err := io.ReadAll(mr)
		if err != nil || string(got) != "payload-bytes" {
			t.Errorf("chunk %d: %q %v", chunk, got, err)
		}
	}
	mr := &markReader{r: strings.NewReader("no mark here"), mark: []byte(mark)}
	if _, err := io.ReadAll(mr); err != io.ErrUnexpectedEOF {
		t.Errorf("without the mark: %v, want unexpected EOF", err)
	}
}

type chunked struct {
	data []byte
	n    int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkLoadSnapshot is a replica's load of a full sync: 1M keys of 100
// bytes parsed and stored. Compare with node/rdb's BenchmarkRedisLoad.
func BenchmarkLoadSnapshot(b *testing.B) {
	master := newTestNode(b, Config{})
	val := strings.Repeat("v", 100)
	for i := range 1_000_000 {
		master.st.Set(uint16(i%16384), []byte("key:"+strconv.Itoa(i)), []byte(val), store.SetOptions{}, 0)
	}
	var buf bytes.Buffer
	if _, err := master.m.writeSnapshot(&buf, "x", 0); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		if _, _, err := loadSnapshot(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteSnapshot is the master's side: the store of 1M keys read
// slot by slot and encoded.
func BenchmarkWriteSnapshot(b *testing.B) {
	master := newTestNode(b, Config{})
	val := strings.Repeat("v", 100)
	for i := range 1_000_000 {
		master.st.Set(uint16(i%16384), []byte("key:"+strconv.Itoa(i)), []byte(val), store.SetOptions{}, 0)
	}
	var n int64
	for b.Loop() {
		var err error
		if n, err = master.m.writeSnapshot(io.Discard, "x", 0); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(n)
}

// TestRestartedReplicaResumes: a replica's snapshot names its history, so a
// replica restarted from it resyncs partially.
func TestRestartedReplicaResumes(t *testing.T) {
	master := newTestNode(t, Config{})
	replica := newTestNode(t, Config{})
	replica.m.SetRole(true, master.addr)
	rng := rand.New(rand.NewPCG(11, 12))
	writeMix(master, rng, 500)
	waitCaughtUp(t, master, replica)
	var dump bytes.Buffer
	if _, err := replica.m.WriteSnapshot(&dump); err != nil {
		t.Fatal(err)
	}
	replica.m.Close()
	writeMix(master, rng, 500)
	restarted := newTestNode(t, Config{})
	if _, err := restarted.m.LoadSnapshot(bytes.NewReader(dump.Bytes())); err != nil {
		t.Fatal(err)
	}
	restarted.m.SetRole(true, master.addr)
	waitCaughtUp(t, master, restarted)
	sameKeyspace(t, master, restarted)
	if f, p := master.m.FullSyncs.Load(), master.m.PartialSyncs.Load(); f != 1 || p != 1 {
		t.Fatalf("master served %d full and %d partial syncs, want 1 and 1", f, p)
	}
}

// TestWaitClientGone: a client that closes while blocked in WAIT 0 leaves
// no waiter behind.
func TestWaitClientGone(t *testing.T) {
	master := newTestNode(t, Config{})
	replica := newTestNode(t, Config{})
	replica.m.SetRole(true, master.addr)
	waitCaughtUp(t, master, replica)
	replica.m.Close()
	c := dialRaw(t, master.addr)
	if r := c.ask(t, "SET", "a", "1"); r != "+OK" {
		t.Fatal(r)
	}
	if _, err := c.Write(encode("WAIT", "1", "0")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { master.m.mu.Lock(); defer master.m.mu.Unlock(); return len(master.m.waiters) == 1 })
	c.Close()
	waitFor(t, func() bool { master.m.mu.Lock(); defer master.m.mu.Unlock(); return len(master.m.waiters) == 0 })
}
