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
// The node runs it (node/migrate_*.go). What the runtime does:
//
//   - Commands: CLUSTER MIGRATESLOTS checks the node's role and the
//     SETSLOT marks, parses with ParseMigrateSlots, names each request (40
//     hex digits from a ChaCha8 seeded at start) and calls
//     Table.MigrateSlots; CANCELSLOTMIGRATIONS calls Table.CancelAll;
//     GETSLOTMIGRATIONS formats Table.Status as one map per row (times in
//     Unix seconds). All on the bus loop, like the other CLUSTER admin
//     commands. The table is ticked by the bus timer at NextDeadline (never
//     sooner than 5 ms ahead, so a deadline it cannot act on yet does not
//     spin the loop), after every Ready that changed the slot table or a
//     node's flags, and reaped after every batch of intents, so a migration
//     that ended on an event frees its slots at once.
//   - Cluster: coreCluster over gossip.Core (Node for the flags, SlotOwner,
//     the snapshot's MIGRATING/IMPORTING marks for LegacyMarks).
//   - Persist: the records live in slot-migrations.bin in the node's
//     directory (a magic, the records, a CRC-32), rewritten whole with
//     fsync and an atomic rename before the next intent runs; a failed
//     write stops the batch. At start the file is read right after the
//     node config file, and one that does not decode stops the node before
//     it writes anything; Table.Restore's intents run at the end of
//     node.New, before the node serves a client or joins the bus.
//   - Connect/StartSnapshot/StreamWrites: per export a goroutine dials the
//     target's client port (AUTH with masterauth), sends ESTABLISH, and on
//     +OK (Established) registers a reader on the replication stream
//     (EnsureFeed makes the stream propagate even with no replica), then
//     reads the slots one at a time and writes RESTORE … ABSTTL REPLACE
//     records, then SNAPSHOT-EOF, then the stream's commands whose key is
//     in the slots (a FLUSHALL fails the export). StreamWrites is a no-op:
//     the stream follows the snapshot on its own. Offsets count every data
//     byte, snapshot records included, so that the pause waits for a target
//     still applying the snapshot. Another goroutine reads ACK and
//     REQUEST-FAILOVER (Acked, HandoffRequested); a closed connection is
//     PeerLost. Results reach the loop by its Execute; the loop steers the
//     writer through a channel and never waits on a socket.
//   - PauseWrites/ResumeWrites: Node.pauseSlots and resumeSlots; the
//     writer reports WritesPaused once its stream reader has passed the
//     offset pauseSlots returned, and then stops reading the stream: it
//     is final for the slots there, and what it later carries for them is
//     this node's own deletion after the claim, which must never reach
//     the target (the target also refuses data past PAUSED's offset).
//   - SendAbort: on a connection of its own, carrying SOURCE as well;
//     +ABORTED is AbortConfirmed.
//   - Target side: ESTABLISH calls Table.Establish and answers +OK after
//     its Persist; the connection is then detached into an import link
//     whose goroutine serves the records and effects through the
//     dispatcher, so they are propagated to this node's replicas; the
//     router lets that connection, and only it, write the slots it
//     imports, so clients still get MOVED to the source. An error reply
//     to any of them drops the import. It reports Apply (once per read),
//     SnapshotEOF, SourcePaused, Heard (PING) and Granted in stream order,
//     PeerLost when the connection ends; ABORT from any connection calls
//     Table.AbortRequested and answers from its SendAborted/SendClaimed.
//   - ClaimSlots: gossip.Core.ClaimSlots, whose Ready is applied at once
//     (fsync before anything is announced).
//   - DeleteSlots: a goroutine deletes the keys after the claim is seen,
//     so that ResumeWrites (the parked writes get MOVED) does not wait for
//     it; slot by slot, under the writer lock, it keeps a slot the
//     published view says is ours. An ESTABLISH of slots still being
//     deleted is refused. DropImported deletes on the loop. Both propagate
//     a DEL per key.
//   - The links of a migration that ended are closed after each batch.
package migrate
