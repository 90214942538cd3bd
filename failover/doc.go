// Package failover will hold hearsay's deterministic election logic: replica
// rank and election delay scaled by node-timeout, auth requests and votes
// (one vote per epoch, made durable before the ACK), manual failover
// (default, FORCE, TAKEOVER), and replica migration. Like package gossip it
// does no I/O and reads no clock.
//
// It is not implemented yet: no issue has asked for it so far. Until it is,
// a hearsay node detects failures (package gossip) but does not promote
// replicas, and CLUSTER FAILOVER answers with an error that says so.
package failover
