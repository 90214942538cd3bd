// Package clusterview renders a node's view of the cluster in the exact text
// and shapes that Redis Cluster clients expect: CLUSTER NODES, CLUSTER INFO,
// CLUSTER SLOTS and CLUSTER SHARDS. It also parses CLUSTER NODES text, from
// Redis or from hearsay, for the client-side tools in node/admin.
//
// Everything here is pure: no I/O, no clocks. The runtime passes in the views
// from gossip.Core.Nodes and a function that turns the core's relative times
// into Unix milliseconds.
package clusterview
