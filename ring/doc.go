// Package ring holds hearsay's slot math: the key-to-slot function, sets of
// slots, and the slot table that says which master serves each slot.
//
// # Slots and hash tags
//
// The key space is cut into [Slots] (16384) hash slots, exactly as in Redis
// Cluster, so that Redis clients route keys to the same slot hearsay does.
// A key's slot is CRC16-XMODEM of the key, masked to 14 bits.
//
// A hash tag lets a client put related keys in one slot: when a key holds a
// '{' and a later '}' closes a non-empty span, only that span is hashed. Only
// the first '{' and the first '}' after it count, so "{user1000}.following"
// and "{user1000}.followers" share a slot, "foo{}{bar}" is hashed whole (the
// first span is empty), and "foo{{bar}}zap" hashes "{bar".
//
// # Slot sets and ranges
//
// A [SlotSet] is a 2 KiB bitmap of all slots, a plain value that is cheap to
// copy and compare. Text and the bus speak in [Range]s ("0-5460", "5461"),
// and a set converts to and from the minimal sorted list of ranges.
//
// # The slot table and the rebinding rule
//
// A [Table] maps every slot to its owner, the owner's configEpoch as last
// seen for that slot, and this node's migrating and importing marks. Masters
// announce the slots they serve together with their configEpoch; [Table.Claim]
// applies such an announcement with Redis Cluster's rebinding rule:
//
//   - an unassigned slot is bound to the claimer;
//   - an assigned slot is rebound only when the claimer's configEpoch is
//     strictly greater than the one stored for the current owner;
//   - an equal or lower epoch changes nothing and reports nothing. Equal
//     epochs between different masters are a collision that the epoch logic
//     resolves elsewhere (the smaller ID bumps its epoch and claims again),
//     never by a tie-break here.
//
// Claim reports which slots moved and which masters lost slots, so the
// caller can emit events, demote a master left without slots, or send an
// UPDATE to a stale claimer.
//
// The table does not apply protocol policy beyond that rule: it never clears
// marks when ownership changes, and it does not skip slots this node is
// importing. Those choices belong to the caller.
//
// # Snapshots
//
// A Table is owned by one goroutine and is not safe for concurrent use.
// [Table.Snapshot] returns an immutable [Snapshot] that readers on other
// goroutines use without locks, typically published through an
// atomic.Pointer. Lookups on a snapshot are O(1) and allocate nothing.
package ring
