package rdb

import (
	"encoding/binary"
	"errors"
)

// The errors of ParsePayload, worded as Redis's RESTORE replies.
var (
	ErrPayloadVersionOrChecksum = errors.New("DUMP payload version or checksum are wrong")
	//lint:ignore ST1005 the text is Redis's reply, capital included
	ErrBadDataFormat = errors.New("Bad data format")
)

// DumpPayload appends the DUMP payload of a string value: type byte 0, the
// RDB string encoding, the 2-byte little-endian RDB version, and the CRC64
// (little-endian) of everything before it.
func DumpPayload(dst, val []byte) []byte {
	start := len(dst)
	dst = append(dst, typeString)
	dst = appendString(dst, val)
	dst = binary.LittleEndian.AppendUint16(dst, Version)
	return binary.LittleEndian.AppendUint64(dst, CRC64(0, dst[start:]))
}

// ParsePayload checks a DUMP payload and returns the value, in a new slice.
// A payload whose version is newer than ours or whose CRC is wrong (or that
// is too short to have either) is ErrPayloadVersionOrChecksum; anything else
// malformed, including a non-string type or bytes after the value, is
// ErrBadDataFormat.
func ParsePayload(p []byte) ([]byte, error) {
	if len(p) < 10 {
		return nil, ErrPayloadVersionOrChecksum
	}
	body, footer := p[:len(p)-10], p[len(p)-10:]
	if binary.LittleEndian.Uint16(footer) > Version ||
		binary.LittleEndian.Uint64(footer[2:]) != CRC64(0, p[:len(p)-8]) {
		return nil, ErrPayloadVersionOrChecksum
	}
	if len(body) == 0 || body[0] != typeString {
		return nil, ErrBadDataFormat
	}
	d := &reader{buf: body, r: 1, w: len(body), eof: true}
	var scratch []byte
	v, err := d.str(nil, &scratch, "value")
	if err != nil || d.r != d.w {
		return nil, ErrBadDataFormat
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}
