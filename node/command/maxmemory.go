package command

import (
	"strconv"

	"github.com/hearsay/hearsay/internal/memsize"
	"github.com/hearsay/hearsay/node/store"
)

// ErrOOM is Redis's reply to a write that may grow memory while used
// memory is over maxmemory and nothing can be evicted.
const ErrOOM = "OOM command not allowed when used memory > 'maxmemory'."

// maxEvictions bounds the keys one command evicts. Writers on other event
// loops keep adding while one evicts, so "until under the limit" alone
// might not end; past the bound the write goes ahead, as Redis lets a
// write through when its eviction time limit runs out.
const maxEvictions = 10000

// freeMemory evicts keys until used memory is within maxmemory, as the
// policy allows, and reports whether a write that may grow memory can go
// ahead. A replica never evicts and never refuses its own clients' writes
// on memory grounds (Redis's replica-ignore-maxmemory default): its
// master's DELs keep it in step. The caller holds no writer lock.
func (d *Dispatcher) freeMemory(now int64) bool {
	limit := d.maxMemory.Load()
	if limit <= 0 || d.st.UsedMemory() <= limit {
		return true
	}
	if d.opts.Role != nil && d.opts.Role() == "slave" {
		return true
	}
	p := store.Policy(d.policy.Load())
	samples := int(d.samples.Load())
	for range maxEvictions {
		if d.pauseOn.Load() {
			// A paused write parks in run and comes back here when the
			// pause ends; evicting now would append DELs to the stream
			// a replica taking over must see come to rest.
			return true
		}
		if !d.st.Evict(p, samples, now, d.notPaused) {
			return d.pauseOn.Load()
		}
		if d.st.UsedMemory() <= limit {
			return true
		}
	}
	return true
}

// notPaused is Evict's allow: it runs under the victim slot's writer lock,
// where PauseWrites' barrier orders it as it orders a write.
func (d *Dispatcher) notPaused() bool { return !d.pauseOn.Load() }

// syncMemoryConfig makes CONFIG GET report the maxmemory settings.
func (d *Dispatcher) syncMemoryConfig() {
	d.configMu.Lock()
	d.config["maxmemory"] = strconv.FormatInt(d.maxMemory.Load(), 10)
	d.config["maxmemory-policy"] = store.Policy(d.policy.Load()).String()
	d.config["maxmemory-samples"] = strconv.Itoa(int(d.samples.Load()))
	d.configMu.Unlock()
}

// MaxMemory returns maxmemory in bytes (0: no limit) and the policy.
func (d *Dispatcher) MaxMemory() (int64, store.Policy) {
	return d.maxMemory.Load(), store.Policy(d.policy.Load())
}

// configSetters are the parameters CONFIG SET may change: each checks its
// value and returns an apply function, or the reason it is invalid.
var configSetters = map[string]func(d *Dispatcher, v string) (func(), string){
	"maxmemory": func(d *Dispatcher, v string) (func(), string) {
		n, err := memsize.Parse(v)
		if err != nil {
			return nil, "argument must be a memory value"
		}
		return func() { d.maxMemory.Store(n) }, ""
	},
	"maxmemory-policy": func(d *Dispatcher, v string) (func(), string) {
		p, ok := store.ParsePolicy(v)
		if !ok {
			return nil, "argument(s) must be one of the following: noeviction, allkeys-lru, allkeys-random, volatile-lru, volatile-random, volatile-ttl"
		}
		return func() { d.policy.Store(uint32(p)) }, ""
	},
	"maxmemory-samples": func(d *Dispatcher, v string) (func(), string) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return nil, "argument must be between 1 and 64 inclusive"
		}
		return func() { d.samples.Store(int32(n)) }, ""
	},
}

// CONFIG SET parameter value [parameter value ...]: all or nothing, as in
// Redis 7. Lowering maxmemory evicts at once, as Redis does, rather than
// at the next write.
func cmdConfigSet(x *Ctx) {
	args := x.Args[2:]
	if len(args)%2 != 0 {
		x.W.Error(arityErr("config|set"))
		return
	}
	var apply []func()
	for i := 0; i < len(args); i += 2 {
		name := string(lowerASCII(args[i]))
		set, ok := configSetters[name]
		if !ok {
			x.W.Error("ERR Unknown option or number of arguments for CONFIG SET - '" + string(args[i]) + "'")
			return
		}
		fn, why := set(x.D, string(args[i+1]))
		if fn == nil {
			x.W.Error("ERR CONFIG SET failed (possibly related to argument '" + name + "') - " + why)
			return
		}
		apply = append(apply, fn)
	}
	for _, fn := range apply {
		fn()
	}
	x.D.syncMemoryConfig()
	x.D.freeMemory(x.Now)
	x.W.OK()
}

func lowerASCII(b []byte) []byte {
	out := []byte(string(b))
	for i, ch := range out {
		if ch >= 'A' && ch <= 'Z' {
			out[i] = ch + ('a' - 'A')
		}
	}
	return out
}

// appendMemoryInfo appends INFO memory's fields. used_memory is the
// store's own accounting, which maxmemory is compared with (see
// store.UsedMemory); the Go heap, which also holds garbage not collected
// yet, is allocator_allocated.
func (d *Dispatcher) appendMemoryInfo(b []byte, heapAlloc, sys uint64) []byte {
	used := uint64(max(d.st.UsedMemory(), 0))
	limit, p := d.MaxMemory()
	b = append(b, "# Memory\r\n"...)
	b = kvi(b, "used_memory", int64(used))
	b = kv(b, "used_memory_human", humanBytes(used))
	b = kvi(b, "used_memory_rss", int64(sys))
	b = kv(b, "used_memory_rss_human", humanBytes(sys))
	b = kvi(b, "used_memory_dataset", int64(used))
	b = kvi(b, "allocator_allocated", int64(heapAlloc))
	b = kvi(b, "maxmemory", limit)
	b = kv(b, "maxmemory_human", humanBytes(uint64(limit)))
	b = kv(b, "maxmemory_policy", p.String())
	b = kv(b, "mem_allocator", "go")
	return b
}
