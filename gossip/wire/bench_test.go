package wire

import (
	"testing"
)

// benchPing is a steady-state PING: the header and 10 gossip entries, no
// claims (claims ride only when they change).
func benchPing() *Message {
	return &Message{Type: TypePing, Header: sampleHeader(1), Gossip: sampleRecords(10, 3)}
}

// report adds domain metrics: messages per second and wire bytes per message.
func report(b *testing.B, frameLen int) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(frameLen), "bytes/op")
}

func benchEncodeDecode(b *testing.B, secret []byte, m *Message) {
	enc, dec := NewEncoder(secret), NewDecoder(secret)
	buf := make([]byte, 0, MaxFrame)
	var got Message
	frame, err := enc.AppendFrame(buf[:0], m)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		frame, _ = enc.AppendFrame(buf[:0], m)
		if err := dec.Decode(frame, &got); err != nil {
			b.Fatal(err)
		}
	}
	report(b, len(frame))
}

// BenchmarkPingEncodeDecode encodes and decodes a PING with 10 gossip
// entries into reused buffers; it must report 0 allocs/op.
func BenchmarkPingEncodeDecode(b *testing.B) { benchEncodeDecode(b, nil, benchPing()) }

// BenchmarkPingEncodeDecodeHMAC is BenchmarkPingEncodeDecode with a cluster
// secret: every frame is signed and verified.
func BenchmarkPingEncodeDecodeHMAC(b *testing.B) {
	benchEncodeDecode(b, []byte("cluster secret"), benchPing())
}

// BenchmarkSyncDataEncodeDecode is a SYNCDATA chunk with records and claims,
// exercising the claim range pool.
func BenchmarkSyncDataEncodeDecode(b *testing.B) {
	benchEncodeDecode(b, nil, &Message{
		Type: TypeSyncData, Header: sampleHeader(1), Mask: allBuckets,
		Gossip: sampleRecords(64, 3), Claims: sampleClaims(32, 3),
	})
}

// BenchmarkPingEncode encodes the PING only.
func BenchmarkPingEncode(b *testing.B) {
	enc, m := NewEncoder(nil), benchPing()
	buf := make([]byte, 0, MaxFrame)
	var frame []byte
	b.ReportAllocs()
	for b.Loop() {
		frame, _ = enc.AppendFrame(buf[:0], m)
	}
	b.SetBytes(int64(len(frame)))
	report(b, len(frame))
}

func benchDecode(b *testing.B, secret []byte) {
	dec := NewDecoder(secret)
	frame, err := NewEncoder(secret).AppendFrame(nil, benchPing())
	if err != nil {
		b.Fatal(err)
	}
	var m Message
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if err := dec.Decode(frame, &m); err != nil {
			b.Fatal(err)
		}
	}
	report(b, len(frame))
}

// BenchmarkPingDecode decodes the PING only.
func BenchmarkPingDecode(b *testing.B) { benchDecode(b, nil) }

// BenchmarkPingDecodeHMAC decodes and verifies a signed PING.
func BenchmarkPingDecodeHMAC(b *testing.B) { benchDecode(b, []byte("cluster secret")) }
