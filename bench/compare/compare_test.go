package compare

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hearsay/hearsay/bench/childproc"
	"github.com/hearsay/hearsay/internal/testenv"
)

func TestParseBenchmark(t *testing.T) {
	quiet := "SET: rps=0.0 (overall: 0.0) avg_msec=-nan (overall: -nan)\r" +
		"SET: rps=515633.5 (overall: 513587.3) avg_msec=0.945 (overall: 0.945)\r" +
		"SET: 506329.09 requests per second, p50=0.967 msec                    \n" +
		"GET: rps=210432.0 (overall: 515764.7) avg_msec=0.900 (overall: 0.900)\r" +
		"GET: 560224.12 requests per second, p50=0.879 msec\n\n"
	csv := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","550964.19","0.888","0.072","0.855","1.559","3.479","5.631"
"GET","500000.00","0.951","0.240","0.935","1.511","1.943","4.711"
`
	// redis-benchmark 6 printed -q results without latency.
	old := "PING_INLINE: 81967.21 requests per second\nLPUSH (needed to benchmark LRANGE): 80000 requests per second\n"
	for _, tc := range []struct {
		name, in string
		want     []BenchResult
		err      string
	}{
		{"quiet", quiet, []BenchResult{{"SET", 506329.09}, {"GET", 560224.12}}, ""},
		{"csv", csv, []BenchResult{{"SET", 550964.19}, {"GET", 500000}}, ""},
		{"old quiet", old, []BenchResult{{"PING_INLINE", 81967.21}, {"LPUSH (needed to benchmark LRANGE)", 80000}}, ""},
		{"empty", "", nil, "printed no results"},
		{"progress only", "SET: rps=515633.5 (overall: 513587.3) avg_msec=0.945\r", nil, "printed no results"},
		{"error text", "Could not connect to Redis at 127.0.0.1:1: Connection refused\n", nil, "printed no results"},
		{"csv bad rps", "\"test\",\"rps\"\n\"SET\",\"fast\"\n", nil, `rps "fast"`},
		{"csv header only", "\"test\",\"rps\"\n", nil, "printed no results"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBenchmark(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

const ssInfo = "\t bbr wscale:10,10 rto:204 rtt:0.019/0.012 mss:49152 cwnd:11 bytes_sent:%s bytes_acked:%s bytes_received:%s segs_out:2 segs_in:4 bbr:(bw:9830390624bps,mrtt:0.017) send 227651368421bps lastsnd:512 app_limited minrtt:0.017 snd_wnd:98304\n"

func ssLine(sock, sent, acked, recv string) string {
	return sock + "\n" + fmt.Sprintf(ssInfo, sent, acked, recv)
}

func TestParseSS(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[SockKey]SockBytes
		err      string
	}{
		{
			name: "state column and without",
			in: ssLine("ESTAB 0      0      127.0.0.1:26001 127.0.0.1:37012", "2772", "2772", "27") +
				ssLine("0      0      127.0.0.1:37012 127.0.0.1:26001", "27", "28", "2772"),
			want: map[SockKey]SockBytes{
				{"127.0.0.1:26001", "127.0.0.1:37012"}: {LocalPort: 26001, PeerPort: 37012, Sent: 2772, Received: 27},
				{"127.0.0.1:37012", "127.0.0.1:26001"}: {LocalPort: 37012, PeerPort: 26001, Sent: 27, Received: 2772},
			},
		},
		{
			name: "ipv6 and no bytes_sent (old kernel): bytes_acked",
			in:   "ESTAB 0 0 [::1]:7000 [::1]:40000\n\t cubic bytes_acked:100 bytes_received:5\n",
			want: map[SockKey]SockBytes{{"[::1]:7000", "[::1]:40000"}: {LocalPort: 7000, PeerPort: 40000, Sent: 100, Received: 5}},
		},
		{
			name: "fresh socket without counters",
			in:   "SYN-SENT 0 1 127.0.0.1:40000 127.0.0.1:26002\n\t cubic rto:1000 mss:524\n",
			want: map[SockKey]SockBytes{{"127.0.0.1:40000", "127.0.0.1:26002"}: {LocalPort: 40000, PeerPort: 26002}},
		},
		{name: "empty", in: "", want: map[SockKey]SockBytes{}},
		{name: "info first", in: "\t bytes_sent:1\n", err: "before any socket"},
		{name: "bad port", in: "ESTAB 0 0 127.0.0.1:x 127.0.0.1:1\n", err: "bad addresses"},
		{name: "bad counter", in: "0 0 127.0.0.1:1 127.0.0.1:2\n\t bytes_sent:-3\n", err: "bytes_sent:-3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSS(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, %v\nwant %v", got, err, tc.want)
			}
		})
	}
}

func TestDiffSS(t *testing.T) {
	k := func(l, p string) SockKey { return SockKey{"127.0.0.1:" + l, "127.0.0.1:" + p} }
	s := func(lp, pp int, sent uint64) SockBytes { return SockBytes{LocalPort: lp, PeerPort: pp, Sent: sent} }
	before := map[SockKey]SockBytes{
		k("26001", "40000"): s(26001, 40000, 1000), // accepted side, stays
		k("40000", "26001"): s(40000, 26001, 500),  // dialing side, stays
		k("40001", "26002"): s(40001, 26002, 70),   // closes in the window
		k("7000", "50000"):  s(7000, 50000, 10),    // client port: ignored
	}
	after := map[SockKey]SockBytes{
		k("26001", "40000"): s(26001, 40000, 1600),
		k("40000", "26001"): s(40000, 26001, 900),
		k("40002", "26003"): s(40002, 26003, 50), // opened in the window
		k("7000", "50000"):  s(7000, 50000, 99999),
		k("26003", "40002"): s(26003, 40002, 0),
	}
	got := DiffSS(before, after, 26001, 26003)
	want := SSDelta{Bytes: 600 + 400 + 50, Sockets: 5, New: 2, Gone: 1}
	if got != want {
		t.Errorf("DiffSS = %+v, want %+v", got, want)
	}
}

func TestParseInfo(t *testing.T) {
	got := ParseInfo("# Cluster\r\ncluster_state:ok\r\ncluster_known_nodes:6\r\ncluster_stats_messages_sent:1234\r\n\r\nodd line\r\n")
	want := map[string]string{"cluster_state": "ok", "cluster_known_nodes": "6", "cluster_stats_messages_sent": "1234"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseInfo = %v, want %v", got, want)
	}
}

// frame builds an Ethernet/IPv4 frame as lo delivers it, with the
// transport header followed by payload bytes.
func frame(proto byte, sport, dport uint16, ipOpts, tcpOpts, payload int) []byte {
	ihl := 20 + ipOpts
	l4 := 8
	if proto == unix.IPPROTO_TCP {
		l4 = 20 + tcpOpts
	}
	b := make([]byte, 14+ihl+l4+payload)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(ip[2:], uint16(ihl+l4+payload))
	ip[9] = proto
	t := ip[ihl:]
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	if proto == unix.IPPROTO_TCP {
		t[12] = byte(l4/4) << 4
	}
	return b
}

func TestParsePacket(t *testing.T) {
	tcp := frame(unix.IPPROTO_TCP, 40000, 26001, 0, 12, 2048) // timestamps option
	udp := frame(unix.IPPROTO_UDP, 26001, 26002, 0, 0, 48)
	opts := frame(unix.IPPROTO_TCP, 26001, 40000, 4, 0, 0) // pure ACK, IP options
	v6 := append([]byte(nil), tcp...)
	binary.BigEndian.PutUint16(v6[12:], 0x86dd)
	frag := append([]byte(nil), udp...)
	binary.BigEndian.PutUint16(frag[14+6:], 0x0010) // fragment offset 16
	icmp := frame(1, 0, 0, 0, 0, 8)
	badDoff := append([]byte(nil), tcp...)
	badDoff[14+20+12] = 4 << 4 // 16-byte TCP header
	for _, tc := range []struct {
		name string
		in   []byte
		want Packet
		ok   bool
	}{
		{"tcp with options, snapped", tcp[:14+20+32], Packet{unix.IPPROTO_TCP, 40000, 26001, 20 + 32 + 2048, 2048}, true},
		{"udp heartbeat", udp, Packet{unix.IPPROTO_UDP, 26001, 26002, 20 + 8 + 48, 48}, true},
		{"ack with ip options", opts, Packet{unix.IPPROTO_TCP, 26001, 40000, 24 + 20, 0}, true},
		{"ipv6", v6, Packet{}, false},
		{"later fragment", frag, Packet{}, false},
		{"icmp", icmp, Packet{}, false},
		{"bad tcp header length", badDoff, Packet{}, false},
		{"truncated", tcp[:14+20+4], Packet{}, false},
		{"runt", tcp[:20], Packet{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParsePacket(tc.in)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("ParsePacket = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestReport(t *testing.T) {
	res := &Results{
		Config: Defaults(), RedisVersion: "7.0.15", HearsayRev: "abc1234", CPUs: 2, Method: "capture",
		Throughput: []ThroughputRow{{Test: "SET", Hearsay: []float64{500000, 520000, 530000}, Redis: []float64{700000, 720000, 690000},
			Ceiling: []float64{800000, 750000, 760000}, HearsayCPU: []float64{0.5, 0.4, 0.6}, RedisCPU: []float64{0.7, 0.7, 0.7},
			CeilingCPU: []float64{0.1, 0.2, 0.3}}},
		Bus: []BusRow{
			{Nodes: 6, System: "hearsay", Heartbeat: "off", Window: 10 * time.Second, Captured: true,
				Traffic: Traffic{TCPPayload: 300000, TCPWire: 600000}, SS: SSDelta{Bytes: 300000}, SSOK: true, Msgs: 2400},
			{Nodes: 6, System: "redis", Window: 10 * time.Second, Captured: true,
				Traffic: Traffic{TCPPayload: 3000000, TCPWire: 3100000}, SS: SSDelta{Bytes: 3000000}, SSOK: true, Msgs: 1200},
		},
	}
	var b bytes.Buffer
	if err := res.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		// Medians, not means: 520,000 / 700,000.
		"throughput_set_hearsay_rps=520000\n", "throughput_set_redis_rps=700000\n", "throughput_set_ratio=0.743\n",
		"throughput_set_ceiling_rps=760000\n", "throughput_set_ceiling_ratio=1.086\n",
		"throughput_set_hearsay_cpu_us_per_req=0.500\n", "throughput_set_redis_cpu_us_per_req=0.700\n",
		"throughput_set_ceiling_cpu_us_per_req=0.200\n",
		"bus_6_hearsay_off_bytes_per_node_s=5000\n", "bus_6_redis_bytes_per_node_s=50000\n",
		"bus_6_hearsay_off_ratio=0.1000\n", "bus_6_hearsay_off_wire_ratio=0.1935\n",
		"bus_6_hearsay_off_msgs_per_node_s=40.0\n", "bus_6_hearsay_off_ss_tcp_bytes_per_node_s=5000\n",
		"0.74x", "520,000", "1.09x", "hearsay --heartbeat off", "0.10x",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestGroup(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999.6: "1,000", 51234: "51,234", 1234567: "1,234,567"} {
		if got := Group(v); got != want {
			t.Errorf("Group(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestCapture checks the AF_PACKET counter against traffic of known size.
func TestCapture(t *testing.T) {
	base, err := childproc.PortBlock(2)
	if err != nil {
		t.Fatal(err)
	}
	lo := base + childproc.BusOffset
	c, err := StartCapture(lo, lo+1)
	if err != nil {
		testenv.Skipf(t, "packet capture unavailable (needs CAP_NET_RAW): %v", err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(lo))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer conn.Close()
		b := make([]byte, 10000)
		n := 0
		for n < 5000 {
			m, err := conn.Read(b)
			if err != nil {
				break
			}
			n += m
		}
		got <- n
	}()
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(lo))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(make([]byte, 5000)); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != 5000 {
		t.Fatalf("server read %d bytes", n)
	}
	conn.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(lo+1))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	u, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := u.Write(make([]byte, 48)); err != nil {
			t.Fatal(err)
		}
	}
	u.Close()
	// Traffic outside the range is not counted.
	other, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(lo+2))
	if err == nil {
		_, _ = other.Write(make([]byte, 100))
		other.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tr, err := c.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if tr.TCPPayload == 5000 && tr.UDPPayload == 3*48 && tr.UDPPackets == 3 {
			if tr.TCPWire <= 5000 || tr.UDPWire != 3*(48+28) {
				t.Errorf("wire bytes %+v", tr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("captured %+v, want 5000 TCP payload bytes and 3 UDP datagrams of 48", tr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSmoke runs the whole harness briefly against real processes: a
// short benchmark and one 6-node cluster of each kind.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the smoke run starts real clusters (about 20s)")
	}
	testenv.RequireBinary(t, "redis-server", "redis-cli", "redis-benchmark", "ss")
	hearsay := filepath.Join(t.TempDir(), "hearsay")
	build := exec.Command("go", "build", "-o", hearsay, "github.com/hearsay/hearsay/cmd/hearsay")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building hearsay: %v\n%s", err, out)
	}
	cfg := Defaults()
	cfg.Hearsay = hearsay
	cfg.Requests, cfg.Rounds = 20000, 1
	cfg.Sizes, cfg.Heartbeats = []int{6}, []string{"off"}
	cfg.Settle, cfg.Window = time.Second, 2*time.Second
	var prog bytes.Buffer
	cfg.Progress = &prog
	tmpBefore, _ := filepath.Glob(filepath.Join(os.TempDir(), "hearsay-compare-*"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, prog.String())
	}
	var out bytes.Buffer
	_ = res.Write(&out)
	t.Logf("\n%s", out.String())
	if len(res.Throughput) != 2 || res.Throughput[0].Test != "SET" || res.Throughput[1].Test != "GET" {
		t.Errorf("throughput rows %+v, want SET and GET", res.Throughput)
	}
	for _, tr := range res.Throughput {
		// CPU is counted in clock ticks: a short test may use none.
		if median(tr.Hearsay) <= 0 || median(tr.Redis) <= 0 || median(tr.Ceiling) <= 0 ||
			len(tr.HearsayCPU) != 1 || len(tr.RedisCPU) != 1 || len(tr.CeilingCPU) != 1 ||
			tr.HearsayCPU[0] < 0 || tr.RedisCPU[0] < 0 || tr.CeilingCPU[0] < 0 {
			t.Errorf("%s: no requests per second: %+v", tr.Test, tr)
		}
	}
	if len(res.Bus) != 2 {
		t.Fatalf("bus rows %+v, want hearsay and redis", res.Bus)
	}
	for _, b := range res.Bus {
		if b.BytesPerNodeSec() <= 0 || !b.SSOK || b.Msgs <= 0 {
			t.Errorf("%s: no bus traffic measured: %+v", b.label(), b)
		}
	}
	// Nothing is left behind: no process, no temporary directory.
	if out, _ := exec.Command("pgrep", "-f", hearsay+" node").Output(); len(out) > 0 {
		t.Errorf("hearsay nodes still running: %s", out)
	}
	tmpAfter, _ := filepath.Glob(filepath.Join(os.TempDir(), "hearsay-compare-*"))
	if len(tmpAfter) > len(tmpBefore) {
		t.Errorf("temporary directories left behind: %v (before the run: %v)", tmpAfter, tmpBefore)
	}
}
