// Package gossip is hearsay's membership core: a deterministic state machine
// that owns the node table, epochs, slot claims, failure detection and the
// dissemination of all of it. It is the same code in a running node and in
// the simulator.
//
// # The contract
//
// A Core never reads a clock, never starts a goroutine, never does I/O and
// never uses a global random source. Everything comes in through calls:
//
//   - Tick(now) advances timers: gossip, pings, anti-entropy, PFAIL, expiry.
//   - Step(now, msg) handles one decoded bus message.
//   - Heartbeat(now, peer, sample) feeds liveness from XDP or its fallback;
//     HeartbeatPlan(now, dst) tells that transport which peers to know and
//     when to ping them, so the heartbeat policy lives here too.
//   - Admin calls (Meet, Forget, AddSlots, SetSlot, Replicate, Reset, ...)
//     return an error on bad input and change nothing then.
//
// Every call but HeartbeatPlan (which only plans I/O) returns one Ready:
// messages to send, whether durable state must be written first, and
// events. now is monotonic time from any origin.
//
// # The rules
//
// Node records are owned by the node they describe: each node versions its
// own record and a higher version replaces a lower one everywhere. FAIL is
// attached to a record version; a node refutes a FAIL by publishing a newer
// version, which it does at once when it is a replica or a master without
// slots and after 2×node-timeout otherwise (Redis's undo rule).
//
// Slot ownership is a function of the claims the core holds: each master's
// latest claim (owner, configEpoch, ranges, version). A slot belongs to the
// claimer with the highest configEpoch, ties going to the smaller node ID.
// Two cores holding the same claims therefore have the same slot table. A
// master with the same configEpoch as another and the smaller ID takes a new
// epoch (Redis's collision rule); a stale claimer is sent an UPDATE.
//
// Dissemination is rumor mongering plus anti-entropy, both from package
// epidemic: changed records and claims ride in the gossip section of PING and
// PONG with a Lambda·⌈log2(N+1)⌉ retransmit budget (blind loss of interest,
// counter stop); config changes and FAILs are also pushed at once to Fanout
// random peers; and every SyncInterval (half of it while nodes join) a node
// whose digest differs from a peer's runs a push-pull exchange (SYNC,
// SYNCDATA, SYNCDATA) over 64 digest buckets.
//
// Failure detection follows Redis in small clusters (every node is watched by
// all, masters with slots vote) and scales past them with observers: each
// node is watched by the K nodes after it on a hash ring, and those K vote.
package gossip
