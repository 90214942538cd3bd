// Package failover is hearsay's election logic, kept free of clocks,
// goroutines, I/O and global randomness so that the simulator runs exactly
// what a node runs.
//
// It holds two state machines. An Election runs on a replica: when its
// master is FAIL (or an operator asked for a manual failover) it ranks itself
// among its siblings by replication offset, waits a delay scaled by the node
// timeout, asks the masters for votes in a new epoch, and on a majority
// takes its master's slots with that epoch as its configEpoch. A Ballot runs
// on every master: it grants at most one vote per epoch, never votes for two
// different replicas of one master within twice the node timeout, votes only
// for a FAIL master unless the request is forced (manual failover), and
// refuses a request whose slots already moved to a newer configEpoch.
//
// Both read the cluster through the Cluster interface, which gossip.Core
// implements, and answer with Intents that the core carries out: the core
// owns the epochs, the slot claims and persistence. A vote is part of the
// durable state (Ballot.Votes), and the core writes it before the AUTHACK
// that announces it leaves.
package failover
