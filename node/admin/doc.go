// Package admin is the client side of cluster administration: the operations
// behind `hearsay cluster` (create, check, info, add-node, del-node, nodes).
// It talks RESP to each node with go-redis, sends the same command sequences
// redis-cli's --cluster mode sends, and so works against Redis Cluster nodes
// as well as hearsay nodes.
//
// Every error names the node it concerns, as host:port.
package admin
