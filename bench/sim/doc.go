// Package sim is hearsay's deterministic cluster simulator: N real gossip
// cores (package gossip, the same code a node runs) on a virtual network,
// in one process, driven by virtual time.
//
// # Why
//
// A gossip protocol is judged by what a whole cluster does: how fast a
// change reaches every node, what that costs in bytes, and whether every
// node ends up with the same view after crashes, partitions and loss. None
// of that shows in a unit test of one core, and a real cluster of 10,000
// processes is neither cheap nor reproducible. The simulator runs the
// cluster instead, the way FoundationDB and TigerBeetle test themselves:
// every fault is drawn from one seed, so a failing run replays bit for bit.
//
// # How it works
//
// The simulator is a discrete-event loop over a priority queue ordered by
// virtual time (ties by insertion order). There are four kinds of event,
// and a probe between them:
//
//   - a tick: a core's Tick(now). Each node ticks every Options.Tick with
//     a random phase and ±10% jitter, as real timers do;
//   - a delivery: a frame arrives; it is decoded and stepped into the
//     receiving core;
//   - a heartbeat packet arrives at a host's kernel (below);
//   - an action: a crash, a restart, a stall, a partition, a heal, an
//     admin call such as MEET or a slot takeover, scheduled with At;
//   - and the probe, between steps of RunUntilTrue, checks whether the
//     cluster has converged.
//
// Every message a core emits is encoded with the real bus codec
// (gossip/wire) at send and decoded at delivery, so byte counts are the
// wire's, and a message the codec refuses is an invariant violation. The
// virtual network gives each frame a latency of Latency±Jitter, loses it
// with probability Loss, and drops it when sender and receiver are on
// different sides of a partition (at send and again at delivery), or when
// the receiver is down or has restarted since the frame was sent (a TCP
// connection would have broken).
//
// A crash drops the core. A restart boots a new core from what the node
// had made durable: State() taken on every Ready with Persist set, and at
// the next tick after a Ready with Dirty set (a lazy write, which a crash
// can lose). That is the contract a runtime keeps, so a restart exposes any
// state the core forgot to ask to persist.
//
// # Heartbeats and stalls
//
// By default the cores ping their monitored peers on the bus. With
// Options.Core.ExternalHeartbeat (Config.ExternalHeartbeat, flag
// --external-heartbeat) liveness comes from a model of the XDP heartbeat
// transport instead. Each host has a kernel: it knows the peers its
// process last gave it, answers their PINGs with a PONG stamped with the
// process's progress counter, and records their PONGs (count, time, RTT,
// progress). After each Tick the simulator plays the node's heartbeat
// driver: it bumps the progress counter, asks the core for its
// HeartbeatPlan, replaces the kernel's peers when the plan changed, sends
// one PING per peer when the plan says a round is due, and feeds every
// peer's sample to Core.Heartbeat. PINGs and PONGs are the real 48-byte
// packets of bpf/hbpacket (with the MAC when Secret is set), not bus
// frames: datagrams with the bus's latency and loss, dropped across a
// partition at send and at arrival, and counted apart in Stats
// (Heartbeats, HeartbeatBytes, HeartbeatsDropped). A crashed host's kernel
// answers nothing; the restarted process sets it up again.
//
// Stall(i) freezes node i's process, as SIGSTOP, a long GC pause or a
// swap storm would: its core is neither ticked nor stepped and its
// progress counter stops, but its kernel keeps answering PINGs, so PONGs
// keep coming with a counter that does not move, and the core must judge
// by the counter. Bus frames that reach a stalled node wait in its socket
// buffers, as TCP keeps them (up to 4096; more are dropped, as a full
// buffer would eventually break the link), and are stepped in arrival
// order when Resume(i) lets it run again; its next tick sees the gap. A
// stalled node is up, but Do on it fails; Crash ends a stall and loses
// the buffered frames.
//
// Cores never see the simulator's clock directly: their now is CoreOrigin
// plus virtual time, since a real monotonic clock does not start at zero.
// Each core gets its own seed derived from the simulation seed.
//
// # Scale
//
// One goroutine runs everything; events are small values in a 4-ary heap;
// frame buffers are pooled; probes recheck only nodes whose core was called
// since their last look; a formed cluster boots from one shared node list.
// Nothing the simulator does per tick is O(N²), so 10,000 nodes fit in one
// process: memory is then dominated by the cores' own O(N) tables.
//
// # Experiments and invariants
//
// Run executes the scenarios of `hearsay sim cluster`:
//
//   - join: N fresh nodes MEET node 0 within the first 100ms; converged
//     when every node lists all N with no handshake in flight.
//   - fail: a formed cluster (N nodes, M masters with even slot shares,
//     replicas round-robin) runs to steady state; then a master crashes;
//     converged when every live node marks it FAIL.
//   - config: in a formed cluster a master takes one slot of another with
//     a bumped configEpoch; converged when every node's slot table gives
//     the slot to the taker at its new epoch and all state digests are
//     equal.
//   - mix: the random fault mix of the simulation tests (RunMix).
//   - failover: a formed cluster (by default N/4 masters with three
//     replicas each) runs to steady state; then one master crashes;
//     converged when every live node gives all of its slots to one of its
//     replicas, which it lists as a master.
//   - massfail: the same cluster, but Failing masters (default 100) crash
//     in the same instant, as a rack going dark; converged when every live
//     node gives every crashed shard's slots to a live replica of its old
//     master. Besides the convergence time it reports when the last
//     crashed master was first marked FAIL (fail_ms), when every crashed
//     shard had a master holding its slots in its own table (shards_ms),
//     and the elections started, won and lost. 1000 nodes are 250 shards
//     of four: 100 crashed masters leave 150 of 250, a majority to elect
//     with; 200 shards of five would leave exactly half, and a failover
//     needs a majority of all slot-owning masters, as in Redis.
//     CompareFailover runs both over a set of seeds and returns the medians
//     and their ratio (make sim-massfail).
//
// Each reports convergence in virtual milliseconds, traffic per node per
// second during convergence and in a steady window, and peak heap per node.
//
// RunMix is what TestSimSeeds runs for hundreds of seeds: joins, crashes,
// restarts, stalls, partitions that heal, elections and 0-20% loss, with
// liveness from bus pings for odd seeds and from the modelled heartbeat
// transport for even ones. Every Ready is checked: epochs must never go
// backwards (across restarts too), no voter may grant one epoch twice, no
// epoch may have two winners, and no two masters may serve one slot at one
// configEpoch: never at an agreed epoch (the cluster's formation or an
// election), and for epochs taken without consensus (BUMPEPOCH, SETSLOT
// NODE, TAKEOVER) not for more than five node timeouts once the two can
// talk, which the collision rule must resolve. After healing all nodes must share one
// node table and one slot table, no slot may have two owners with the same
// configEpoch, and every slot's owner must be a live master. A failing
// seed prints the go test and hearsay commands that replay it.
package sim
