// Package migrate is hearsay's atomic slot migration (CLUSTER MIGRATESLOTS,
// after Valkey 9): the state machines of one migration on both sides, kept
// free of clocks, goroutines, I/O and global randomness, as package
// failover is, so that a simulation runs exactly what a node runs. The
// compatible key-by-key path (SETSLOT, MIGRATE, ASK) lives in gossip and
// node; this package only refuses to mix with it.
//
// An Export runs on the source: it opens a connection to the target,
// snapshots the slots without stopping the event loop, streams the
// snapshot and then every later write to them, pauses writes to those
// slots only once the target is within Config.CatchUpBytes, and grants the
// handoff when the target has applied the whole stream. An Import runs on
// the target: it applies what arrives, asks for the handoff once it holds
// everything up to the paused offset, and on the grant claims the slots
// with a new configEpoch. The source deletes its keys only when its own
// slot table shows that claim. A Table holds a node's migrations, checks
// new ones with Valkey's errors, cancels exports, and serves the rows of
// CLUSTER GETSLOTMIGRATIONS (Status).
//
// The safety rule: from the grant on, the source accepts no write to the
// slots unless the target answers ABORTED, which it does only for a
// migration it dropped and can therefore never claim; the grant is durable
// (HardState.Granted) before it leaves. Before the grant the source may
// always cancel. The target claims only on a grant that answers a request
// it sent within Config.ClaimWindow, so the claim cannot race a failover of
// a source that died. A restarted target never claims; a restarted source that
// had granted pauses the slots again and waits. PROTOCOL.md, "Atomic slot
// migration", has the messages, states, timeouts and restart rules.
//
// Every call returns Intents that the runtime carries out in order; the
// runtime supplies the clock (now), the cluster view (Cluster, which
// gossip.Core can back) and the progress numbers (offsets, keys, bytes).
//
// The package is not wired into the node yet. What the runtime must do:
//
//   - Commands: parse CLUSTER MIGRATESLOTS with ParseMigrateSlots, name each
//     request (40 hex digits from the node's seeded source), call
//     Table.MigrateSlots; CLUSTER CANCELSLOTMIGRATIONS calls Table.CancelAll;
//     CLUSTER GETSLOTMIGRATIONS formats Table.Status (times converted from
//     the loop's monotonic clock to Unix seconds). All on the bus loop, like
//     the other CLUSTER admin commands; Table.Tick by Table.NextDeadline
//     and whenever the slot table or a node's FAIL flag changes.
//   - Cluster: an adapter over gossip.Core: Self, Lookup (master flag,
//     master ID, FAIL), SlotOwner (Core.SlotOwner), LegacyMarks (any
//     IMPORTING/MIGRATING mark in the slot table).
//   - Persist: keep the HardState records in a file of their own (or in the
//     node config file) written atomically with fsync before the next
//     intent runs; at start decode them (a record that does not decode
//     stops the start) and call Table.Restore before serving clients or
//     joining the bus, carrying out its intents first.
//   - Connect/StreamWrites/StartSnapshot: a client-port connection per
//     export, AUTH with masterauth, ESTABLISH; the snapshot as RESTORE …
//     ABSTTL REPLACE records read one slot at a time (as node/repl's full
//     sync); from the cut on, the effects of writes to the slots (the
//     replication stream's encoding, filtered by slot) queued for the
//     connection; report Export.SnapshotDone and Export.Streamed; read
//     ACK and REQUEST-FAILOVER from the connection into Export.Acked and
//     Export.HandoffRequested; a closed connection is Export.PeerLost.
//   - PauseWrites/ResumeWrites: the per-slot write gate (Node.pauseSlots
//     and resumeSlots over command.Dispatcher.PauseSlotWrites) parks
//     writes (never TRYAGAIN) and re-dispatches them on resume, so that
//     they are served or answered MOVED; pauseSlots returns the stream
//     offset for Export.WritesPaused once the writes before the pause are
//     in the stream; the export's connection must still be flushed to it.
//   - Target side: SYNCSLOTS ESTABLISH calls Table.Establish and answers
//     +OK only after its Persist; RESTORE records and stream effects are
//     applied to the store (and propagated to the target's replicas) even
//     though the slots are not this node's, without being visible to
//     clients (the router already answers MOVED); report Import.Apply,
//     SnapshotEOF, SourcePaused, Heard, Granted, PeerLost. SYNCSLOTS ABORT
//     from any connection calls Table.AbortRequested.
//   - ClaimSlots: gossip.Core.ClaimSlots, which raises
//     currentEpoch, takes it as configEpoch, adds the slots, sets Persist
//     (fsync before anything is announced, unlike SETSLOT's lazy write) and
//     pushes the record and claim to every node at once, as a promotion
//     does.
//   - DeleteSlots/DropImported: delete the slots' keys, propagating DELs to
//     replicas.
package migrate
