package wire

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
)

// id returns a node ID whose first byte (and so bucket) is b and whose other
// bytes are derived from seed.
func id(b, seed byte) NodeID {
	var n NodeID
	n[0] = b
	for i := 1; i < len(n); i++ {
		n[i] = seed + byte(i)
	}
	return n
}

func sampleHeader(seed byte) Header {
	return Header{
		Sender:       id(0x10, seed),
		CurrentEpoch: 42 + uint64(seed),
		ConfigEpoch:  7,
		Version:      1 << 40,
		Flags:        FlagReplica | FlagNoFailover,
		Master:       id(0x20, seed+1),
		ReplOffset:   0x0102030405060708,
		Addr: Addr{
			IP:      netip.MustParseAddr("10.1.2.3"),
			Port:    6379,
			BusPort: 16379,
		},
		StateDigest: 0xdeadbeefcafef00d,
		KnownNodes:  1000,
	}
}

func sampleRecords(n int, bucket byte) []NodeRecord {
	rs := make([]NodeRecord, n)
	for i := range rs {
		ip := netip.MustParseAddr("fd00::1:2")
		if i%3 == 1 {
			ip = netip.MustParseAddr("192.168.0.9")
		} else if i%3 == 2 {
			ip = netip.Addr{}
		}
		rs[i] = NodeRecord{
			ID:          id(bucket+byte(i)*SyncBuckets, byte(i)),
			Addr:        Addr{IP: ip, Port: uint16(7000 + i), BusPort: uint16(17000 + i)},
			Flags:       FlagMaster | Flags(i)<<2,
			ConfigEpoch: uint64(i) * 3,
			Version:     uint64(i) + 100,
		}
		if i%2 == 1 {
			rs[i].Master = id(0x33, byte(i))
		}
	}
	return rs
}

func sampleClaims(n int, bucket byte) []SlotClaim {
	cs := make([]SlotClaim, n)
	for i := range cs {
		cs[i] = SlotClaim{Owner: id(bucket, byte(i)), ConfigEpoch: uint64(i + 1), Version: uint64(i) << 33}
		for j := 0; j < i; j++ {
			s := uint16(j*100 + i)
			cs[i].Ranges = append(cs[i].Ranges, SlotRange{s, s + uint16(j)})
		}
	}
	return cs
}

func sampleBuckets() []uint64 {
	b := make([]uint64, SyncBuckets)
	for i := range b {
		b[i] = uint64(i) * 0x9e3779b97f4a7c15
	}
	return b
}

type sample struct {
	name string
	m    Message
}

// samples returns valid messages covering every type and section shape.
func samples() []sample {
	return []sample{
		{"ping/empty", Message{Type: TypePing, Header: sampleHeader(1)}},
		{"ping/full", Message{Type: TypePing, Header: sampleHeader(2), Gossip: sampleRecords(10, 5), Claims: sampleClaims(3, 9)}},
		{"ping/noaddr", Message{Type: TypePing, Header: Header{Sender: id(1, 1)}, Gossip: sampleRecords(1, 0)}},
		{"pong", Message{Type: TypePong, Header: sampleHeader(3), Gossip: sampleRecords(4, 1)}},
		{"pong/claims", Message{Type: TypePong, Header: sampleHeader(3), Claims: []SlotClaim{{Owner: id(1, 1), ConfigEpoch: 9, Ranges: []SlotRange{{0, 5460}, {5462, 16383}}}}}},
		{"meet", Message{Type: TypeMeet, Header: sampleHeader(4), Gossip: sampleRecords(2, 60)}},
		{"fail", Message{Type: TypeFail, Header: sampleHeader(5), Subject: id(0x77, 3), SubjectVersion: 77, FailAge: 4321}},
		{"update", Message{Type: TypeUpdate, Header: sampleHeader(6), Claims: []SlotClaim{{Owner: id(2, 2), ConfigEpoch: 11, Ranges: []SlotRange{{100, 100}, {200, 300}}}}}},
		{"update/noranges", Message{Type: TypeUpdate, Header: sampleHeader(6), Claims: []SlotClaim{{Owner: id(2, 2), ConfigEpoch: 12}}}},
		{"failreport/set", Message{Type: TypeFailReport, Header: sampleHeader(7), Subject: id(0x01, 9), SubjectVersion: 1 << 50, Report: true}},
		{"failreport/clear", Message{Type: TypeFailReport, Header: sampleHeader(7), Subject: id(0x01, 9)}},
		{"sync", Message{Type: TypeSync, Header: sampleHeader(8), Buckets: sampleBuckets()}},
		{"syncdata", Message{Type: TypeSyncData, Header: sampleHeader(9), Mask: 1<<5 | 1<<9, Reply: true, Gossip: sampleRecords(5, 5), Claims: sampleClaims(4, 9)}},
		{"syncdata/last", Message{Type: TypeSyncData, Header: sampleHeader(9), Mask: allBuckets, Last: true}},
		{"authrequest", Message{Type: TypeAuthRequest, Header: sampleHeader(10), AuthFlags: AuthForceAck, Epoch: 42, MasterEpoch: 7, Claims: sampleClaims(2, 3)}},
		{"authrequest/plain", Message{Type: TypeAuthRequest, Header: sampleHeader(10)}},
		{"authack", Message{Type: TypeAuthAck, Header: sampleHeader(11), Epoch: 42}},
		{"mfstart", Message{Type: TypeMFStart, Header: sampleHeader(12)}},
	}
}

// norm copies m with empty slices as nil, so that decoded and built messages
// compare equal with reflect.DeepEqual.
func norm(m *Message) Message {
	c := *m
	c.Gossip = nil
	if len(m.Gossip) > 0 {
		c.Gossip = append([]NodeRecord(nil), m.Gossip...)
	}
	c.Claims = nil
	for _, cl := range m.Claims {
		if len(cl.Ranges) == 0 {
			cl.Ranges = nil
		} else {
			cl.Ranges = append([]SlotRange(nil), cl.Ranges...)
		}
		c.Claims = append(c.Claims, cl)
	}
	c.Buckets = nil
	if len(m.Buckets) > 0 {
		c.Buckets = append([]uint64(nil), m.Buckets...)
	}
	return c
}

func mustEncode(t testing.TB, e *Encoder, m *Message) []byte {
	t.Helper()
	b, err := e.AppendFrame(nil, m)
	if err != nil {
		t.Fatalf("encode %v: %v", m.Type, err)
	}
	return b
}

// frameOf builds an unauthenticated frame of type t around body with a
// correct CRC, whatever the body holds.
func frameOf(t Type, body []byte) []byte {
	f := make([]byte, FrameHeaderLen, FrameHeaderLen+len(body))
	copy(f, Magic)
	f[4] = ProtocolVersion
	f[5] = byte(t)
	binary.LittleEndian.PutUint32(f[8:], uint32(len(body)))
	f = append(f, body...)
	binary.LittleEndian.PutUint32(f[12:], checksum(f, f[FrameHeaderLen:]))
	return f
}

// fixCRC recomputes the CRC of a frame whose header is intact enough to
// locate the body; it leaves other frames alone.
func fixCRC(f []byte) {
	if len(f) < FrameHeaderLen {
		return
	}
	end := FrameHeaderLen + int(binary.LittleEndian.Uint32(f[8:]))
	if end < FrameHeaderLen || end > len(f) {
		return
	}
	binary.LittleEndian.PutUint32(f[12:], checksum(f, f[FrameHeaderLen:end]))
}

// checkReencode asserts that a successfully decoded m encodes back to frame.
func checkReencode(t *testing.T, e *Encoder, m *Message, frame []byte) {
	t.Helper()
	out, err := e.AppendFrame(nil, m)
	if err != nil {
		t.Fatalf("decoded message does not re-encode: %v\nframe %x", err, frame)
	}
	if !bytes.Equal(out, frame) {
		t.Fatalf("re-encode differs\n got %x\nwant %x", out, frame)
	}
}

func TestSamplesRoundTrip(t *testing.T) {
	enc, dec := NewEncoder(nil), NewDecoder(nil)
	var reused Message // decoded into by every case, to test slice reuse and reset
	for _, tc := range samples() {
		t.Run(tc.name, func(t *testing.T) {
			frame := mustEncode(t, enc, &tc.m)
			if len(frame) != FrameHeaderLen+tc.m.BodyLen() {
				t.Fatalf("frame %d bytes, BodyLen %d", len(frame), tc.m.BodyLen())
			}
			n, err := FrameLen(frame)
			if err != nil || n != len(frame) {
				t.Fatalf("FrameLen = %d, %v; want %d", n, err, len(frame))
			}
			var fresh Message
			for _, m := range []*Message{&fresh, &reused} {
				if err := dec.Decode(frame, m); err != nil {
					t.Fatalf("decode: %v", err)
				}
				if got, want := norm(m), norm(&tc.m); !reflect.DeepEqual(got, want) {
					t.Fatalf("round trip\n got %+v\nwant %+v", got, want)
				}
				checkReencode(t, enc, m, frame)
			}
			// Appending to a non-empty dst leaves the prefix alone.
			out, err := enc.AppendFrame([]byte("xy"), &tc.m)
			if err != nil || string(out[:2]) != "xy" || !bytes.Equal(out[2:], frame) {
				t.Fatalf("append to prefix: %v", err)
			}
		})
	}
}

func TestTypeString(t *testing.T) {
	for ty := Type(0); ty < 14; ty++ {
		s := ty.String()
		if ty.Valid() == (s == "UNKNOWN") {
			t.Errorf("Type(%d).String() = %q, Valid %v", ty, s, ty.Valid())
		}
	}
	if TypeSyncData.String() != "SYNCDATA" {
		t.Errorf("got %q", TypeSyncData.String())
	}
}

func TestClaimRangesDoNotAlias(t *testing.T) {
	enc, dec := NewEncoder(nil), NewDecoder(nil)
	m := Message{Type: TypeSyncData, Header: sampleHeader(1), Mask: allBuckets, Claims: sampleClaims(5, 1)}
	var got Message
	if err := dec.Decode(mustEncode(t, enc, &m), &got); err != nil {
		t.Fatal(err)
	}
	// Appending to one claim's ranges must not overwrite the next claim's.
	want := norm(&got)
	got.Claims[2].Ranges = append(got.Claims[2].Ranges, SlotRange{9000, 9000})
	if !reflect.DeepEqual(got.Claims[3].Ranges, want.Claims[3].Ranges) {
		t.Fatalf("append clobbered a neighbour: %v", got.Claims[3].Ranges)
	}
}
