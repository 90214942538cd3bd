package command

import (
	"strconv"

	"github.com/hearsay/hearsay/node/resp"
	"github.com/hearsay/hearsay/ring"
)

// Feed receives the replication stream: the effects of the write commands
// this node executes, as RESP commands. Append is called with the writer
// lock of the affected slot held (every slot's for a keyless write), so the
// effects of one slot's writes arrive in the order they were applied. It
// must copy b and return quickly.
type Feed interface {
	Append(b []byte) (offset int64)
}

// Effects are propagated rather than commands (INCR becomes the SET of its
// result, EXPIRE the PEXPIREAT of its absolute time): every effect sets the
// key's value, expiry or existence to an absolute state. Replaying a stream
// suffix on a snapshot taken at any moment after the suffix began therefore
// reaches the master's state, which is what lets a full sync read the
// slots one at a time, without stopping writers, instead of taking a
// point-in-time copy of the whole keyspace.

// StartPropagation makes every later write command append its effects to
// f, and expiry deletions append a DEL. When it returns, every write that
// was not propagated has finished: a snapshot started afterwards sees
// them.
func (d *Dispatcher) StartPropagation(f Feed) {
	d.feedMu.Lock()
	defer d.feedMu.Unlock()
	d.feed = f
	d.st.SetExpireHook(func(_ uint16, key []byte) {
		// Writers of different slots call this concurrently: no shared
		// scratch buffer.
		var tmp [128]byte
		f.Append(appendCommand(tmp[:0], "DEL", key))
	})
	d.propagating.Store(true)
	d.barrier()
}

// StopPropagation ends what StartPropagation began (a master turning
// replica: its stream now comes from its own master).
func (d *Dispatcher) StopPropagation() {
	d.feedMu.Lock()
	defer d.feedMu.Unlock()
	d.propagating.Store(false)
	d.barrier()
	d.st.SetExpireHook(nil)
	d.feed = nil
}

// Propagating reports whether writes are being propagated.
func (d *Dispatcher) Propagating() bool { return d.propagating.Load() }

// barrier waits until no write command holds a slot's writer lock.
func (d *Dispatcher) barrier() {
	for i := range ring.Slots {
		d.st.WaitWrites(uint16(i))
	}
}

// run executes cmd's handler. Write commands run under their slot's writer
// lock, and, while propagating, record their effects before releasing it.
func (d *Dispatcher) run(x *Ctx, cmd *Command) {
	if cmd.Flags&FlagWrite == 0 || x.Conn.Master || cmd.SelfSequenced {
		cmd.Handler(x)
		return
	}
	if !cmd.HasKeys() {
		d.runKeyless(x, cmd)
		return
	}
	if !d.lockSlotWrites(x, x.Slot) {
		return // parked: it runs again when its pause ends
	}
	on := d.propagating.Load()
	var ver uint64
	if on {
		ver = d.st.Version(x.Slot)
	}
	cmd.Handler(x)
	if on && d.st.Version(x.Slot) != ver {
		d.propagateKeys(x, cmd)
	}
	d.st.UnlockWrites(x.Slot)
}

// runKeyless runs a write without keys (FLUSHALL) with every slot's writer
// lock held, and propagates it verbatim.
func (d *Dispatcher) runKeyless(x *Ctx, cmd *Command) {
	d.st.LockAllWrites()
	for {
		// FLUSHALL would delete keys of a paused slot behind the
		// migration's back, so it waits for every slot's gate too.
		if d.pauseOn.Load() {
			d.st.UnlockAllWrites()
			if d.park(x) {
				return
			}
		} else if d.slotPause.on.Load() {
			d.st.UnlockAllWrites()
			if d.parkSlot(x, 0, true) {
				return
			}
		} else {
			break
		}
		d.st.LockAllWrites()
	}
	mark := len(x.W.Buf)
	cmd.Handler(x)
	ok := len(x.W.Buf) > mark && x.W.Buf[mark] != '-'
	if ok && d.propagating.Load() {
		c := x.Conn
		c.prop = resp.AppendArrayLen(c.prop[:0], len(x.Args))
		for _, a := range x.Args {
			c.prop = resp.AppendBulk(c.prop, a)
		}
		c.WriteOffset = d.feed.Append(c.prop)
	}
	d.st.UnlockAllWrites()
}

// propagateKeys appends the state of every key of x to the feed.
func (d *Dispatcher) propagateKeys(x *Ctx, cmd *Command) {
	c := x.Conn
	b := c.prop[:0]
	for _, k := range x.Keys {
		en, ok := d.st.Lookup(x.Slot, k, x.Now)
		switch {
		case !ok:
			b = appendCommand(b, "DEL", k)
		case cmd.TTLOnly && en.ExpireAt != 0:
			b = appendCommandInt(b, "PEXPIREAT", k, en.ExpireAt)
		case cmd.TTLOnly:
			b = appendCommand(b, "PERSIST", k)
		case en.ExpireAt != 0:
			b = resp.AppendArrayLen(b, 5)
			b = resp.AppendBulkString(b, "SET")
			b = resp.AppendBulk(b, k)
			b = resp.AppendBulk(b, en.Val)
			b = resp.AppendBulkString(b, "PXAT")
			b = appendBulkInt(b, en.ExpireAt)
		default:
			b = resp.AppendArrayLen(b, 3)
			b = resp.AppendBulkString(b, "SET")
			b = resp.AppendBulk(b, k)
			b = resp.AppendBulk(b, en.Val)
		}
	}
	c.prop = b
	c.WriteOffset = d.feed.Append(b)
}

func appendCommand(b []byte, name string, key []byte) []byte {
	b = resp.AppendArrayLen(b, 2)
	b = resp.AppendBulkString(b, name)
	return resp.AppendBulk(b, key)
}

func appendCommandInt(b []byte, name string, key []byte, n int64) []byte {
	b = resp.AppendArrayLen(b, 3)
	b = resp.AppendBulkString(b, name)
	b = resp.AppendBulk(b, key)
	return appendBulkInt(b, n)
}

func appendBulkInt(b []byte, n int64) []byte {
	var tmp [20]byte
	return resp.AppendBulk(b, strconv.AppendInt(tmp[:0], n, 10))
}

// DeleteSlotKeys deletes every key of the slots in rs for which drop
// reports true, each slot under its writer lock, and propagates a DEL per
// key while propagating: an atomic migration's source deleting what the
// target now owns, or a target dropping what it received. drop is asked
// under the lock, so a slot that became this node's again in the meantime
// keeps its keys. It returns how many keys went.
func (d *Dispatcher) DeleteSlotKeys(rs []ring.Range, drop func(slot uint16) bool) int {
	total := 0
	var b []byte
	for _, r := range rs {
		for s := int(r.Start); s <= int(r.End); s++ {
			slot := uint16(s)
			if d.st.CountKeysInSlot(slot) == 0 {
				continue
			}
			d.st.LockWrites(slot)
			if !drop(slot) {
				d.st.UnlockWrites(slot)
				continue
			}
			keys := d.st.GetKeysInSlot(slot, d.st.CountKeysInSlot(slot))
			b = b[:0]
			for _, k := range keys {
				b = appendCommand(b, "DEL", k)
			}
			total += d.st.DeleteSlot(slot)
			if d.propagating.Load() && len(b) > 0 {
				d.feed.Append(b)
			}
			d.st.UnlockWrites(slot)
		}
	}
	return total
}
