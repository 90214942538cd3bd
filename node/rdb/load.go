package rdb

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Entry is one loaded key.
type Entry struct {
	Key, Value []byte
	ExpireAtMs int64 // unix time in milliseconds; 0 for none
	DB         int   // the database the key belongs to (SELECTDB)
}

// DBSize is one RESIZEDB record: the size hints of a database.
type DBSize struct {
	DB            int
	Keys, Expires uint64
}

// Info is what a load learned besides keys: the version, AUX fields (in
// order), db sizes, key count.
type Info struct {
	Version  int
	Aux      [][2]string
	Keys     int64
	DBs      []DBSize
	Checksum uint64 // the trailer's CRC64; 0 when the file has none or it is disabled
	Bytes    int64  // length of the stream
}

// Load reads a whole RDB stream, calling fn for every key in order.
//
// Entry.Key and Entry.Value are reused: they are valid only until fn
// returns, so fn must copy what it keeps.
//
// Any non-string type, an unknown opcode, a bad CRC, a truncated stream or
// trailing bytes after the checksum is an *Error naming the byte offset
// ("rdb: offset 1234: ..."), and Load reports it even if fn accepted keys:
// callers load into a staging area and commit only on success. An error
// from fn stops the load and is returned wrapped in an *Error. r must end
// where the RDB ends (wrap a connection in io.LimitReader). A trailer CRC of
// zero means the writer disabled checksums, as in Redis, and is accepted.
func Load(r io.Reader, fn func(Entry) error) (Info, error) {
	d := &reader{src: r, buf: make([]byte, readBuf)}
	info, err := load(d, fn)
	info.Bytes = d.offset()
	return info, err
}

func load(d *reader, fn func(Entry) error) (Info, error) {
	var info Info
	magic, err := d.next(9, "header")
	if err != nil {
		return info, err
	}
	if string(magic[:5]) != "REDIS" {
		return info, &Error{Offset: 0, Msg: fmt.Sprintf("not an RDB file (starts %q)", magic)}
	}
	ver := 0
	for _, c := range magic[5:] {
		if c < '0' || c > '9' {
			ver = -1
			break
		}
		ver = ver*10 + int(c-'0')
	}
	if ver < 0 {
		return info, &Error{Offset: 5, Msg: fmt.Sprintf("bad RDB version %q", magic[5:])}
	}
	if ver < minVersion || ver > maxVersion {
		return info, &Error{Offset: 5, Msg: fmt.Sprintf("RDB version %d is not supported (%d to %d are)", ver, minVersion, maxVersion)}
	}
	info.Version = ver

	var (
		e       Entry
		scratch []byte
		name    []byte
	)
	for {
		at := d.offset()
		op, err := d.byte("opcode")
		if err != nil {
			return info, err
		}
		switch op {
		case opEOF:
			return info, finish(d, &info)
		case opSelectDB:
			db, err := d.plainLength("SELECTDB")
			if err != nil {
				return info, err
			}
			if db > 1<<20 {
				return info, &Error{Offset: at, Msg: fmt.Sprintf("SELECTDB %d is out of range", db)}
			}
			e.DB = int(db)
		case opResizeDB:
			keys, err := d.plainLength("RESIZEDB")
			if err != nil {
				return info, err
			}
			exp, err := d.plainLength("RESIZEDB")
			if err != nil {
				return info, err
			}
			info.DBs = append(info.DBs, DBSize{DB: e.DB, Keys: keys, Expires: exp})
		case opAux:
			if name, err = d.str(name, &scratch, "AUX name"); err != nil {
				return info, err
			}
			val, err := d.str(e.Value, &scratch, "AUX value")
			e.Value = val
			if err != nil {
				return info, err
			}
			info.Aux = append(info.Aux, [2]string{string(name), string(val)})
		case opExpireMs:
			p, err := d.next(8, "EXPIRETIME_MS")
			if err != nil {
				return info, err
			}
			e.ExpireAtMs = expiry(int64(binary.LittleEndian.Uint64(p)))
		case opExpireSec:
			p, err := d.next(4, "EXPIRETIME")
			if err != nil {
				return info, err
			}
			e.ExpireAtMs = expiry(int64(int32(binary.LittleEndian.Uint32(p))) * 1000)
		case opIdle:
			// LRU idle time: hearsay keeps no access clock, so it is dropped.
			if _, err := d.plainLength("IDLE"); err != nil {
				return info, err
			}
		case opFreq:
			if _, err := d.byte("FREQ"); err != nil {
				return info, err
			}
		case opModuleAux:
			return info, &Error{Offset: at, Msg: "module data (MODULE_AUX) is not supported"}
		case opFunction2, opFunctionPreGA:
			return info, &Error{Offset: at, Msg: "function libraries (FUNCTION) are not supported"}
		case typeString:
			if e.Key, err = d.str(e.Key, &scratch, "key"); err != nil {
				return info, err
			}
			if e.Value, err = d.str(e.Value, &scratch, "value"); err != nil {
				return info, err
			}
			if err := fn(e); err != nil {
				return info, &Error{Offset: at, Msg: fmt.Sprintf("key %q", e.Key), Err: err}
			}
			info.Keys++
			e.ExpireAtMs = 0
		default:
			if op <= typeMaxRDB {
				return info, &Error{Offset: at, Msg: fmt.Sprintf("value type %d is not supported (hearsay stores strings only)", op)}
			}
			return info, &Error{Offset: at, Msg: fmt.Sprintf("unknown opcode 0x%02x", op)}
		}
	}
}

// expiry maps an expiry from the file to Entry's form: -1 is Redis's "no
// expiry" and 0 would read as none, so it becomes 1 (long past, as it was).
func expiry(ms int64) int64 {
	switch ms {
	case -1:
		return 0
	case 0:
		return 1
	}
	return ms
}

// finish checks the CRC64 trailer (RDB 5 and later) and that nothing
// follows it.
func finish(d *reader, info *Info) error {
	if info.Version >= 5 {
		sum := d.sum()
		at := d.offset()
		p, err := d.next(8, "CRC64 trailer")
		if err != nil {
			return err
		}
		want := binary.LittleEndian.Uint64(p)
		if want != 0 && want != sum {
			return &Error{Offset: at, Msg: fmt.Sprintf("CRC64 mismatch: trailer %016x, data %016x", want, sum)}
		}
		info.Checksum = want
	}
	at := d.offset()
	if d.r < d.w {
		return &Error{Offset: at, Msg: "trailing bytes after the end of the RDB"}
	}
	switch err := d.fill(1, at, "end"); {
	case err == nil:
		return &Error{Offset: at, Msg: "trailing bytes after the end of the RDB"}
	case d.err != nil:
		return err
	}
	return nil
}
