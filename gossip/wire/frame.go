package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"slices"
)

// Frame layout constants. PROTOCOL.md gives the byte-level layout.
const (
	// Magic opens every frame.
	Magic = "HSB1"
	// ProtocolVersion is the only frame version this package speaks.
	ProtocolVersion = 1
	// FrameHeaderLen is the size of the fixed frame header.
	FrameHeaderLen = 16
	// MACLen is the size of the HMAC-SHA256 trailer.
	MACLen = sha256.Size
	// MaxBody is the largest body a frame may carry. Larger state is sent in
	// several messages (SYNCDATA chunks).
	MaxBody = 64 << 10
	// MaxFrame is the largest whole frame: header, MaxBody and the trailer.
	MaxFrame = FrameHeaderLen + MaxBody + MACLen

	// FrameFlagMAC is the frame flag that says a MACLen-byte HMAC-SHA256
	// trailer follows the body. The other flag bits are reserved and must be 0.
	FrameFlagMAC uint16 = 1
)

// Body element sizes and count bounds. A count field is checked against both
// its bound and the bytes left in the body before anything is allocated, so a
// frame can never make the decoder allocate more than a small multiple of
// its own size.
const (
	// HeaderLen is the encoded size of a Header, the first block of every body.
	HeaderLen = 106
	// RecordLen is the encoded size of one NodeRecord.
	RecordLen = 78
	// ClaimFixedLen is the encoded size of a SlotClaim without its ranges.
	ClaimFixedLen = 38
	// RangeLen is the encoded size of one SlotRange.
	RangeLen = 4

	// MaxRecords bounds the node records (gossip entries) in one message.
	MaxRecords = 512
	// MaxClaims bounds the slot claims in one message.
	MaxClaims = 1024
	// MaxRanges bounds the ranges in one claim: 16384 slots hold at most 8192
	// disjoint, non-adjacent ranges.
	MaxRanges = 8192
	// NumSlots is the number of hash slots; a SlotRange's End is below it.
	NumSlots = 16384
)

// Sentinel errors. Every error returned by Decode, FrameLen and AppendFrame
// matches exactly one of them with errors.Is. A receiver that gets any error
// from Decode closes the link and counts the error.
var (
	// ErrShort means the buffer holds less than a whole frame: fewer than
	// FrameHeaderLen bytes for FrameLen, fewer than FrameLen bytes for Decode.
	// A stream reader waits for more input.
	ErrShort = errors.New("wire: short buffer")
	// ErrBadMagic means the frame does not start with Magic.
	ErrBadMagic = errors.New("wire: bad magic")
	// ErrBadVersion means the frame's version is not ProtocolVersion.
	ErrBadVersion = errors.New("wire: unsupported version")
	// ErrBadType means the frame or message type is unknown.
	ErrBadType = errors.New("wire: unknown message type")
	// ErrTooLarge means a body exceeds MaxBody or a count exceeds its bound.
	ErrTooLarge = errors.New("wire: too large")
	// ErrTruncated means the body ends inside a field or section.
	ErrTruncated = errors.New("wire: truncated body")
	// ErrChecksum means the CRC32C does not match.
	ErrChecksum = errors.New("wire: checksum mismatch")
	// ErrAuth means the HMAC is missing or wrong while a secret is set.
	ErrAuth = errors.New("wire: authentication failed")
	// ErrMalformed means the frame is well-formed bytes but breaks a rule of
	// the protocol. The returned error wraps it with a detail.
	ErrMalformed = errors.New("wire: malformed message")
)

// Detailed errors, built once so that neither success nor failure allocates.
var (
	errFrameFlags   = fmt.Errorf("%w: reserved frame flag bits set", ErrMalformed)
	errFrameTrail   = fmt.Errorf("%w: bytes after the end of the frame", ErrMalformed)
	errBodyTrail    = fmt.Errorf("%w: trailing bytes in body", ErrMalformed)
	errZeroSender   = fmt.Errorf("%w: zero sender ID", ErrMalformed)
	errZeroRecord   = fmt.Errorf("%w: zero node ID in record", ErrMalformed)
	errZeroOwner    = fmt.Errorf("%w: zero claim owner", ErrMalformed)
	errZeroSubject  = fmt.Errorf("%w: zero subject ID", ErrMalformed)
	errRange        = fmt.Errorf("%w: slot range not Start<=End<16384", ErrMalformed)
	errRangeOrder   = fmt.Errorf("%w: slot ranges not ascending and disjoint", ErrMalformed)
	errBool         = fmt.Errorf("%w: boolean byte not 0 or 1", ErrMalformed)
	errSyncFlags    = fmt.Errorf("%w: reserved SYNCDATA flag bits set", ErrMalformed)
	errAuthFlags    = fmt.Errorf("%w: unknown AUTHREQUEST flag bits", ErrMalformed)
	errBuckets      = fmt.Errorf("%w: SYNC must carry exactly %d buckets", ErrMalformed, SyncBuckets)
	errUpdateClaims = fmt.Errorf("%w: UPDATE must carry exactly one claim", ErrMalformed)
	errMask         = fmt.Errorf("%w: SYNCDATA record or claim outside Mask", ErrMalformed)
	errManyRecords  = fmt.Errorf("%w: more than %d records", ErrTooLarge, MaxRecords)
	errManyClaims   = fmt.Errorf("%w: more than %d claims", ErrTooLarge, MaxClaims)
	errManyRanges   = fmt.Errorf("%w: more than %d ranges in a claim", ErrTooLarge, MaxRanges)
	errBodyLen      = fmt.Errorf("%w: body longer than MaxBody", ErrTooLarge)
	errInternal     = fmt.Errorf("%w: encoder size mismatch", ErrMalformed)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the frame CRC32C: header bytes 0..11, then the body. Covering
// the type and length as well as the body means a single flipped bit cannot
// turn one message type into another with the same body layout.
func checksum(hdr, body []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, hdr[:12]), castagnoli, body)
}

// String returns the message type's name as PROTOCOL.md spells it.
func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return "UNKNOWN"
}

// Valid reports whether t is a known message type.
func (t Type) Valid() bool { return t >= TypePing && t <= TypeMFStart }

var typeNames = [...]string{
	TypePing: "PING", TypePong: "PONG", TypeMeet: "MEET", TypeFail: "FAIL",
	TypeUpdate: "UPDATE", TypeFailReport: "FAILREPORT", TypeSync: "SYNC",
	TypeSyncData: "SYNCDATA", TypeAuthRequest: "AUTHREQUEST",
	TypeAuthAck: "AUTHACK", TypeMFStart: "MFSTART",
}

// FrameLen validates the frame header at the start of buf and returns the
// length of the whole frame: header, body and trailer. It returns ErrShort
// when buf holds fewer than FrameHeaderLen bytes, so a stream reader can call
// it on its inbound buffer and wait until that many bytes are buffered. It
// does not check the CRC or the HMAC; Decode does.
func FrameLen(buf []byte) (int, error) {
	if len(buf) < FrameHeaderLen {
		return 0, ErrShort
	}
	if string(buf[:4]) != Magic {
		return 0, ErrBadMagic
	}
	if buf[4] != ProtocolVersion {
		return 0, ErrBadVersion
	}
	if !Type(buf[5]).Valid() {
		return 0, ErrBadType
	}
	flags := binary.LittleEndian.Uint16(buf[6:])
	if flags&^FrameFlagMAC != 0 {
		return 0, errFrameFlags
	}
	body := binary.LittleEndian.Uint32(buf[8:])
	if body > MaxBody {
		return 0, errBodyLen
	}
	n := FrameHeaderLen + int(body)
	if flags&FrameFlagMAC != 0 {
		n += MACLen
	}
	return n, nil
}

// Encoder writes frames. The zero value encodes without authentication. An
// Encoder holds a reusable HMAC state and is not safe for concurrent use.
type Encoder struct {
	mac hash.Hash
}

// NewEncoder returns an Encoder. With a non-empty secret every frame carries
// an HMAC-SHA256 trailer keyed with it; with an empty one frames carry none.
func NewEncoder(secret []byte) *Encoder {
	e := &Encoder{}
	if len(secret) > 0 {
		e.mac = hmac.New(sha256.New, secret)
	}
	return e
}

// AppendFrame validates m, appends its frame to dst and returns the extended
// slice. It does not allocate when dst has capacity for the frame. On error
// dst is returned unchanged. Fields that m.Type does not use are ignored.
func (e *Encoder) AppendFrame(dst []byte, m *Message) ([]byte, error) {
	n, err := m.validate()
	if err != nil {
		return dst, err
	}
	var flags uint16
	total := FrameHeaderLen + n
	if e.mac != nil {
		flags = FrameFlagMAC
		total += MACLen
	}
	start := len(dst)
	out := slices.Grow(dst, total)
	out = append(out, Magic...)
	out = append(out, ProtocolVersion, byte(m.Type))
	out = binary.LittleEndian.AppendUint16(out, flags)
	out = binary.LittleEndian.AppendUint32(out, uint32(n))
	out = binary.LittleEndian.AppendUint32(out, 0) // CRC, filled below
	out = m.appendBody(out)
	frame := out[start:]
	if len(frame) != FrameHeaderLen+n {
		return dst, errInternal
	}
	binary.LittleEndian.PutUint32(frame[12:], checksum(frame, frame[FrameHeaderLen:]))
	if e.mac != nil {
		e.mac.Reset()
		e.mac.Write(frame)
		out = e.mac.Sum(out)
	}
	return out, nil
}

// Decoder reads frames. The zero value decodes without authentication. A
// Decoder holds a reusable HMAC state and the pool that decoded claims'
// Ranges point into, so it is not safe for concurrent use, and a decoded
// message's claim ranges stay valid only until the Decoder's next Decode.
type Decoder struct {
	mac    hash.Hash
	sum    [MACLen]byte
	ranges []SlotRange
}

// NewDecoder returns a Decoder. With a non-empty secret it refuses, with
// ErrAuth, every frame that lacks a valid HMAC-SHA256 trailer keyed with it.
// With an empty secret it accepts frames with or without a trailer and does
// not check the trailer.
func NewDecoder(secret []byte) *Decoder {
	d := &Decoder{}
	if len(secret) > 0 {
		d.mac = hmac.New(sha256.New, secret)
	}
	return d
}

// Decode decodes exactly one frame into m. The frame must be exactly
// FrameLen(frame) bytes long. m's slices are reused; nothing in m refers to
// frame afterwards, so the caller may discard or overwrite frame at once.
// Fields that the message type does not use are zeroed. On error m's
// contents are unspecified.
func (d *Decoder) Decode(frame []byte, m *Message) error {
	n, err := FrameLen(frame)
	if err != nil {
		return err
	}
	if len(frame) < n {
		return ErrShort
	}
	if len(frame) > n {
		return errFrameTrail
	}
	end := FrameHeaderLen + int(binary.LittleEndian.Uint32(frame[8:]))
	body := frame[FrameHeaderLen:end]
	if checksum(frame, body) != binary.LittleEndian.Uint32(frame[12:]) {
		return ErrChecksum
	}
	if d.mac != nil {
		if binary.LittleEndian.Uint16(frame[6:])&FrameFlagMAC == 0 {
			return ErrAuth
		}
		d.mac.Reset()
		d.mac.Write(frame[:end])
		if !hmac.Equal(d.mac.Sum(d.sum[:0]), frame[end:]) {
			return ErrAuth
		}
	}
	return d.decodeBody(Type(frame[5]), body, m)
}
