package command

import (
	"math"
	"strconv"

	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/node/store"
)

const (
	errSyntax    = "ERR syntax error"
	errNotInt    = "ERR value is not an integer or out of range"
	errOverflow  = "ERR increment or decrement would overflow"
	errWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"
)

// intBool replies :1 or :0 (integers in both protocols, as Redis does).
func (x *Ctx) intBool(v bool) {
	if v {
		x.W.Int(1)
	} else {
		x.W.Int(0)
	}
}

func (x *Ctx) hit(ok bool) {
	s := x.D.shard(x.Conn)
	if ok {
		s.hits.Add(1)
	} else {
		s.misses.Add(1)
	}
}

func cmdGet(x *Ctx) {
	v, ok := x.D.st.Get(x.Slot, x.Args[1], x.Now)
	x.hit(ok)
	if !ok {
		x.W.Null()
		return
	}
	x.W.Bulk(v)
}

// expireAt converts a SET/SETEX style expire argument to absolute unix ms,
// the way Redis validates it. unit is 1000 for seconds, 1 for ms.
func expireAt(x *Ctx, arg []byte, unit int64, relative bool) (int64, bool) {
	v, ok := resp.ParseInt(arg)
	if !ok {
		x.W.Error(errNotInt)
		return 0, false
	}
	if v <= 0 || v > math.MaxInt64/unit {
		x.W.Error(invalidExpire(x.Cmd.Name))
		return 0, false
	}
	v *= unit
	if relative {
		if v > math.MaxInt64-x.Now {
			x.W.Error(invalidExpire(x.Cmd.Name))
			return 0, false
		}
		v += x.Now
	}
	return v, true
}

func invalidExpire(name string) string { return "ERR invalid expire time in '" + name + "' command" }

// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms|KEEPTTL]
func cmdSet(x *Ctx) {
	args := x.Args
	var o store.SetOptions
	var get bool
	var expKind string
	var expArg []byte
	for j := 3; j < len(args); j++ {
		a := args[j]
		next := j+1 < len(args)
		switch {
		case eq(a, "nx") && !o.XX:
			o.NX = true
		case eq(a, "xx") && !o.NX:
			o.XX = true
		case eq(a, "get"):
			get = true
		case eq(a, "keepttl") && expKind == "":
			o.KeepTTL = true
		case (eq(a, "ex") || eq(a, "px") || eq(a, "exat") || eq(a, "pxat")) && !o.KeepTTL && next:
			kind := "ex"
			switch {
			case eq(a, "px"):
				kind = "px"
			case eq(a, "exat"):
				kind = "exat"
			case eq(a, "pxat"):
				kind = "pxat"
			}
			if expKind != "" && expKind != kind {
				x.W.Error(errSyntax)
				return
			}
			expKind, expArg = kind, args[j+1]
			j++
		default:
			x.W.Error(errSyntax)
			return
		}
	}
	if expKind != "" {
		unit := int64(1)
		if expKind == "ex" || expKind == "exat" {
			unit = 1000
		}
		at, ok := expireAt(x, expArg, unit, expKind == "ex" || expKind == "px")
		if !ok {
			return
		}
		o.ExpireAt = at
	}
	old, existed, written := x.D.st.Set(x.Slot, args[1], args[2], o, x.Now)
	switch {
	case get && existed:
		x.W.Bulk(old)
	case get || !written:
		x.W.Null()
	default:
		x.W.OK()
	}
}

func cmdSetNX(x *Ctx) {
	_, _, written := x.D.st.Set(x.Slot, x.Args[1], x.Args[2], store.SetOptions{NX: true}, x.Now)
	x.intBool(written)
}

// setex handles SETEX and PSETEX: key ttl value.
func setex(unit int64) func(x *Ctx) {
	return func(x *Ctx) {
		at, ok := expireAt(x, x.Args[2], unit, true)
		if !ok {
			return
		}
		x.D.st.Set(x.Slot, x.Args[1], x.Args[3], store.SetOptions{ExpireAt: at}, x.Now)
		x.W.OK()
	}
}

func cmdGetSet(x *Ctx) {
	old, existed, _ := x.D.st.Set(x.Slot, x.Args[1], x.Args[2], store.SetOptions{}, x.Now)
	if !existed {
		x.W.Null()
		return
	}
	x.W.Bulk(old)
}

func cmdGetDel(x *Ctx) {
	v, ok := x.D.st.GetDel(x.Slot, x.Args[1], x.Now)
	x.hit(ok)
	if !ok {
		x.W.Null()
		return
	}
	x.W.Bulk(v)
}

func cmdMGet(x *Ctx) {
	x.W.Array(len(x.Keys))
	for _, k := range x.Keys {
		v, ok := x.D.st.Get(x.Slot, k, x.Now)
		x.hit(ok)
		if ok {
			x.W.Bulk(v)
		} else {
			x.W.Null()
		}
	}
}

func cmdMSet(x *Ctx) {
	for i := 1; i+1 < len(x.Args); i += 2 {
		x.D.st.Set(x.Slot, x.Args[i], x.Args[i+1], store.SetOptions{}, x.Now)
	}
	x.W.OK()
}

func cmdDel(x *Ctx) {
	n := 0
	for _, k := range x.Keys {
		if x.D.st.Del(x.Slot, k, x.Now) {
			n++
		}
	}
	x.W.Int(int64(n))
}

func cmdExists(x *Ctx) {
	n := 0
	for _, k := range x.Keys {
		if x.D.st.Exists(x.Slot, k, x.Now) {
			n++
		}
	}
	x.W.Int(int64(n))
}

func incr(x *Ctx, delta int64) {
	v, err := x.D.st.IncrBy(x.Slot, x.Args[1], delta, x.Now)
	if err != nil {
		x.W.Error(err.Error())
		return
	}
	x.W.Int(v)
}

func cmdIncr(x *Ctx) { incr(x, 1) }
func cmdDecr(x *Ctx) { incr(x, -1) }

func cmdIncrBy(x *Ctx) {
	d, ok := resp.ParseInt(x.Args[2])
	if !ok {
		x.W.Error(errNotInt)
		return
	}
	incr(x, d)
}

func cmdDecrBy(x *Ctx) {
	d, ok := resp.ParseInt(x.Args[2])
	if !ok {
		x.W.Error(errNotInt)
		return
	}
	if d == math.MinInt64 {
		x.W.Error("ERR decrement would overflow")
		return
	}
	incr(x, -d)
}

func cmdAppend(x *Ctx) {
	x.W.Int(int64(x.D.st.Append(x.Slot, x.Args[1], x.Args[2], x.Now)))
}

func cmdStrlen(x *Ctx) {
	v, _ := x.D.st.Get(x.Slot, x.Args[1], x.Now)
	x.W.Int(int64(len(v)))
}

// expire handles EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
func expire(unit int64, relative bool) func(x *Ctx) {
	return func(x *Ctx) {
		cond := store.ExpireAlways
		var nx, xx, gt, lt bool
		for _, a := range x.Args[3:] {
			switch {
			case eq(a, "nx"):
				nx = true
			case eq(a, "xx"):
				xx = true
			case eq(a, "gt"):
				gt = true
			case eq(a, "lt"):
				lt = true
			default:
				x.W.Error("ERR Unsupported option " + string(a))
				return
			}
		}
		switch {
		case nx && (xx || gt || lt):
			x.W.Error("ERR NX and XX, GT or LT options at the same time are not compatible")
			return
		case gt && lt:
			x.W.Error("ERR GT and LT options at the same time are not compatible")
			return
		case nx:
			cond = store.ExpireNX
		case gt:
			cond = store.ExpireGT
		case lt:
			cond = store.ExpireLT
		case xx:
			cond = store.ExpireXX
		}
		when, ok := resp.ParseInt(x.Args[2])
		if !ok {
			x.W.Error(errNotInt)
			return
		}
		if unit > 1 {
			if when > math.MaxInt64/unit || when < math.MinInt64/unit {
				x.W.Error(invalidExpire(x.Cmd.Name))
				return
			}
			when *= unit
		}
		if relative {
			if when > math.MaxInt64-x.Now {
				x.W.Error(invalidExpire(x.Cmd.Name))
				return
			}
			when += x.Now
		}
		// XX together with LT also needs an existing expiry (GT implies it).
		if xx && lt && x.D.st.TTL(x.Slot, x.Args[1], x.Now) == -1 {
			x.W.Int(0)
			return
		}
		x.intBool(x.D.st.Expire(x.Slot, x.Args[1], when, cond, x.Now))
	}
}

func ttl(ms bool) func(x *Ctx) {
	return func(x *Ctx) {
		t := x.D.st.TTL(x.Slot, x.Args[1], x.Now)
		if t >= 0 && !ms {
			t = (t + 500) / 1000
		}
		x.W.Int(t)
	}
}

func expireTime(ms bool) func(x *Ctx) {
	return func(x *Ctx) {
		e, ok := x.D.st.Lookup(x.Slot, x.Args[1], x.Now)
		switch {
		case !ok:
			x.W.Int(-2)
		case e.ExpireAt == 0:
			x.W.Int(-1)
		case ms:
			x.W.Int(e.ExpireAt)
		default:
			x.W.Int((e.ExpireAt + 500) / 1000)
		}
	}
}

func cmdPersist(x *Ctx) { x.intBool(x.D.st.Persist(x.Slot, x.Args[1], x.Now)) }

func cmdType(x *Ctx) {
	if x.D.st.Exists(x.Slot, x.Args[1], x.Now) {
		x.W.Simple("string")
	} else {
		x.W.Simple("none")
	}
}

func cmdKeys(x *Ctx) {
	pat := x.Args[1]
	var match func([]byte) bool
	if len(pat) != 1 || pat[0] != '*' {
		match = func(k []byte) bool { return store.Match(pat, k, false) }
	}
	keys := x.D.st.Keys(match, x.Now)
	x.W.Array(len(keys))
	for _, k := range keys {
		x.W.Bulk(k)
	}
}

// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
func cmdScan(x *Ctx) {
	cursor, err := strconv.ParseUint(string(x.Args[1]), 10, 64)
	if err != nil {
		x.W.Error("ERR invalid cursor")
		return
	}
	count := int64(10)
	var pat []byte
	typeOK := true
	args := x.Args
	for j := 2; j < len(args); j += 2 {
		if j+1 >= len(args) {
			x.W.Error(errSyntax)
			return
		}
		switch v := args[j+1]; {
		case eq(args[j], "count"):
			n, ok := resp.ParseInt(v)
			if !ok {
				x.W.Error(errNotInt)
				return
			}
			if n < 1 {
				x.W.Error(errSyntax)
				return
			}
			count = n
		case eq(args[j], "match"):
			pat = v
		case eq(args[j], "type"):
			typeOK = eq(v, "string")
		default:
			x.W.Error(errSyntax)
			return
		}
	}
	var match func([]byte) bool
	switch {
	case !typeOK:
		match = func([]byte) bool { return false }
	case pat != nil && (len(pat) != 1 || pat[0] != '*'):
		match = func(k []byte) bool { return store.Match(pat, k, false) }
	}
	next, keys := x.D.st.Scan(cursor, int(min(count, 1<<20)), match, x.Now)
	x.W.Array(2)
	var tmp [20]byte
	x.W.Bulk(strconv.AppendUint(tmp[:0], next, 10))
	x.W.Array(len(keys))
	for _, k := range keys {
		x.W.Bulk(k)
	}
}

func cmdDBSize(x *Ctx) { x.W.Int(int64(x.D.st.Len())) }

func cmdFlushAll(x *Ctx) {
	if len(x.Args) > 2 || (len(x.Args) == 2 && !eq(x.Args[1], "async") && !eq(x.Args[1], "sync")) {
		x.W.Error(errSyntax)
		return
	}
	x.D.st.FlushAll()
	x.W.OK()
}
