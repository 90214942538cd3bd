package command

import (
	"github.com/hearsay/hearsay/node/rdb"
	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/node/store"
)

// cmdDump is DUMP key: the value as Redis 7's payload (node/rdb).
func cmdDump(x *Ctx) {
	v, ok := x.D.st.Get(x.Slot, x.Args[1], x.Now)
	if !ok {
		x.W.Null()
		return
	}
	x.Conn.scratch = rdb.DumpPayload(x.Conn.scratch[:0], v)
	x.W.Bulk(x.Conn.scratch)
}

// cmdRestore is RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s]
// [FREQ f], with Redis 7.0's checks in Redis's order: options, an
// existing key, the TTL, then the payload.
func cmdRestore(x *Ctx) {
	args := x.Args
	replace, absTTL := false, false
	idleSet, freqSet := false, false
	for i := 4; i < len(args); i++ {
		more := i+1 < len(args)
		switch {
		case eq(args[i], "replace"):
			replace = true
		case eq(args[i], "absttl"):
			absTTL = true
		case eq(args[i], "idletime") && more && !freqSet:
			v, ok := resp.ParseInt(args[i+1])
			if !ok {
				x.W.Error(errNotInt)
				return
			}
			if v < 0 {
				x.W.Error("ERR Invalid IDLETIME value, must be >= 0")
				return
			}
			idleSet = true
			i++
		case eq(args[i], "freq") && more && !idleSet:
			v, ok := resp.ParseInt(args[i+1])
			if !ok {
				x.W.Error(errNotInt)
				return
			}
			if v < 0 || v > 255 {
				x.W.Error("ERR Invalid FREQ value, must be >= 0 and <= 255")
				return
			}
			freqSet = true
			i++
		default:
			x.W.Error(errSyntax)
			return
		}
	}
	key := args[1]
	if !replace && x.D.st.Exists(x.Slot, key, x.Now) {
		x.W.Error("BUSYKEY Target key name already exists.")
		return
	}
	ttl, ok := resp.ParseInt(args[2])
	if !ok {
		x.W.Error(errNotInt)
		return
	}
	if ttl < 0 {
		x.W.Error("ERR Invalid TTL value, must be >= 0")
		return
	}
	val, err := rdb.ParsePayload(args[3])
	if err != nil {
		x.W.Error("ERR " + err.Error())
		return
	}
	exp := int64(0)
	if ttl > 0 {
		exp = ttl
		if !absTTL {
			exp += x.Now
		}
	}
	if exp != 0 && exp <= x.Now && !x.Conn.Master {
		// Already expired: the key is not created (and a replaced one is
		// gone), as in Redis.
		if replace {
			x.D.st.Del(x.Slot, key, x.Now)
		}
		x.W.OK()
		return
	}
	x.D.st.Set(x.Slot, key, val, store.SetOptions{ExpireAt: exp}, x.Now)
	x.W.OK()
}

// restoreAsking marks RESTORE-ASKING: it is served on an importing slot as
// if ASKING had been sent first (MIGRATE's target side).
func restoreAsking(c *Command) *Command {
	c.Asking = true
	return c
}
