package clusterview

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

func id(t testing.TB, s string) wire.NodeID {
	t.Helper()
	n, err := wire.ParseNodeID(s)
	if err != nil {
		t.Fatalf("bad test ID %q: %v", s, err)
	}
	return n
}

const (
	idA = "47330f1b7e5ce0f502e20e927972b9afa5204888"
	idB = "bfa35a37e9bbdb922cdd9584571e4205f18cf93a"
	idC = "5a919efd5bba3bfe6d745fae2699ca17d38cfd51"
	idD = "c31893cf3bbc2c8c0e626c9925b135a9ce6dba24"
)

func rg(start, end uint16) ring.Range { return ring.Range{Start: start, End: end} }

func addr(port uint16) wire.Addr {
	return wire.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: port, BusPort: port + 10000}
}

// unixMs maps the core's relative times onto a fixed wall clock.
func unixMs(d time.Duration) int64 { return 1795672180000 + d.Milliseconds() }

func TestNodesText(t *testing.T) {
	a, b, c, d := id(t, idA), id(t, idB), id(t, idC), id(t, idD)
	tests := []struct {
		name   string
		views  []gossip.NodeView
		myself wire.NodeID
		open   []OpenSlot
		want   string
	}{{
		name:   "lone empty node",
		views:  []gossip.NodeView{{ID: a, Addr: addr(7000), Flags: wire.FlagMaster, Myself: true, Connected: true}},
		myself: a,
		want:   idA + " 127.0.0.1:7000@17000 myself,master - 0 0 0 connected\n",
	}, {
		// The shape of Redis 7.0.15's own reply, checked side by side.
		name: "three masters and a replica, open slots on myself",
		views: []gossip.NodeView{
			{ID: b, Addr: addr(30002), Flags: wire.FlagMaster, ConfigEpoch: 2, PongRecv: 498 * time.Millisecond, Connected: true, Slots: []ring.Range{rg(5461, 10922)}},
			{ID: c, Addr: addr(30003), Flags: wire.FlagMaster, ConfigEpoch: 3, PongRecv: 599 * time.Millisecond, Connected: true, Slots: []ring.Range{rg(10923, 16383)}},
			{ID: a, Addr: addr(30001), Flags: wire.FlagMaster, Myself: true, ConfigEpoch: 1, Connected: true, Slots: []ring.Range{rg(0, 5460)}},
			{ID: d, Addr: addr(30004), Flags: wire.FlagReplica, Master: a, ConfigEpoch: 0, PongRecv: 599 * time.Millisecond, Connected: true},
		},
		myself: a,
		open:   []OpenSlot{{Slot: 100, Migrating: true, Peer: b}, {Slot: 6000, Peer: b}},
		want: idB + " 127.0.0.1:30002@40002 master - 0 1795672180498 2 connected 5461-10922\n" +
			idC + " 127.0.0.1:30003@40003 master - 0 1795672180599 3 connected 10923-16383\n" +
			idA + " 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 [100->-" + idB + "] [6000-<-" + idB + "]\n" +
			idD + " 127.0.0.1:30004@40004 slave " + idA + " 0 1795672180599 1 connected\n",
	}, {
		name: "failing, handshake, noaddr, single slots, ping outstanding",
		views: []gossip.NodeView{
			{ID: a, Addr: addr(7000), Flags: wire.FlagMaster, Myself: true, ConfigEpoch: 7, Connected: true, Slots: []ring.Range{rg(0, 0), rg(2, 2), rg(4, 100)}},
			{ID: b, Addr: addr(7001), Flags: wire.FlagMaster | wire.FlagPFail, ConfigEpoch: 3, PingSent: time.Second, PongRecv: 2 * time.Millisecond, Slots: []ring.Range{rg(1, 1)}},
			{ID: c, Addr: addr(7002), Flags: wire.FlagMaster | wire.FlagFail | wire.FlagPFail, ConfigEpoch: 4},
			{ID: d, Addr: wire.Addr{}, Flags: wire.FlagHandshake | wire.FlagNoAddr},
		},
		myself: a,
		want: idA + " 127.0.0.1:7000@17000 myself,master - 0 0 7 connected 0 2 4-100\n" +
			idB + " 127.0.0.1:7001@17001 master,fail? - 1795672181000 1795672180002 3 disconnected 1\n" +
			idC + " 127.0.0.1:7002@17002 master,fail - 0 0 4 disconnected\n" +
			idD + " :0@0 handshake,noaddr - 0 0 0 disconnected\n",
	}, {
		name: "replica of an unknown master keeps its own epoch; noflags; nofailover; ipv6",
		views: []gossip.NodeView{
			{ID: a, Addr: wire.Addr{IP: netip.MustParseAddr("::1"), Port: 7000, BusPort: 17000}, Flags: wire.FlagReplica | wire.FlagNoFailover, Master: c, ConfigEpoch: 5, Connected: true},
			{ID: b, Addr: wire.Addr{IP: netip.MustParseAddr("::ffff:10.0.0.1"), Port: 7001, BusPort: 17001}, Connected: true},
		},
		myself: a,
		open:   []OpenSlot{{Slot: 9, Peer: b}},
		want: idA + " ::1:7000@17000 myself,slave,nofailover " + idC + " 0 0 5 connected [9-<-" + idB + "]\n" +
			idB + " 10.0.0.1:7001@17001 noflags - 0 0 0 connected\n",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(NodesText([]byte("prefix|"), tc.views, tc.myself, tc.open, unixMs))
			if got != "prefix|"+tc.want {
				t.Errorf("NodesText:\n got %q\nwant %q", got, "prefix|"+tc.want)
			}
			// What we render, we parse back.
			lines, err := ParseNodes(tc.want)
			if err != nil {
				t.Fatalf("ParseNodes of our own output: %v", err)
			}
			var again []byte
			for i := range lines {
				again = AppendNodeLine(again, &lines[i])
			}
			if string(again) != tc.want {
				t.Errorf("AppendNodeLine round trip:\n got %q\nwant %q", again, tc.want)
			}
		})
	}
}

func TestInfoText(t *testing.T) {
	tests := []struct {
		name string
		in   Info
		want string
	}{{
		name: "empty node",
		in:   Info{KnownNodes: 1},
		want: "cluster_state:fail\r\ncluster_slots_assigned:0\r\ncluster_slots_ok:0\r\ncluster_slots_pfail:0\r\n" +
			"cluster_slots_fail:0\r\ncluster_known_nodes:1\r\ncluster_size:0\r\ncluster_current_epoch:0\r\n" +
			"cluster_my_epoch:0\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n" +
			"total_cluster_links_buffer_limit_exceeded:0\r\n",
	}, {
		// Redis 7.0.15's reply on a 4-node cluster, field for field.
		name: "healthy cluster with message stats",
		in: Info{OK: true, SlotsAssigned: 16384, SlotsOK: 16384, KnownNodes: 4, Size: 3, CurrentEpoch: 3, MyEpoch: 1,
			Messages: []MessageStat{{"ping", 30, 28}, {"pong", 31, 30}, {"meet", 0, 3}, {"fail", 0, 0}}},
		want: "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\n" +
			"cluster_slots_fail:0\r\ncluster_known_nodes:4\r\ncluster_size:3\r\ncluster_current_epoch:3\r\n" +
			"cluster_my_epoch:1\r\n" +
			"cluster_stats_messages_ping_sent:30\r\ncluster_stats_messages_pong_sent:31\r\ncluster_stats_messages_sent:61\r\n" +
			"cluster_stats_messages_ping_received:28\r\ncluster_stats_messages_pong_received:30\r\n" +
			"cluster_stats_messages_meet_received:3\r\ncluster_stats_messages_received:61\r\n" +
			"total_cluster_links_buffer_limit_exceeded:0\r\n",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(InfoText(nil, tc.in)); got != tc.want {
				t.Errorf("InfoText:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestMessageTypeName(t *testing.T) {
	for typ, want := range map[wire.Type]string{
		wire.TypePing: "ping", wire.TypeAuthRequest: "auth-req", wire.TypeAuthAck: "auth-ack",
		wire.TypeSyncData: "syncdata", 99: "type99",
	} {
		if got := MessageTypeName(typ); got != want {
			t.Errorf("MessageTypeName(%d) = %q, want %q", typ, got, want)
		}
	}
}

// threeMasters is a full-coverage 3-master, 3-replica cluster.
func threeMasters(t *testing.T) []gossip.NodeView {
	a, b, c, d := id(t, idA), id(t, idB), id(t, idC), id(t, idD)
	e := id(t, "e000000000000000000000000000000000000000")
	f := id(t, "f000000000000000000000000000000000000000")
	return []gossip.NodeView{
		{ID: c, Addr: addr(7002), Flags: wire.FlagMaster, ConfigEpoch: 3, Connected: true, Slots: []ring.Range{rg(10923, 16383)}},
		{ID: a, Addr: addr(7000), Flags: wire.FlagMaster, ConfigEpoch: 1, Myself: true, Connected: true, Slots: []ring.Range{rg(0, 5460)}},
		{ID: b, Addr: addr(7001), Flags: wire.FlagMaster, ConfigEpoch: 2, Connected: true, Slots: []ring.Range{rg(5461, 10922)}},
		{ID: d, Addr: addr(7003), Flags: wire.FlagReplica, Master: a, ReplOffset: 100, Connected: true},
		{ID: e, Addr: addr(7004), Flags: wire.FlagReplica, Master: b, ReplOffset: 0, Connected: true},
		{ID: f, Addr: addr(7005), Flags: wire.FlagReplica | wire.FlagFail, Master: c, ReplOffset: 5},
	}
}

func TestComputeInfo(t *testing.T) {
	tests := []struct {
		name   string
		change func(vs []gossip.NodeView) []gossip.NodeView
		want   Info
		// partialOK is the state with cluster-require-full-coverage no:
		// only the majority rule applies.
		partialOK bool
	}{{
		name:      "healthy",
		change:    func(vs []gossip.NodeView) []gossip.NodeView { return vs },
		want:      Info{OK: true, SlotsAssigned: 16384, SlotsOK: 16384, KnownNodes: 6, Size: 3, CurrentEpoch: 6, MyEpoch: 1},
		partialOK: true,
	}, {
		name: "one master pfail: slots pfail, still ok (2 of 3 reachable)",
		change: func(vs []gossip.NodeView) []gossip.NodeView {
			vs[2].Flags |= wire.FlagPFail
			return vs
		},
		want:      Info{OK: true, SlotsAssigned: 16384, SlotsOK: 10922, SlotsPFail: 5462, KnownNodes: 6, Size: 3, CurrentEpoch: 6, MyEpoch: 1},
		partialOK: true,
	}, {
		name: "one master fail: its slots fail, state fail",
		change: func(vs []gossip.NodeView) []gossip.NodeView {
			vs[0].Flags |= wire.FlagFail | wire.FlagPFail
			return vs
		},
		want:      Info{SlotsAssigned: 16384, SlotsOK: 10923, SlotsFail: 5461, KnownNodes: 6, Size: 3, CurrentEpoch: 6, MyEpoch: 1},
		partialOK: true,
	}, {
		name: "two masters pfail: minority, state fail",
		change: func(vs []gossip.NodeView) []gossip.NodeView {
			vs[0].Flags |= wire.FlagPFail
			vs[2].Flags |= wire.FlagPFail
			return vs
		},
		want:      Info{SlotsAssigned: 16384, SlotsOK: 5461, SlotsPFail: 10923, KnownNodes: 6, Size: 3, CurrentEpoch: 6, MyEpoch: 1},
		partialOK: false,
	}, {
		name: "a slot unassigned: state fail",
		change: func(vs []gossip.NodeView) []gossip.NodeView {
			vs[0].Slots = []ring.Range{rg(10923, 16382)}
			return vs
		},
		want:      Info{SlotsAssigned: 16383, SlotsOK: 16383, KnownNodes: 6, Size: 3, CurrentEpoch: 6, MyEpoch: 1},
		partialOK: true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ComputeInfo(tc.change(threeMasters(t)), 6, 1, true)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ComputeInfo:\n got %+v\nwant %+v", got, tc.want)
			}
			if got := ComputeInfo(tc.change(threeMasters(t)), 6, 1, false); got.OK != tc.partialOK {
				t.Errorf("without full coverage: state ok %v, want %v", got.OK, tc.partialOK)
			}
		})
	}
}

func TestSlotGroups(t *testing.T) {
	vs := threeMasters(t)
	vs[1].Slots = []ring.Range{rg(0, 99), rg(200, 5460)}
	vs[2].Slots = []ring.Range{rg(100, 199), rg(5461, 10922)}
	groups := SlotGroups(vs)
	var got []string
	for _, g := range groups {
		s := ring.Range{Start: g.Start, End: g.End}.String() + " " + g.Master.ID.String()[:4]
		for _, r := range g.Replicas {
			s += " " + r.ID.String()[:4]
		}
		got = append(got, s)
	}
	// The replica of B has offset 0 and the replica of C is FAIL: both left out.
	want := []string{"0-99 4733 c318", "100-199 bfa3", "200-5460 4733 c318", "5461-10922 bfa3", "10923-16383 5a91"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SlotGroups:\n got %q\nwant %q", got, want)
	}
}

func TestShards(t *testing.T) {
	vs := threeMasters(t)
	g := id(t, "0000000000000000000000000000000000000009")
	h := id(t, "0000000000000000000000000000000000000001")
	vs = append(vs,
		gossip.NodeView{ID: g, Addr: addr(7006), Flags: wire.FlagMaster, Connected: true},
		gossip.NodeView{ID: h, Addr: addr(7007), Flags: wire.FlagMaster | wire.FlagHandshake})
	var got []string
	for _, sh := range Shards(vs) {
		s := ring.FormatRanges(sh.Slots) + ":"
		for _, n := range sh.Nodes {
			s += " " + n.ID.String()[:4] + "/" + Role(n) + "/" + Health(n)
		}
		got = append(got, s)
	}
	want := []string{
		"0-5460: 4733/master/online c318/replica/online",
		"5461-10922: bfa3/master/online e000/replica/loading",
		"10923-16383: 5a91/master/online f000/replica/fail",
		": 0000/master/online",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Shards:\n got %q\nwant %q", got, want)
	}
}

// redis7 is CLUSTER NODES as Redis 7.0.15 printed it.
const redis7 = idB + " 127.0.0.1:30002@40002 master - 0 1795672180498 2 connected 5461-10922\n" +
	idC + " 127.0.0.1:30003@40003 master - 0 1795672180599 3 connected 10923-16383\n" +
	idA + " 127.0.0.1:30001@40001 myself,master - 0 1795672184000 1 connected 0-5460 [100->-" + idB + "] [6000-<-" + idB + "]\n" +
	idD + " 127.0.0.1:30004@40004 slave " + idA + " 0 1795672180599 1 connected\n"

func TestParseNodes(t *testing.T) {
	lines, err := ParseNodes(redis7)
	if err != nil {
		t.Fatal(err)
	}
	a, b := id(t, idA), id(t, idB)
	want := NodeLine{ID: a, IP: "127.0.0.1", Port: 30001, BusPort: 40001, Myself: true, Flags: wire.FlagMaster,
		PongRecv: 1795672184000, ConfigEpoch: 1, Connected: true, Slots: []ring.Range{rg(0, 5460)},
		Open: []OpenSlot{{Slot: 100, Migrating: true, Peer: b}, {Slot: 6000, Peer: b}}}
	if len(lines) != 4 || !reflect.DeepEqual(lines[2], want) {
		t.Fatalf("ParseNodes: got %d lines, line 3 = %+v\nwant %+v", len(lines), lines[2], want)
	}
	if lines[3].Master != a || !lines[3].IsReplica() || lines[3].Addr() != "127.0.0.1:30004" {
		t.Errorf("replica line: %+v", lines[3])
	}

	// Variants that other Redis versions print.
	for _, tc := range []struct{ text, ip, host string }{
		{idA + " 127.0.0.1:7000@17000,host-1 master - 0 0 1 connected\n", "127.0.0.1", "host-1"}, // 7.0 with hostname
		{idA + " 127.0.0.1:7000@17000, master - 0 0 1 connected\r\n", "127.0.0.1", ""},           // 7.2 trailing comma
		{idA + " ::1:7000@17000 master - 0 0 1 connected", "::1", ""},                            // IPv6, no final newline
		{"\n\n" + idA + " :7000@17000 noaddr,master - 0 0 1 disconnected\n\n", "", ""},           // blank lines
	} {
		ls, err := ParseNodes(tc.text)
		if err != nil {
			t.Errorf("ParseNodes(%q): %v", tc.text, err)
			continue
		}
		if len(ls) != 1 || ls[0].IP != tc.ip || ls[0].Hostname != tc.host || ls[0].Port != 7000 || ls[0].BusPort != 17000 {
			t.Errorf("ParseNodes(%q) = %+v", tc.text, ls)
		}
	}
}

func TestParseNodesErrors(t *testing.T) {
	good := idA + " 127.0.0.1:7000@17000 master - 0 0 1 connected 0-5460"
	tests := []struct{ line, want string }{
		{idA + " 127.0.0.1:7000@17000 master - 0 0 1", "has 7 fields"},
		{"xyz 127.0.0.1:7000@17000 master - 0 0 1 connected", "node ID"},
		{strings.ToUpper(idA) + " 127.0.0.1:7000@17000 master - 0 0 1 connected", "node ID"},
		{idA + " 127.0.0.1-7000@17000 master - 0 0 1 connected", "address is not ip:port@cport"},
		{idA + " 127.0.0.1:70000@17000 master - 0 0 1 connected", "address port"},
		{idA + " 127.0.0.1:7000@x master - 0 0 1 connected", "bus port"},
		{idA + " 127.0.0.1/8:7000@17000 master - 0 0 1 connected", "bad character"},
		{idA + " 127.0.0.1:7000@17000 master,leader - 0 0 1 connected", `unknown flag "leader"`},
		{idA + " 127.0.0.1:7000@17000 master, - 0 0 1 connected", `unknown flag ""`},
		{idA + " 127.0.0.1:7000@17000 slave abc 0 0 1 connected", "master is neither"},
		{idA + " 127.0.0.1:7000@17000 master - x 0 1 connected", "ping_sent"},
		{idA + " 127.0.0.1:7000@17000 master - 0 y 1 connected", "pong_recv"},
		{idA + " 127.0.0.1:7000@17000 master - 0 0 -1 connected", "configEpoch"},
		{idA + " 127.0.0.1:7000@17000 master - 0 0 1 linked", "link state"},
		{idA + " 127.0.0.1:7000@17000 master - 0 0 1 connected 5-1", `bad slot range "5-1"`},
		{idA + " 127.0.0.1:7000@17000 master - 0 0 1 connected 16384", `bad slot range "16384"`},
		{idA + " 127.0.0.1:7000@17000 master - 0 0 1 connected [5->-xyz]", "bad open slot"},
		{idA + " 127.0.0.1:7000@17000 master - 0 0 1 connected [5-x-" + idB + "]", "bad open slot"},
	}
	for _, tc := range tests {
		_, err := ParseNodes(good + "\n" + tc.line + "\n")
		if err == nil {
			t.Errorf("ParseNodes(%q): no error, want %q", tc.line, tc.want)
			continue
		}
		pe, ok := err.(*ParseError)
		if !ok || pe.Line != 2 || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("ParseNodes(%q): error %v, want line 2 and %q", tc.line, err, tc.want)
		}
	}
}

func FuzzParseNodes(f *testing.F) {
	f.Add(redis7)
	f.Add(idA + " ::1:7000@17000,h noflags - -1 0 0 disconnected 0 1-2 [3-<-" + idB + "]\n")
	f.Add(idA + " 127.0.0.1:7000 myself,slave " + idB + " 0 0 1 connected\n")
	f.Fuzz(func(t *testing.T, text string) {
		lines, err := ParseNodes(text)
		if err != nil {
			return
		}
		var out []byte
		for i := range lines {
			out = AppendNodeLine(out, &lines[i])
		}
		again, err := ParseNodes(string(out))
		if err != nil {
			t.Fatalf("re-rendered text does not parse: %v\n%q", err, out)
		}
		if !reflect.DeepEqual(lines, again) {
			t.Fatalf("re-parse differs:\n first %+v\nsecond %+v", lines, again)
		}
		var out2 []byte
		for i := range again {
			out2 = AppendNodeLine(out2, &again[i])
		}
		if string(out) != string(out2) {
			t.Fatalf("rendering is not stable:\n%q\n%q", out, out2)
		}
	})
}
