package wire

import (
	"encoding/binary"
	"net/netip"
)

// Flag bits of the SYNCDATA flags byte.
const (
	syncFlagReply = 1 << 0
	syncFlagLast  = 1 << 1
)

// allBuckets is the mask that admits every record: outside SYNCDATA, records
// and claims are not tied to buckets.
const allBuckets = ^uint64(0)

var le = binary.LittleEndian

// Bucket returns the anti-entropy bucket of a node record or claim owner:
// ID[0] % SyncBuckets.
func (id NodeID) Bucket() int { return int(id[0]) % SyncBuckets }

func inMask(id NodeID, mask uint64) bool { return mask>>(id[0]%SyncBuckets)&1 != 0 }

// BodyLen returns the encoded body length of m without validating it. Callers
// that chunk large state keep BodyLen() <= MaxBody.
func (m *Message) BodyLen() int {
	n := HeaderLen
	switch m.Type {
	case TypePing, TypePong, TypeMeet:
		n += 2 + len(m.Gossip)*RecordLen + claimsLen(m.Claims)
	case TypeFail:
		n += 32
	case TypeFailReport:
		n += 29
	case TypeUpdate:
		n += claimsLen(m.Claims)
	case TypeSync:
		n += 1 + 2 + 8*len(m.Buckets)
	case TypeSyncData:
		n += 9 + 2 + len(m.Gossip)*RecordLen + claimsLen(m.Claims)
	case TypeAuthRequest:
		n += 1 + 16 + claimsLen(m.Claims)
	case TypeAuthAck:
		n += 8
	}
	return n
}

func claimsLen(cs []SlotClaim) int {
	n := 2
	for i := range cs {
		n += ClaimFixedLen + RangeLen*len(cs[i].Ranges)
	}
	return n
}

// validate checks m against the rules the decoder enforces and returns the
// body length.
func (m *Message) validate() (int, error) {
	if !m.Type.Valid() {
		return 0, ErrBadType
	}
	if m.Header.Sender.IsZero() {
		return 0, errZeroSender
	}
	mask := allBuckets
	switch m.Type {
	case TypeFail, TypeFailReport:
		if m.Subject.IsZero() {
			return 0, errZeroSubject
		}
	case TypeUpdate:
		if len(m.Claims) != 1 {
			return 0, errUpdateClaims
		}
	case TypeSync:
		if len(m.Buckets) != SyncBuckets {
			return 0, errBuckets
		}
	case TypeSyncData:
		mask = m.Mask
	case TypeAuthRequest:
		if m.AuthFlags&^AuthForceAck != 0 {
			return 0, errAuthFlags
		}
	}
	switch m.Type {
	case TypePing, TypePong, TypeMeet, TypeSyncData:
		if len(m.Gossip) > MaxRecords {
			return 0, errManyRecords
		}
		for i := range m.Gossip {
			if m.Gossip[i].ID.IsZero() {
				return 0, errZeroRecord
			}
			if !inMask(m.Gossip[i].ID, mask) {
				return 0, errMask
			}
		}
		fallthrough
	case TypeUpdate, TypeAuthRequest:
		if len(m.Claims) > MaxClaims {
			return 0, errManyClaims
		}
		for i := range m.Claims {
			c := &m.Claims[i]
			if c.Owner.IsZero() {
				return 0, errZeroOwner
			}
			if !inMask(c.Owner, mask) {
				return 0, errMask
			}
			if len(c.Ranges) > MaxRanges {
				return 0, errManyRanges
			}
			if err := checkRanges(c.Ranges); err != nil {
				return 0, err
			}
		}
	}
	n := m.BodyLen()
	if n > MaxBody {
		return 0, errBodyLen
	}
	return n, nil
}

// checkRanges enforces Start <= End < NumSlots, ascending and disjoint.
func checkRanges(rs []SlotRange) error {
	next := 0 // lowest Start allowed for the next range
	for _, r := range rs {
		if r.Start > r.End || r.End >= NumSlots {
			return errRange
		}
		if int(r.Start) < next {
			return errRangeOrder
		}
		next = int(r.End) + 1
	}
	return nil
}

// appendBody appends m's body; m has been validated.
func (m *Message) appendBody(b []byte) []byte {
	b = appendHeader(b, &m.Header)
	switch m.Type {
	case TypePing, TypePong, TypeMeet:
		b = appendRecords(b, m.Gossip)
		b = appendClaims(b, m.Claims)
	case TypeFail:
		b = append(b, m.Subject[:]...)
		b = le.AppendUint64(b, m.SubjectVersion)
		b = le.AppendUint32(b, m.FailAge)
	case TypeFailReport:
		b = append(b, m.Subject[:]...)
		b = le.AppendUint64(b, m.SubjectVersion)
		b = append(b, boolByte(m.Report))
	case TypeUpdate:
		b = appendClaims(b, m.Claims)
	case TypeSync:
		var f byte
		if m.Reply {
			f |= syncFlagReply
		}
		b = append(b, f)
		b = le.AppendUint16(b, uint16(len(m.Buckets)))
		for _, h := range m.Buckets {
			b = le.AppendUint64(b, h)
		}
	case TypeSyncData:
		b = le.AppendUint64(b, m.Mask)
		var f byte
		if m.Reply {
			f |= syncFlagReply
		}
		if m.Last {
			f |= syncFlagLast
		}
		b = append(b, f)
		b = appendRecords(b, m.Gossip)
		b = appendClaims(b, m.Claims)
	case TypeAuthRequest:
		b = append(b, m.AuthFlags)
		b = le.AppendUint64(b, m.Epoch)
		b = le.AppendUint64(b, m.MasterEpoch)
		b = appendClaims(b, m.Claims)
	case TypeAuthAck:
		b = le.AppendUint64(b, m.Epoch)
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendHeader(b []byte, h *Header) []byte {
	b = append(b, h.Sender[:]...)
	b = le.AppendUint64(b, h.CurrentEpoch)
	b = le.AppendUint64(b, h.ConfigEpoch)
	b = le.AppendUint64(b, h.Version)
	b = le.AppendUint16(b, uint16(h.Flags))
	b = append(b, h.Master[:]...)
	b = le.AppendUint64(b, h.ReplOffset)
	b = appendAddr(b, &h.Addr)
	b = le.AppendUint64(b, h.StateDigest)
	return le.AppendUint32(b, h.KnownNodes)
}

// appendAddr writes the IP as 16 bytes (IPv4 mapped into IPv6, zone
// dropped, all zero for no address), then Port and BusPort.
func appendAddr(b []byte, a *Addr) []byte {
	var ip [16]byte
	if a.IP.IsValid() {
		ip = a.IP.As16()
	}
	b = append(b, ip[:]...)
	b = le.AppendUint16(b, a.Port)
	return le.AppendUint16(b, a.BusPort)
}

func appendRecords(b []byte, rs []NodeRecord) []byte {
	b = le.AppendUint16(b, uint16(len(rs)))
	for i := range rs {
		r := &rs[i]
		b = append(b, r.ID[:]...)
		b = appendAddr(b, &r.Addr)
		b = le.AppendUint16(b, uint16(r.Flags))
		b = append(b, r.Master[:]...)
		b = le.AppendUint64(b, r.ConfigEpoch)
		b = le.AppendUint64(b, r.Version)
	}
	return b
}

func appendClaims(b []byte, cs []SlotClaim) []byte {
	b = le.AppendUint16(b, uint16(len(cs)))
	for i := range cs {
		c := &cs[i]
		b = append(b, c.Owner[:]...)
		b = le.AppendUint64(b, c.ConfigEpoch)
		b = le.AppendUint64(b, c.Version)
		b = le.AppendUint16(b, uint16(len(c.Ranges)))
		for _, r := range c.Ranges {
			b = le.AppendUint16(b, r.Start)
			b = le.AppendUint16(b, r.End)
		}
	}
	return b
}

// decodeBody decodes a checksummed body of type t into m.
func (d *Decoder) decodeBody(t Type, b []byte, m *Message) error {
	m.Type = t
	m.Gossip = m.Gossip[:0]
	m.Claims = m.Claims[:0]
	m.Buckets = m.Buckets[:0]
	m.Subject = NodeID{}
	m.SubjectVersion = 0
	m.Report, m.Reply, m.Last = false, false, false
	m.FailAge = 0
	m.Mask = 0
	m.AuthFlags = 0
	m.Epoch, m.MasterEpoch = 0, 0
	d.ranges = d.ranges[:0]

	if len(b) < HeaderLen {
		return ErrTruncated
	}
	getHeader(&m.Header, b)
	if m.Header.Sender.IsZero() {
		return errZeroSender
	}
	b = b[HeaderLen:]
	var err error
	switch t {
	case TypePing, TypePong, TypeMeet:
		if b, err = getRecords(m, b, allBuckets); err == nil {
			b, err = d.getClaims(m, b, allBuckets)
		}
	case TypeFail, TypeFailReport:
		if len(b) < 28 {
			return ErrTruncated
		}
		m.Subject = NodeID(b[:20])
		m.SubjectVersion = le.Uint64(b[20:])
		b = b[28:]
		if m.Subject.IsZero() {
			return errZeroSubject
		}
		if t == TypeFail {
			if len(b) < 4 {
				return ErrTruncated
			}
			m.FailAge = le.Uint32(b)
			b = b[4:]
		}
		if t == TypeFailReport {
			if len(b) < 1 {
				return ErrTruncated
			}
			if b[0] > 1 {
				return errBool
			}
			m.Report = b[0] == 1
			b = b[1:]
		}
	case TypeUpdate:
		if b, err = d.getClaims(m, b, allBuckets); err == nil && len(m.Claims) != 1 {
			err = errUpdateClaims
		}
	case TypeSync:
		if len(b) < 1 {
			return ErrTruncated
		}
		if b[0]&^syncFlagReply != 0 {
			return errSyncFlags
		}
		m.Reply = b[0]&syncFlagReply != 0
		b, err = getBuckets(m, b[1:])
	case TypeSyncData:
		if len(b) < 9 {
			return ErrTruncated
		}
		m.Mask = le.Uint64(b)
		f := b[8]
		if f&^(syncFlagReply|syncFlagLast) != 0 {
			return errSyncFlags
		}
		m.Reply = f&syncFlagReply != 0
		m.Last = f&syncFlagLast != 0
		if b, err = getRecords(m, b[9:], m.Mask); err == nil {
			b, err = d.getClaims(m, b, m.Mask)
		}
	case TypeAuthRequest:
		if len(b) < 17 {
			return ErrTruncated
		}
		m.AuthFlags = b[0]
		if m.AuthFlags&^AuthForceAck != 0 {
			return errAuthFlags
		}
		m.Epoch = le.Uint64(b[1:])
		m.MasterEpoch = le.Uint64(b[9:])
		b, err = d.getClaims(m, b[17:], allBuckets)
	case TypeAuthAck:
		if len(b) < 8 {
			return ErrTruncated
		}
		m.Epoch = le.Uint64(b)
		b = b[8:]
	case TypeMFStart:
	default:
		return ErrBadType
	}
	if err != nil {
		return err
	}
	if len(b) != 0 {
		return errBodyTrail
	}
	return nil
}

// getHeader reads a Header from b, which holds at least HeaderLen bytes.
func getHeader(h *Header, b []byte) {
	b = b[:HeaderLen]
	h.Sender = NodeID(b[0:20])
	h.CurrentEpoch = le.Uint64(b[20:])
	h.ConfigEpoch = le.Uint64(b[28:])
	h.Version = le.Uint64(b[36:])
	h.Flags = Flags(le.Uint16(b[44:]))
	h.Master = NodeID(b[46:66])
	h.ReplOffset = le.Uint64(b[66:])
	getAddr(&h.Addr, b[74:94])
	h.StateDigest = le.Uint64(b[94:])
	h.KnownNodes = le.Uint32(b[102:])
}

// getAddr reads a 20-byte address block. All-zero IP bytes mean no address;
// IPv4-mapped addresses decode as IPv4.
func getAddr(a *Addr, b []byte) {
	ip := [16]byte(b[:16])
	if ip == [16]byte{} {
		a.IP = netip.Addr{}
	} else {
		a.IP = netip.AddrFrom16(ip).Unmap()
	}
	a.Port = le.Uint16(b[16:])
	a.BusPort = le.Uint16(b[18:])
}

// readCount reads a uint16 count and checks it against max and the bytes
// left: count*size must fit in what follows.
func readCount(b []byte, max, size int, tooMany error) (int, []byte, error) {
	if len(b) < 2 {
		return 0, b, ErrTruncated
	}
	n := int(le.Uint16(b))
	if n > max {
		return 0, b, tooMany
	}
	b = b[2:]
	if n*size > len(b) {
		return 0, b, ErrTruncated
	}
	return n, b, nil
}

// resize returns s with length n, reusing its array when it is big enough:
// a decoder fed frame after frame stops allocating once its slices have grown.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func getRecords(m *Message, b []byte, mask uint64) ([]byte, error) {
	n, b, err := readCount(b, MaxRecords, RecordLen, errManyRecords)
	if err != nil {
		return b, err
	}
	m.Gossip = resize(m.Gossip, n)
	for i := range m.Gossip {
		r := &m.Gossip[i]
		e := b[:RecordLen]
		r.ID = NodeID(e[0:20])
		if r.ID.IsZero() {
			return b, errZeroRecord
		}
		if !inMask(r.ID, mask) {
			return b, errMask
		}
		getAddr(&r.Addr, e[20:40])
		r.Flags = Flags(le.Uint16(e[40:]))
		r.Master = NodeID(e[42:62])
		r.ConfigEpoch = le.Uint64(e[62:])
		r.Version = le.Uint64(e[70:])
		b = b[RecordLen:]
	}
	return b, nil
}

func (d *Decoder) getClaims(m *Message, b []byte, mask uint64) ([]byte, error) {
	n, b, err := readCount(b, MaxClaims, ClaimFixedLen, errManyClaims)
	if err != nil {
		return b, err
	}
	m.Claims = resize(m.Claims, n)
	for i := range m.Claims {
		c := &m.Claims[i]
		if len(b) < ClaimFixedLen {
			return b, ErrTruncated
		}
		c.Owner = NodeID(b[0:20])
		if c.Owner.IsZero() {
			return b, errZeroOwner
		}
		if !inMask(c.Owner, mask) {
			return b, errMask
		}
		c.ConfigEpoch = le.Uint64(b[20:])
		c.Version = le.Uint64(b[28:])
		c.Ranges = nil
		var k int
		if k, b, err = readCount(b[36:], MaxRanges, RangeLen, errManyRanges); err != nil {
			return b, err
		}
		start := len(d.ranges)
		if cap(d.ranges)-start < k {
			// Grow the pool. Claims decoded so far keep the old array; the
			// bound on k keeps the pool within the body size.
			d.ranges = append(d.ranges[:cap(d.ranges)], make([]SlotRange, k)...)[:start]
		}
		rs := d.ranges[start : start+k : start+k]
		d.ranges = d.ranges[:start+k]
		for j := range rs {
			rs[j] = SlotRange{Start: le.Uint16(b[4*j:]), End: le.Uint16(b[4*j+2:])}
		}
		b = b[RangeLen*k:]
		if err := checkRanges(rs); err != nil {
			return b, err
		}
		if k > 0 {
			c.Ranges = rs
		}
	}
	return b, nil
}

func getBuckets(m *Message, b []byte) ([]byte, error) {
	n, b, err := readCount(b, SyncBuckets, 8, errBuckets)
	if err != nil {
		return b, err
	}
	if n != SyncBuckets {
		return b, errBuckets
	}
	m.Buckets = resize(m.Buckets, n)
	for i := range m.Buckets {
		m.Buckets[i] = le.Uint64(b[8*i:])
	}
	return b[8*n:], nil
}
