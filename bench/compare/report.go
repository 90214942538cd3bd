package compare

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Write prints the human-readable report followed by one key=value line
// per figure.
func (res *Results) Write(w io.Writer) error {
	res.WriteTable(w)
	fmt.Fprintln(w)
	return res.WriteKV(w)
}

// WriteTable prints the results as tables with a description of the
// method.
func (res *Results) WriteTable(w io.Writer) {
	cfg := res.Config
	fmt.Fprintf(w, "hearsay %s vs Redis %s, same run, %s, %d CPUs, load average %s at start and %s at end, took %v\n",
		res.HearsayRev, res.RedisVersion, res.Start.UTC().Format("2006-01-02 15:04 MST"), res.CPUs,
		res.LoadStart, res.LoadEnd, res.Elapsed.Round(time.Second))

	if len(res.Throughput) > 0 {
		fmt.Fprintf(w, "\nThroughput: redis-benchmark -t set,get -n %d -P %d -c %d --csv\n", cfg.Requests, cfg.Pipeline, cfg.Clients)
		fmt.Fprintf(w, "  one hearsay node owning all 16384 slots (never redirects) vs one redis-server --save '' --appendonly no,\n")
		fmt.Fprintf(w, "  and the ceiling: a responder in the harness that only parses, stores in a map and replies (one epoll loop,\n")
		fmt.Fprintf(w, "  replies written after every ready connection is read, polling 50us before it sleeps so the client never\n")
		fmt.Fprintf(w, "  pays to wake it). No server can lead Redis by more than it does: its req/s is what the single-threaded\n")
		fmt.Fprintf(w, "  redis-benchmark client allows on this machine.\n")
		fmt.Fprintf(w, "  %d rounds; each round runs SET then GET on hearsay, redis, ceiling in turn. Figures are medians over rounds;\n", cfg.Rounds)
		fmt.Fprintf(w, "  cpu us/req = server CPU time (utime+stime) during the test / requests.\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "test\thearsay req/s\tredis req/s\tceiling req/s\thearsay/redis\tceiling/redis\thearsay cpu us/req\tredis cpu us/req\tceiling cpu us/req\t  hearsay rounds\t  redis rounds\t  ceiling rounds\t")
		for _, t := range res.Throughput {
			h, r, c := median(t.Hearsay), median(t.Redis), median(t.Ceiling)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t  %s\t  %s\t  %s\t\n", t.Test, Group(h), Group(r), Group(c),
				ratio(h, r), ratio(c, r), t.CPUPerRequest(t.HearsayCPU, cfg.Requests), t.CPUPerRequest(t.RedisCPU, cfg.Requests),
				t.CPUPerRequest(t.CeilingCPU, cfg.Requests), groups(t.Hearsay), groups(t.Redis), groups(t.Ceiling))
		}
		tw.Flush()
	}

	if len(res.Bus) > 0 {
		fmt.Fprintf(w, "\nIdle bus traffic: node timeout %v, clusters of half masters and half replicas, settle %v, window %v\n",
			cfg.NodeTimeout, cfg.Settle, cfg.Window)
		if res.Method == "capture" {
			fmt.Fprintln(w, "  bytes/node/s = payload bytes (TCP + UDP, no headers) of every packet to or from a bus port, counted by an")
			fmt.Fprintln(w, "  AF_PACKET capture on lo, / nodes / window. wire = whole IP packets incl. headers and ACKs. ss tcp = the")
			fmt.Fprintln(w, "  sum of bytes_sent of bus sockets from `ss -tinH` before and after the window (cross-check, TCP only).")
		} else {
			fmt.Fprintln(w, "  bytes/node/s = TCP payload bytes sent by bus sockets (bytes_sent from `ss -tinH` before and after the")
			fmt.Fprintln(w, "  window) / nodes / window. UDP is not counted: the packet capture needs CAP_NET_RAW.")
		}
		fmt.Fprintln(w, "  msgs = cluster_stats_messages_sent summed over the nodes (CLUSTER INFO, TCP bus messages); bytes/msg = tcp bytes / msgs.")
		fmt.Fprintln(w, "  vs redis = bytes/node/s / Redis's bytes/node/s at the same size (wire vs redis: the same with wire bytes).")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "nodes\tsetup\tbytes/node/s\ttcp\tudp\twire\tss tcp\tmsgs/node/s\tbytes/msg\tvs redis\twire vs redis\t")
		for _, b := range res.Bus {
			redis, ok := res.redisRow(b.Nodes)
			vs, wvs := "-", "-"
			if ok && b.System != "redis" {
				vs = ratio(b.BytesPerNodeSec(), redis.BytesPerNodeSec())
				if b.Captured && redis.Captured {
					wvs = ratio(b.wirePerNodeSec(), redis.wirePerNodeSec())
				}
			}
			tcp, udp, wire := "-", "-", "-"
			if b.Captured {
				tcp, udp = Group(b.perNodeSec(b.Traffic.TCPPayload)), Group(b.perNodeSec(b.Traffic.UDPPayload))
				wire = Group(b.wirePerNodeSec())
			}
			ss := "-"
			if b.SSOK {
				ss = Group(b.perNodeSec(b.SS.Bytes))
			}
			perMsg := "-"
			if b.Msgs > 0 {
				perMsg = Group(float64(b.tcpBytes()) / float64(b.Msgs))
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t\n", b.Nodes, b.label(), Group(b.BytesPerNodeSec()),
				tcp, udp, wire, ss, b.msgsPerNodeSec(), perMsg, vs, wvs)
		}
		tw.Flush()
		for _, b := range res.Bus {
			for _, n := range b.Notes {
				fmt.Fprintf(w, "  note (%d nodes, %s): %s\n", b.Nodes, b.label(), n)
			}
		}
	}
}

// tcpBytes is the TCP payload of the window, from the capture or ss.
func (b BusRow) tcpBytes() uint64 {
	if b.Captured {
		return b.Traffic.TCPPayload
	}
	return b.SS.Bytes
}

func (b BusRow) wirePerNodeSec() float64 { return b.perNodeSec(b.Traffic.TCPWire + b.Traffic.UDPWire) }

// msgsPerNodeSec is Msgs per node per second. Msgs is a signed delta, so it
// does not go through perNodeSec.
func (b BusRow) msgsPerNodeSec() float64 {
	return float64(b.Msgs) / float64(b.Nodes) / b.Window.Seconds()
}

func (b BusRow) label() string {
	if b.System == "redis" {
		return "redis cluster"
	}
	return "hearsay --heartbeat " + b.Heartbeat
}

func (res *Results) redisRow(nodes int) (BusRow, bool) {
	for _, b := range res.Bus {
		if b.System == "redis" && b.Nodes == nodes {
			return b, true
		}
	}
	return BusRow{}, false
}

// WriteKV prints one key=value line per figure, for scripts and the README.
func (res *Results) WriteKV(w io.Writer) error {
	cfg := res.Config
	kv := func(k string, v any) { fmt.Fprintf(w, "%s=%v\n", k, v) }
	kv("hearsay_rev", res.HearsayRev)
	kv("redis_version", res.RedisVersion)
	kv("cpus", res.CPUs)
	kv("elapsed_s", int(res.Elapsed.Round(time.Second).Seconds()))
	kv("loadavg_start", res.LoadStart)
	kv("loadavg_end", res.LoadEnd)
	if len(res.Throughput) > 0 {
		kv("throughput_requests", cfg.Requests)
		kv("throughput_pipeline", cfg.Pipeline)
		kv("throughput_clients", cfg.Clients)
		kv("throughput_rounds", cfg.Rounds)
		for _, t := range res.Throughput {
			name := "throughput_" + strings.ToLower(t.Test)
			h, r, c := median(t.Hearsay), median(t.Redis), median(t.Ceiling)
			kv(name+"_hearsay_rps", int64(h+0.5))
			kv(name+"_redis_rps", int64(r+0.5))
			kv(name+"_ceiling_rps", int64(c+0.5))
			kv(name+"_ratio", fmt.Sprintf("%.3f", h/r))
			kv(name+"_ceiling_ratio", fmt.Sprintf("%.3f", c/r))
			kv(name+"_hearsay_cpu_us_per_req", fmt.Sprintf("%.3f", t.CPUPerRequest(t.HearsayCPU, cfg.Requests)))
			kv(name+"_redis_cpu_us_per_req", fmt.Sprintf("%.3f", t.CPUPerRequest(t.RedisCPU, cfg.Requests)))
			kv(name+"_ceiling_cpu_us_per_req", fmt.Sprintf("%.3f", t.CPUPerRequest(t.CeilingCPU, cfg.Requests)))
		}
	}
	if len(res.Bus) > 0 {
		kv("bus_method", res.Method)
		kv("bus_node_timeout_ms", cfg.NodeTimeout.Milliseconds())
		kv("bus_settle_s", cfg.Settle.Seconds())
		kv("bus_window_s", fmt.Sprintf("%.1f", res.Bus[0].Window.Seconds()))
		for _, b := range res.Bus {
			name := "bus_" + strconv.Itoa(b.Nodes) + "_" + b.Setup()
			kv(name+"_bytes_per_node_s", int64(b.BytesPerNodeSec()+0.5))
			if b.Captured {
				kv(name+"_tcp_bytes_per_node_s", int64(b.perNodeSec(b.Traffic.TCPPayload)+0.5))
				kv(name+"_udp_bytes_per_node_s", int64(b.perNodeSec(b.Traffic.UDPPayload)+0.5))
				kv(name+"_wire_bytes_per_node_s", int64(b.wirePerNodeSec()+0.5))
			}
			if b.SSOK {
				kv(name+"_ss_tcp_bytes_per_node_s", int64(b.perNodeSec(b.SS.Bytes)+0.5))
			}
			kv(name+"_msgs_per_node_s", fmt.Sprintf("%.1f", b.msgsPerNodeSec()))
			if redis, ok := res.redisRow(b.Nodes); ok && b.System != "redis" {
				kv(name+"_ratio", fmt.Sprintf("%.4f", b.BytesPerNodeSec()/redis.BytesPerNodeSec()))
				if b.Captured && redis.Captured {
					kv(name+"_wire_ratio", fmt.Sprintf("%.4f", b.wirePerNodeSec()/redis.wirePerNodeSec()))
				}
			}
		}
	}
	return nil
}

// median is the middle value (the mean of the two middle ones for an even
// count), 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	r := a / b
	if r < 0.1 {
		return fmt.Sprintf("%.4fx", r)
	}
	return fmt.Sprintf("%.2fx", r)
}

// Group formats v rounded to an integer with thousands separators.
func Group(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func groups(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = Group(x)
	}
	return strings.Join(s, " ")
}
