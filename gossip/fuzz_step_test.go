package gossip

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/ring"
)

var stepSecret = []byte("fuzz cluster secret")

// Authentication modes of a fuzzed frame.
const (
	authGood     = iota // signed with the cluster secret
	authNone            // no trailer
	authWrongKey        // signed with another key
	authFlipped         // signed, then one trailer byte flipped
	authModes
)

// rawFrame builds a frame of type ty around body with a correct CRC, signed
// with key when key is not nil. The fuzzer mutates bodies, so frames must
// get past the checksum to reach the authentication check and the decoder.
func rawFrame(ty byte, body, key []byte) []byte {
	var flags uint16
	if key != nil {
		flags = wire.FrameFlagMAC
	}
	f := append([]byte(wire.Magic), wire.ProtocolVersion, ty)
	f = binary.LittleEndian.AppendUint16(f, flags)
	f = binary.LittleEndian.AppendUint32(f, uint32(len(body)))
	tab := crc32.MakeTable(crc32.Castagnoli)
	crc := crc32.Update(crc32.Update(0, tab, f), tab, body)
	f = binary.LittleEndian.AppendUint32(f, crc)
	f = append(f, body...)
	if key != nil {
		mac := hmac.New(sha256.New, key)
		mac.Write(f)
		f = mac.Sum(f)
	}
	return f
}

// coreShape is what an unauthenticated frame must never change.
type coreShape struct {
	digest          uint64
	current, config uint64
	lastVote        uint64
	known           int
	owners          []wire.NodeID
}

func shapeOf(c *Core) coreShape {
	s := coreShape{digest: c.Digest(), known: c.KnownNodes(), lastVote: c.LastVoteEpoch()}
	s.current, s.config = c.Epochs()
	for slot := 0; slot < ring.Slots; slot += 97 {
		o, _ := c.SlotOwner(uint16(slot))
		s.owners = append(s.owners, o)
	}
	return s
}

func (s coreShape) equal(o coreShape) bool {
	return s.digest == o.digest && s.current == o.current && s.config == o.config &&
		s.lastVote == o.lastVote && s.known == o.known && slices.Equal(s.owners, o.owners)
}

// checkReady fails unless every message in r encodes, with the secret, to
// a frame the receiving side decodes.
func checkReady(t *testing.T, enc *wire.Encoder, dec *wire.Decoder, r Ready) {
	t.Helper()
	var m wire.Message
	for _, e := range r.Messages {
		frame, err := enc.AppendFrame(nil, e.Msg)
		if err != nil {
			t.Fatalf("the core produced an unencodable %v: %v", e.Msg.Type, err)
		}
		if err := dec.Decode(frame, &m); err != nil {
			t.Fatalf("the core's %v does not decode: %v", e.Msg.Type, err)
		}
	}
}

// FuzzStep drives the real bus decoder, with a cluster secret, and
// Core.Step together, as the node's bus reader does: a frame that fails to
// decode is dropped, one that decodes is stepped into the core. The core is
// node 0 of a formed cluster of 3 masters and 3 replicas, restored from its saved state for
// each input. Inputs choose the type, the body, whether the sender is a
// known node (its ID is written over the body's Sender) and how the frame
// is signed. It checks that nothing panics, that every Ready encodes, and
// that no frame that fails authentication decodes or changes the node
// table, the slot owners or the epochs.
func FuzzStep(f *testing.F) {
	// Three masters with a replica each (node 3+i replicates master i),
	// so that elections, votes and replication offsets have something to
	// act on.
	tn := shards(f, 3, 1)
	self := tn.cores[0]
	cfg, st := self.Config(), self.State()
	start := tn.now

	// Seeds: valid frames of every type, from known senders.
	enc := wire.NewEncoder(stepSecret)
	hdr := func(from int) wire.Header {
		var h wire.Header
		tn.cores[from].fillHeader(&h)
		return h
	}
	var records []wire.NodeRecord
	for i := range tn.cores {
		records = append(records, tn.cores[0].lookup(tn.cores[i].ID()).wireRecord())
	}
	var claims []wire.SlotClaim
	for _, cl := range tn.cores[0].claims {
		claims = append(claims, cl.wire())
	}
	slices.SortFunc(claims, func(a, b wire.SlotClaim) int { return bytes.Compare(a.Owner[:], b.Owner[:]) })
	buckets := make([]uint64, wire.SyncBuckets)
	for i := range buckets {
		buckets[i] = tn.cores[1].buckets[i]
	}
	masterOf4 := tn.cores[1].ID()
	claim3 := []wire.SlotClaim{tn.cores[0].claims[masterOf4].wire()}
	seeds := []struct {
		from int
		m    wire.Message
	}{
		{1, wire.Message{Type: wire.TypePing, Gossip: records[1:3], Claims: claims[:1]}},
		{2, wire.Message{Type: wire.TypePong, Gossip: records[3:], Claims: claims[1:2]}},
		{3, wire.Message{Type: wire.TypeMeet, Gossip: records[:2]}},
		{2, wire.Message{Type: wire.TypeFail, Subject: masterOf4, SubjectVersion: records[1].Version, FailAge: 5000}},
		{2, wire.Message{Type: wire.TypeFail, Subject: tn.cores[0].ID(), SubjectVersion: records[0].Version, FailAge: 1000}},
		{1, wire.Message{Type: wire.TypeUpdate, Claims: claims[2:3]}},
		{1, wire.Message{Type: wire.TypeFailReport, Subject: masterOf4, SubjectVersion: records[1].Version, Report: true}},
		{1, wire.Message{Type: wire.TypeSync, Buckets: buckets}},
		{2, wire.Message{Type: wire.TypeSyncData, Mask: ^uint64(0), Reply: true, Last: true, Gossip: records[1:], Claims: claims}},
		{4, wire.Message{Type: wire.TypeAuthRequest, Epoch: 100, MasterEpoch: claim3[0].ConfigEpoch, Claims: claim3}},
		{4, wire.Message{Type: wire.TypeAuthRequest, AuthFlags: wire.AuthForceAck, Epoch: 100, MasterEpoch: claim3[0].ConfigEpoch, Claims: claim3}},
		{1, wire.Message{Type: wire.TypeAuthAck, Epoch: 7}},
		{3, wire.Message{Type: wire.TypeMFStart}}, // from its own replica
	}
	for _, s := range seeds {
		m := s.m
		m.Header = hdr(s.from)
		frame, err := enc.AppendFrame(nil, &m)
		if err != nil {
			f.Fatalf("seed %v: %v", m.Type, err)
		}
		body := frame[wire.FrameHeaderLen : len(frame)-wire.MACLen]
		if !bytes.Equal(rawFrame(byte(m.Type), body, stepSecret), frame) {
			f.Fatalf("rawFrame differs from the encoder's %v frame", m.Type)
		}
		for auth := range uint8(authModes) {
			f.Add(uint8(m.Type), uint8(s.from), auth, body)
		}
		// The same body from an unknown sender (its own ID kept).
		f.Add(uint8(m.Type), uint8(255), uint8(authGood), body)
	}

	dec := wire.NewDecoder(stepSecret)
	peerDec := wire.NewDecoder(stepSecret)
	var m wire.Message
	f.Fuzz(func(t *testing.T, ty, sender, auth uint8, body []byte) {
		if len(body) > wire.MaxBody {
			return
		}
		c, err := New(cfg, st)
		if err != nil {
			t.Fatal(err)
		}
		now := start + time.Second
		checkReady(t, enc, peerDec, c.Tick(now))
		body = slices.Clone(body)
		if int(sender) < len(tn.cores) && len(body) >= 20 {
			id := tn.cores[sender].ID()
			copy(body, id[:])
		}
		var frame []byte
		switch auth % authModes {
		case authGood:
			frame = rawFrame(ty, body, stepSecret)
		case authNone:
			frame = rawFrame(ty, body, nil)
		case authWrongKey:
			frame = rawFrame(ty, body, []byte("not the cluster secret"))
		case authFlipped:
			frame = rawFrame(ty, body, stepSecret)
			frame[len(frame)-1-int(auth/authModes)%wire.MACLen] ^= 1 << (auth % 8)
		}
		before := shapeOf(c)
		err = dec.Decode(frame, &m)
		if auth%authModes != authGood {
			if err == nil {
				t.Fatalf("a frame with auth mode %d decoded", auth%authModes)
			}
			// Structural checks (magic, version, type, length, CRC)
			// come first; a frame that passes them fails with ErrAuth.
			if _, ferr := wire.FrameLen(frame); ferr == nil && !errors.Is(err, wire.ErrAuth) {
				t.Fatalf("auth mode %d: %v, want ErrAuth", auth%authModes, err)
			}
			// The runtime drops it and closes the link; the core
			// carries on.
			checkReady(t, enc, peerDec, c.Tick(now+10*time.Millisecond))
			if after := shapeOf(c); !after.equal(before) {
				t.Fatalf("an unauthenticated frame changed the core: %+v -> %+v", before, after)
			}
			return
		}
		if err != nil {
			return
		}
		checkReady(t, enc, peerDec, c.Step(now, &m))
		// Whatever it took in must also be safe to act on later.
		checkReady(t, enc, peerDec, c.Tick(now+100*time.Millisecond))
		checkReady(t, enc, peerDec, c.Tick(now+3*cfg.NodeTimeout))
		if _, err := New(cfg, c.State()); err != nil {
			t.Fatalf("the state after the frame does not restore: %v", err)
		}
	})
}
