package wire

import (
	"bytes"
	"encoding/binary"
	"testing"
)

var fuzzSecret = []byte("fuzz secret")

// fuzzType fuzzes the body decoder of one message type. The fuzzer supplies
// the body; the frame around it always has a correct CRC, so mutations reach
// the body decoder instead of dying at the checksum. Anything that decodes
// must re-encode to the identical frame.
func fuzzType(f *testing.F, ty Type) {
	enc := NewEncoder(nil)
	for _, s := range samples() {
		if s.m.Type == ty {
			f.Add(mustEncode(f, enc, &s.m)[FrameHeaderLen:])
		}
	}
	dec := NewDecoder(nil)
	var m Message
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > MaxBody {
			return
		}
		frame := frameOf(ty, body)
		if err := dec.Decode(frame, &m); err != nil {
			return
		}
		if m.Type != ty {
			t.Fatalf("decoded type %v, want %v", m.Type, ty)
		}
		checkReencode(t, enc, &m, frame)
	})
}

// FuzzDecodePing fuzzes the PING body decoder.
func FuzzDecodePing(f *testing.F) { fuzzType(f, TypePing) }

// FuzzDecodePong fuzzes the PONG body decoder.
func FuzzDecodePong(f *testing.F) { fuzzType(f, TypePong) }

// FuzzDecodeMeet fuzzes the MEET body decoder.
func FuzzDecodeMeet(f *testing.F) { fuzzType(f, TypeMeet) }

// FuzzDecodeFail fuzzes the FAIL body decoder.
func FuzzDecodeFail(f *testing.F) { fuzzType(f, TypeFail) }

// FuzzDecodeUpdate fuzzes the UPDATE body decoder.
func FuzzDecodeUpdate(f *testing.F) { fuzzType(f, TypeUpdate) }

// FuzzDecodeFailReport fuzzes the FAILREPORT body decoder.
func FuzzDecodeFailReport(f *testing.F) { fuzzType(f, TypeFailReport) }

// FuzzDecodeSync fuzzes the SYNC body decoder.
func FuzzDecodeSync(f *testing.F) { fuzzType(f, TypeSync) }

// FuzzDecodeSyncData fuzzes the SYNCDATA body decoder.
func FuzzDecodeSyncData(f *testing.F) { fuzzType(f, TypeSyncData) }

// FuzzDecodeAuthRequest fuzzes the AUTHREQUEST body decoder.
func FuzzDecodeAuthRequest(f *testing.F) { fuzzType(f, TypeAuthRequest) }

// FuzzDecodeAuthAck fuzzes the AUTHACK body decoder.
func FuzzDecodeAuthAck(f *testing.F) { fuzzType(f, TypeAuthAck) }

// FuzzDecodeMFStart fuzzes the MFSTART body decoder.
func FuzzDecodeMFStart(f *testing.F) { fuzzType(f, TypeMFStart) }

// FuzzDecode fuzzes whole frames: header, checksum, HMAC and body. With
// fixCRC the CRC is recomputed first so that header and body mutations get
// past the checksum. Every decoder must not panic; a decoder without a
// secret that accepts a frame must re-encode it to the same bytes (the
// unchecked HMAC trailer aside), and a decoder with the secret that accepts
// it must re-encode it byte for byte, trailer included.
func FuzzDecode(f *testing.F) {
	plainEnc, macEnc := NewEncoder(nil), NewEncoder(fuzzSecret)
	for _, s := range samples() {
		f.Add(mustEncode(f, plainEnc, &s.m), false)
		f.Add(mustEncode(f, macEnc, &s.m), false)
	}
	f.Add([]byte(Magic), true)
	plainDec, macDec := NewDecoder(nil), NewDecoder(fuzzSecret)
	var m Message
	f.Fuzz(func(t *testing.T, frame []byte, fix bool) {
		if fix {
			frame = bytes.Clone(frame)
			fixCRC(frame)
		}
		n, lenErr := FrameLen(frame)
		if err := plainDec.Decode(frame, &m); err == nil {
			if lenErr != nil || n != len(frame) {
				t.Fatalf("decoded a frame FrameLen refuses: %d, %v", n, lenErr)
			}
			if binary.LittleEndian.Uint16(frame[6:])&FrameFlagMAC == 0 {
				checkReencode(t, plainEnc, &m, frame)
			} else {
				out, err := macEnc.AppendFrame(nil, &m)
				if err != nil || len(out) != len(frame) || !bytes.Equal(out[:len(out)-MACLen], frame[:len(frame)-MACLen]) {
					t.Fatalf("signed frame re-encodes differently: %v\n got %x\nwant %x", err, out, frame)
				}
			}
		}
		if err := macDec.Decode(frame, &m); err == nil {
			checkReencode(t, macEnc, &m, frame)
		}
	})
}
