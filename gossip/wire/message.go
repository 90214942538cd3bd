// Package wire defines hearsay's cluster-bus messages and their binary
// encoding. The layouts are specified in PROTOCOL.md at the repository root.
//
// Decoding reuses the slices of the Message it decodes into, so a decoder that
// is fed frame after frame allocates nothing once its buffers have grown.
package wire

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
)

// NodeID is a node's identity: 20 random bytes on the wire, 40 lowercase hex
// characters in text, as in Redis.
type NodeID [20]byte

// String returns the 40-character lowercase hex form.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the all-zero ID, used for "no node".
func (id NodeID) IsZero() bool { return id == NodeID{} }

// Key is the first 8 bytes of the ID, little-endian: the heartbeat sender key.
func (id NodeID) Key() uint64 { return binary.LittleEndian.Uint64(id[:8]) }

// ErrBadNodeID is returned by ParseNodeID for text that is not 40 hex digits.
var ErrBadNodeID = errors.New("wire: node ID must be 40 lowercase hex characters")

// ParseNodeID parses the 40-character hex form.
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	if len(s) != 40 {
		return id, ErrBadNodeID
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return id, ErrBadNodeID
		}
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, ErrBadNodeID
	}
	return id, nil
}

// Flags describe a node's role and health as seen by the sender.
type Flags uint16

// Node flags. Their names in CLUSTER NODES are given by FlagNames.
const (
	FlagMaster     Flags = 1 << iota // the node is a master
	FlagReplica                      // the node is a replica of Master
	FlagPFail                        // the sender has not heard from the node for node-timeout
	FlagFail                         // a majority of voters agreed the node failed
	FlagHandshake                    // the node was met but has not answered yet
	FlagNoAddr                       // the node's address is unknown
	FlagNoFailover                   // the replica must not start a failover
	// FlagPaused is set only in a header: the sender is a master that has
	// paused its writes for a manual failover, and Header.ReplOffset is
	// the offset its replica must reach before it asks for votes.
	FlagPaused
)

// Addr is where a node listens: the client (RESP) port and the bus port.
// Heartbeats use UDP on the bus port number.
type Addr struct {
	IP      netip.Addr
	Port    uint16
	BusPort uint16
}

// Type is a bus message type.
type Type uint8

// Message types. The numbers are wire values and never change.
const (
	TypePing        Type = 1  // header + gossip section + slot claim rumors
	TypePong        Type = 2  // answer to PING or MEET; same body
	TypeMeet        Type = 3  // like PING, and asks the receiver to add the sender
	TypeFail        Type = 4  // Subject is FAIL; top-priority broadcast
	TypeUpdate      Type = 5  // Claims[0] is newer than what the receiver claims
	TypeFailReport  Type = 6  // the sender sees Subject as PFAIL (Report=true) or alive again (false)
	TypeSync        Type = 7  // anti-entropy digest: Buckets holds one hash per bucket
	TypeSyncData    Type = 8  // anti-entropy records for the buckets in Mask
	TypeAuthRequest Type = 9  // a replica asks for a vote in epoch Epoch
	TypeAuthAck     Type = 10 // a master grants its vote for Epoch
	TypeMFStart     Type = 11 // a replica starts a manual failover with its master
)

// SyncBuckets is how many buckets the anti-entropy digest splits state into.
// A record falls in bucket ID[0] % SyncBuckets.
const SyncBuckets = 64

// Header is carried by every message: the sender's own view of itself.
type Header struct {
	Sender       NodeID
	CurrentEpoch uint64
	ConfigEpoch  uint64 // a replica sends its master's configEpoch
	Version      uint64 // version of the sender's own node record
	Flags        Flags
	Master       NodeID // zero unless the sender is a replica
	ReplOffset   uint64
	Addr         Addr
	StateDigest  uint64 // digest of all node records and slot claims the sender knows
	KnownNodes   uint32
}

// NodeRecord is one node as the sender knows it. It is the gossip-section
// entry of PING/PONG/MEET and the record unit of SYNCDATA.
type NodeRecord struct {
	ID          NodeID
	Addr        Addr
	Flags       Flags
	Master      NodeID
	ConfigEpoch uint64
	Version     uint64 // set by the node itself; a higher version replaces a lower one
}

// SlotRange is an inclusive range of slots, Start <= End < 16384.
type SlotRange struct{ Start, End uint16 }

// SlotClaim is a versioned claim: Owner serves Ranges at ConfigEpoch.
// A claim with a higher ConfigEpoch rebinds the slots it names.
type SlotClaim struct {
	Owner       NodeID
	ConfigEpoch uint64
	Version     uint64 // the owner's record version when it made this claim; a newer claim replaces an older one
	Ranges      []SlotRange
}

// Message is one decoded bus message. Which fields are meaningful depends on
// Type; PROTOCOL.md lists them. Slices alias the decoder's reused storage.
type Message struct {
	Type   Type
	Header Header

	Gossip []NodeRecord // PING, PONG, MEET, SYNCDATA
	Claims []SlotClaim  // PING, PONG, MEET, SYNCDATA, UPDATE (exactly one), AUTHREQUEST

	Subject        NodeID // FAIL, FAILREPORT
	SubjectVersion uint64 // FAIL, FAILREPORT: the subject's record version the verdict is about
	Report         bool   // FAILREPORT: true sets the report, false withdraws it
	// FailAge (FAIL) is how long ago, in milliseconds, the verdict was
	// declared, as the sender knows it: never more than the true age.
	FailAge uint32

	Buckets []uint64 // SYNC: exactly SyncBuckets hashes
	Mask    uint64   // SYNCDATA: the buckets these records cover
	Reply   bool     // SYNCDATA: the receiver should answer with its own records for Mask
	Last    bool     // SYNCDATA: the final chunk of this exchange

	AuthFlags   uint8  // AUTHREQUEST: AuthForceAck for a manual failover
	Epoch       uint64 // AUTHREQUEST: the election's epoch; AUTHACK: the epoch the vote is for
	MasterEpoch uint64 // AUTHREQUEST: the failed master's configEpoch as the candidate knows it
}

// AuthForceAck asks masters to vote even though the master is not FAIL
// (manual failover).
const AuthForceAck uint8 = 1
