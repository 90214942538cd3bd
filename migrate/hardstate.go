package migrate

import (
	"encoding/binary"
	"errors"

	"github.com/hearsay/hearsay/gossip/wire"
)

// HardState is what one side of a running migration must keep across a
// restart. It is small on purpose: the data itself is not in it.
//
// The source writes it before Connect (so a restart knows the target may
// hold partial data and can tell it to drop it) and again with Granted set
// before SendGrant: from the grant on, the source must never accept a write
// to the slots again unless the target confirms it did not claim them, and
// that must survive a crash. The target writes it before it accepts
// ESTABLISH (so a restart drops keys it never owned). Each side removes it
// when the migration ends, after the intents that end it.
type HardState struct {
	Name string
	Op   Operation
	// Peer is the target of an export, the source of an import.
	Peer  wire.NodeID
	Slots Slots
	// Epoch is the slots' configEpoch when the migration began: a claim
	// above it is the handoff.
	Epoch uint64
	// Granted: the source sent, or was about to send, the grant.
	Granted bool
}

// hardVersion is the first byte of an encoded HardState.
const hardVersion = 1

// maxName bounds a migration name (Valkey's are 40 hex characters).
const maxName = 64

var errHardState = errors.New("migrate: malformed hard state")

// AppendBinary appends the encoding of h: version, op, granted, name
// length and name, the 20-byte peer, the 8-byte epoch (little-endian), the
// range count (2 bytes) and each range as two 2-byte slots.
func (h *HardState) AppendBinary(b []byte) ([]byte, error) {
	if len(h.Name) > maxName || len(h.Slots) > wire.NumSlots {
		return b, errHardState
	}
	g := byte(0)
	if h.Granted {
		g = 1
	}
	b = append(b, hardVersion, byte(h.Op), g, byte(len(h.Name)))
	b = append(b, h.Name...)
	b = append(b, h.Peer[:]...)
	b = binary.LittleEndian.AppendUint64(b, h.Epoch)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.Slots)))
	for _, r := range h.Slots {
		b = binary.LittleEndian.AppendUint16(b, r.Start)
		b = binary.LittleEndian.AppendUint16(b, r.End)
	}
	return b, nil
}

// UnmarshalBinary decodes one HardState, refusing anything AppendBinary
// would not write: a restart must not act on a record it half understood.
func (h *HardState) UnmarshalBinary(b []byte) error {
	if len(b) < 4 || b[0] != hardVersion || b[1] < byte(OpExport) || b[1] > byte(OpImport) || b[2] > 1 {
		return errHardState
	}
	n := int(b[3])
	if n > maxName || len(b) < 4+n+20+8+2 {
		return errHardState
	}
	*h = HardState{Op: Operation(b[1]), Granted: b[2] == 1, Name: string(b[4 : 4+n])}
	b = b[4+n:]
	copy(h.Peer[:], b)
	h.Epoch = binary.LittleEndian.Uint64(b[20:])
	k := int(binary.LittleEndian.Uint16(b[28:]))
	b = b[30:]
	if len(b) != 4*k || k == 0 {
		return errHardState
	}
	h.Slots = make(Slots, k)
	for i := range h.Slots {
		r := wire.SlotRange{Start: binary.LittleEndian.Uint16(b[4*i:]), End: binary.LittleEndian.Uint16(b[4*i+2:])}
		if r.Start > r.End || r.End >= wire.NumSlots {
			return errHardState
		}
		h.Slots[i] = r
	}
	if h.Op == OpImport && h.Granted {
		return errHardState
	}
	return nil
}
