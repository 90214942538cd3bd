package gossip

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// testNet is a tiny in-memory network for core tests: messages are copied
// (as an encode/decode would) and delivered after a fixed latency.
type testNet struct {
	t       testing.TB
	now     time.Duration
	latency time.Duration
	cores   []*Core
	down    map[int]bool
	cut     map[[2]int]bool // directed links that drop everything
	queue   []pending
	events  []Event
	byAddr  map[wire.Addr]int
	byID    map[wire.NodeID]int
	sent    int
	// paused holds the masters whose writes are paused for a manual
	// failover; offset is each node's replication offset, as its runtime
	// would report it.
	paused   map[int]bool
	offset   map[int]uint64
	age      map[int]time.Duration
	failover []FailoverEvent
	// sentLog, when non-nil, records every message queued.
	sentLog *[]sentMsg
}

type sentMsg struct {
	at       time.Duration
	from, to int
	typ      wire.Type
}

type pending struct {
	at   time.Duration
	to   int
	from int
	msg  *wire.Message
}

func testID(i int) wire.NodeID {
	var id wire.NodeID
	id[0] = byte(i * 37)
	id[1] = byte(i)
	id[19] = byte(i >> 8)
	id[2] = 0xAB
	return id
}

func testAddr(i int) wire.Addr {
	return wire.Addr{IP: netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)}), Port: uint16(7000 + i%1000), BusPort: uint16(17000 + i%1000)}
}

func newTestNet(t testing.TB, n int, mut func(*Config)) *testNet {
	tn := &testNet{t: t, latency: time.Millisecond, down: map[int]bool{}, cut: map[[2]int]bool{}, byAddr: map[wire.Addr]int{}, byID: map[wire.NodeID]int{}, paused: map[int]bool{}, offset: map[int]uint64{}, age: map[int]time.Duration{}}
	for i := 0; i < n; i++ {
		cfg := Config{ID: testID(i), Addr: testAddr(i), NodeTimeout: time.Second, Seed: uint64(i + 1)}
		if mut != nil {
			mut(&cfg)
		}
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		tn.cores = append(tn.cores, c)
		tn.byAddr[cfg.Addr] = i
		tn.byID[cfg.ID] = i
	}
	return tn
}

// copyMsg sends m through the real codec, as the wire would.
func (tn *testNet) copyMsg(m *wire.Message) *wire.Message {
	var enc wire.Encoder
	frame, err := enc.AppendFrame(nil, m)
	if err != nil {
		tn.t.Fatalf("core produced an unencodable %v: %v", m.Type, err)
	}
	var dec wire.Decoder
	out := &wire.Message{}
	if err := dec.Decode(frame, out); err != nil {
		tn.t.Fatalf("decode of %v: %v", m.Type, err)
	}
	return out
}

// cloneMsg deep-copies m without the codec.
func cloneMsg(m *wire.Message) *wire.Message {
	c := *m
	c.Gossip = slices.Clone(m.Gossip)
	c.Buckets = slices.Clone(m.Buckets)
	c.Claims = make([]wire.SlotClaim, len(m.Claims))
	for i, cl := range m.Claims {
		cl.Ranges = slices.Clone(cl.Ranges)
		c.Claims[i] = cl
	}
	return &c
}

// out queues a core's output.
func (tn *testNet) out(from int, r Ready) {
	tn.events = append(tn.events, r.Events...)
	tn.failover = append(tn.failover, r.Failover...)
	pause, resume := r.PauseWrites, r.ResumeWrites
	for _, e := range r.Messages {
		to, ok := tn.byID[e.To]
		if e.To.IsZero() || !ok {
			to, ok = tn.byAddr[e.Addr]
		}
		if !ok {
			continue
		}
		tn.sent++
		if tn.sentLog != nil {
			*tn.sentLog = append(*tn.sentLog, sentMsg{at: tn.now, from: from, to: to, typ: e.Msg.Type})
		}
		tn.queue = append(tn.queue, pending{at: tn.now + tn.latency, to: to, from: from, msg: tn.copyMsg(e.Msg)})
	}
	// The runtime's side of a manual failover: pause, then report the
	// offset every write before the pause reached.
	if resume {
		tn.paused[from] = false
	}
	if pause != 0 {
		tn.paused[from] = true
		tn.out(from, tn.cores[from].WritesPaused(tn.now, tn.offset[from]))
	}
}

// run advances virtual time by d, ticking every core each 10ms.
func (tn *testNet) run(d time.Duration) {
	end := tn.now + d
	for tn.now < end {
		tn.now += 10 * time.Millisecond
		for {
			due := tn.takeDue()
			if len(due) == 0 {
				break
			}
			for _, p := range due {
				if tn.down[p.to] || tn.down[p.from] || tn.cut[[2]int{p.from, p.to}] {
					continue
				}
				tn.out(p.to, tn.cores[p.to].Step(tn.now, p.msg))
				checkLivenessCache(tn.t, tn.cores[p.to])
			}
		}
		for i, c := range tn.cores {
			if !tn.down[i] {
				c.ReplicationStatus(tn.offset[i], tn.age[i])
				tn.out(i, c.Tick(tn.now))
			}
		}
	}
}

// takeDue removes from the queue, and returns, the messages due by now.
func (tn *testNet) takeDue() []pending {
	var due []pending
	rest := tn.queue[:0]
	for _, p := range tn.queue {
		if p.at <= tn.now {
			due = append(due, p)
		} else {
			rest = append(rest, p)
		}
	}
	tn.queue = rest
	return due
}

func (tn *testNet) meetAll() {
	for i := 1; i < len(tn.cores); i++ {
		r, err := tn.cores[i].Meet(tn.now, tn.cores[0].cfg.Addr)
		if err != nil {
			tn.t.Fatal(err)
		}
		tn.out(i, r)
	}
}

// partition cuts every link between the two groups, both ways.
func (tn *testNet) partition(a, b []int, cut bool) {
	for _, x := range a {
		for _, y := range b {
			tn.cut[[2]int{x, y}] = cut
			tn.cut[[2]int{y, x}] = cut
		}
	}
}

func (tn *testNet) live() []int {
	var out []int
	for i := range tn.cores {
		if !tn.down[i] {
			out = append(out, i)
		}
	}
	return out
}

// converged reports whether every live core holds the same digest.
func (tn *testNet) converged() error {
	live := tn.live()
	d := tn.cores[live[0]].Digest()
	for _, i := range live[1:] {
		if got := tn.cores[i].Digest(); got != d {
			return fmt.Errorf("node %d digest %x differs from node %d's %x", i, got, live[0], d)
		}
	}
	return nil
}

func (tn *testNet) addSlots(i int, start, end uint16) {
	r, err := tn.cores[i].AddSlots(tn.now, []wire.SlotRange{{Start: start, End: end}})
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.out(i, r)
}

// formed builds an n-node cluster of masters with slots split evenly.
func formed(t testing.TB, n int, mut func(*Config)) *testNet {
	tn := newTestNet(t, n, mut)
	tn.meetAll()
	tn.run(3 * time.Second)
	per := 16384 / n
	for i := 0; i < n; i++ {
		end := (i+1)*per - 1
		if i == n-1 {
			end = 16383
		}
		tn.addSlots(i, uint16(i*per), uint16(end))
	}
	tn.run(3 * time.Second)
	if err := tn.converged(); err != nil {
		t.Fatalf("cluster did not form: %v", err)
	}
	return tn
}

func hasFlag(c *Core, id wire.NodeID, f wire.Flags) bool {
	v, ok := c.Node(id)
	return ok && v.Flags&f != 0
}

// withReplica builds three nodes where node 0 holds every slot and node 2
// has become its replica.
func withReplica(t testing.TB) *testNet {
	tn := newTestNet(t, 3, nil)
	tn.meetAll()
	tn.run(2 * time.Second)
	tn.addSlots(0, 0, 16383)
	r, err := tn.cores[2].Replicate(tn.now, tn.cores[0].ID())
	if err != nil {
		t.Fatal(err)
	}
	tn.out(2, r)
	tn.run(2 * time.Second)
	return tn
}

// checkLivenessCache fails the test if a Step left NextDeadline's cached
// per-peer deadline later than a fresh computation, before the TickPeriod
// cap: a runtime sleeping until NextDeadline would then see a PFAIL late.
func checkLivenessCache(t testing.TB, c *Core) {
	t.Helper()
	cap := c.lastTick + c.TickPeriod()
	fresh, ok := c.computeLivenessDeadline()
	if !ok || fresh >= cap {
		return
	}
	cached, cok := c.livenessDeadline()
	if !cok || cached > fresh {
		t.Fatalf("node %s at %v: cached liveness deadline %v (set %v) is later than the fresh %v",
			c.ID(), c.now, cached, cok, fresh)
	}
}
