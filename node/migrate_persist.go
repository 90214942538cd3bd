package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/hearsay/hearsay/migrate"
)

// MigrationsFile holds the hard state of the running atomic slot
// migrations (migrate.HardState), in the node's directory next to the
// node config file. It is rewritten whole, atomically and with fsync, on
// every Persist intent, and absent when no migration runs.
const MigrationsFile = "slot-migrations.bin"

// migrationsMagic starts the file; the version is its last byte.
var migrationsMagic = []byte("HSMIG\x01")

// encodeMigrations lays out the file: the magic, a 2-byte record count,
// each record as a 2-byte length and HardState.AppendBinary's bytes, and
// a CRC-32 (IEEE) of everything before it, all little-endian. The CRC
// catches a torn or stray write that would otherwise decode as records.
func encodeMigrations(recs []migrate.HardState) ([]byte, error) {
	if len(recs) > 0xffff {
		return nil, errors.New("too many migration records")
	}
	b := append([]byte(nil), migrationsMagic...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(recs)))
	for i := range recs {
		at := len(b)
		b = append(b, 0, 0)
		var err error
		if b, err = recs[i].AppendBinary(b); err != nil {
			return nil, fmt.Errorf("migration %q: %w", recs[i].Name, err)
		}
		size := len(b) - at - 2
		if size > 0xffff {
			return nil, fmt.Errorf("migration %q: record too large", recs[i].Name)
		}
		binary.LittleEndian.PutUint16(b[at:], uint16(size))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b)), nil
}

// decodeMigrations reads what encodeMigrations wrote and refuses
// anything else whole: a restart must not act on records it half
// understood.
func decodeMigrations(b []byte) ([]migrate.HardState, error) {
	if len(b) < len(migrationsMagic)+2+4 || string(b[:len(migrationsMagic)]) != string(migrationsMagic) {
		return nil, errors.New("not a migration record file (bad magic or version)")
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("checksum mismatch")
	}
	p := body[len(migrationsMagic):]
	count := int(binary.LittleEndian.Uint16(p))
	p = p[2:]
	recs := make([]migrate.HardState, 0, min(count, 64))
	seen := map[string]bool{}
	for i := range count {
		if len(p) < 2 {
			return nil, fmt.Errorf("record %d: cut short", i)
		}
		size := int(binary.LittleEndian.Uint16(p))
		if len(p) < 2+size {
			return nil, fmt.Errorf("record %d: cut short", i)
		}
		var h migrate.HardState
		if err := h.UnmarshalBinary(p[2 : 2+size]); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		if seen[h.Name] {
			return nil, fmt.Errorf("record %d: migration %q twice", i, h.Name)
		}
		seen[h.Name] = true
		recs = append(recs, h)
		p = p[2+size:]
	}
	if len(p) != 0 {
		return nil, errors.New("trailing bytes after the records")
	}
	return recs, nil
}

// loadMigrations reads the record file of dir; a missing file is no
// migration.
func loadMigrations(dir string) ([]migrate.HardState, error) {
	path := filepath.Join(dir, MigrationsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	recs, err := decodeMigrations(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return recs, nil
}
