// Package migrate will hold slot migration: the redis-cli-compatible
// key-by-key path (SETSLOT IMPORTING/MIGRATING/NODE/STABLE, MIGRATE, ASK,
// TRYAGAIN) and the atomic whole-slot handoff (CLUSTER MIGRATESLOTS). It will
// reach the store through an interface and know nothing of sockets.
//
// It is not implemented yet: no issue has asked for it so far. The SETSLOT
// states themselves, and the ASK/TRYAGAIN routing they imply, already live
// in package gossip (the slot table's marks) and the node's router.
package migrate
