package compare

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/hearsay/hearsay/bench/childproc"
)

// BenchResult is one test line of redis-benchmark: the test name as
// redis-benchmark prints it ("SET", "GET") and its requests per second.
type BenchResult struct {
	Test string
	RPS  float64
}

// quietLine matches a final result of `redis-benchmark -q`, such as
// "SET: 506329.09 requests per second, p50=0.967 msec". Progress updates
// ("SET: rps=515633.5 (overall: ...)") share the prefix but not the shape.
var quietLine = regexp.MustCompile(`^\s*([^:\r\n]+):\s+([0-9]+(?:\.[0-9]+)?)\s+requests per second`)

// ParseBenchmark parses the output of redis-benchmark in --csv or -q mode
// and returns the tests in the order they ran. Progress lines, which -q
// separates from results with carriage returns, are skipped.
func ParseBenchmark(out string) ([]BenchResult, error) {
	var res []BenchResult
	if strings.HasPrefix(strings.TrimSpace(out), `"test"`) {
		r := csv.NewReader(strings.NewReader(out))
		r.FieldsPerRecord = -1
		recs, err := r.ReadAll()
		if err != nil {
			return nil, fmt.Errorf("redis-benchmark csv: %v", err)
		}
		for i, rec := range recs {
			if i == 0 {
				if len(rec) < 2 || rec[0] != "test" || rec[1] != "rps" {
					return nil, fmt.Errorf("redis-benchmark csv: unexpected header %q", rec)
				}
				continue
			}
			if len(rec) < 2 {
				return nil, fmt.Errorf("redis-benchmark csv: short record %q", rec)
			}
			v, err := strconv.ParseFloat(rec[1], 64)
			if err != nil {
				return nil, fmt.Errorf("redis-benchmark csv: test %s: rps %q: %v", rec[0], rec[1], err)
			}
			res = append(res, BenchResult{Test: rec[0], RPS: v})
		}
	} else {
		for _, line := range strings.FieldsFunc(out, func(r rune) bool { return r == '\r' || r == '\n' }) {
			m := quietLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				return nil, fmt.Errorf("redis-benchmark: %q: %v", line, err)
			}
			res = append(res, BenchResult{Test: strings.TrimSpace(m[1]), RPS: v})
		}
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("redis-benchmark printed no results: %q", childproc.Clip(out, 300))
	}
	return res, nil
}

// SockKey names one TCP socket by its local and peer address.
type SockKey struct {
	Local, Peer string
}

// SockBytes holds the byte counters `ss -ti` reports for one TCP socket.
type SockBytes struct {
	LocalPort, PeerPort int
	// Sent is bytes_sent (payload bytes handed to the network, including
	// retransmissions), or bytes_acked when the kernel does not report it.
	Sent     uint64
	Received uint64
}

// ParseSS parses `ss -tinH` output: a socket line (with or without the
// state column) followed by an indented line of TCP info. Sockets whose
// info line carries no byte counters get zeros.
func ParseSS(out string) (map[SockKey]SockBytes, error) {
	socks := map[SockKey]SockBytes{}
	var cur *SockKey
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			f := strings.Fields(line)
			if len(f) < 4 {
				return nil, fmt.Errorf("ss: short socket line %q", line)
			}
			// The last two columns are the local and peer addresses, unless
			// -p/-e added process or extended columns, which we never ask for.
			local, peer := f[len(f)-2], f[len(f)-1]
			lp, err1 := addrPort(local)
			pp, err2 := addrPort(peer)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("ss: bad addresses in %q", line)
			}
			k := SockKey{local, peer}
			socks[k] = SockBytes{LocalPort: lp, PeerPort: pp}
			cur = &k
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("ss: info line before any socket: %q", line)
		}
		s := socks[*cur]
		var acked uint64
		var haveSent bool
		for _, f := range strings.Fields(line) {
			name, val, ok := strings.Cut(f, ":")
			if !ok {
				continue
			}
			var dst *uint64
			switch name {
			case "bytes_sent":
				dst, haveSent = &s.Sent, true
			case "bytes_acked":
				dst = &acked
			case "bytes_received":
				dst = &s.Received
			default:
				continue
			}
			v, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("ss: %s: %v", f, err)
			}
			*dst = v
		}
		if !haveSent {
			s.Sent = acked
		}
		socks[*cur] = s
		cur = nil
	}
	return socks, sc.Err()
}

// addrPort returns the port of an ss address: "127.0.0.1:7000",
// "[::1]:7000", "*:7000" or "127.0.0.1%lo:7000".
func addrPort(a string) (int, error) {
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return 0, fmt.Errorf("no port in %q", a)
	}
	p, err := strconv.Atoi(a[i+1:])
	if err != nil || p < 0 || p > 65535 {
		return 0, fmt.Errorf("bad port in %q", a)
	}
	return p, nil
}

// SSDelta is the TCP traffic between two ss snapshots on sockets that
// have an end in a port range.
type SSDelta struct {
	Bytes uint64 // payload bytes sent by all matching sockets
	// Sockets counts matching sockets seen in either snapshot; New
	// appeared during the window (counted from zero) and Gone vanished
	// (their last bytes are lost to this method).
	Sockets, New, Gone int
}

// DiffSS sums, over the sockets with a local or peer port in [lo, hi], the
// bytes sent between the snapshots before and after. On loopback both
// ends of a bus connection match, so every bus byte is counted once, by
// its sender.
func DiffSS(before, after map[SockKey]SockBytes, lo, hi int) SSDelta {
	in := func(s SockBytes) bool {
		return (s.LocalPort >= lo && s.LocalPort <= hi) || (s.PeerPort >= lo && s.PeerPort <= hi)
	}
	var d SSDelta
	for k, a := range after {
		if !in(a) {
			continue
		}
		d.Sockets++
		b, ok := before[k]
		if !ok {
			d.New++
			d.Bytes += a.Sent
			continue
		}
		if a.Sent >= b.Sent {
			d.Bytes += a.Sent - b.Sent
		}
	}
	for k, b := range before {
		if _, ok := after[k]; !ok && in(b) {
			d.Sockets++
			d.Gone++
		}
	}
	return d
}

// ParseInfo parses an INFO or CLUSTER INFO reply ("key:value" lines,
// "# Section" headers) into a map.
func ParseInfo(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}
