package store

import (
	"iter"
	"unsafe"

	"github.com/hearsay/hearsay/ring"
)

// The slots are allocated in chunks, on a chunk's first write. A node of a
// large cluster serves a few hundred of the 16384 slots, and an idle one
// writes none: a fixed array of every slot would be over a megabyte of
// heap it never touches, which the GC's goal then doubles in RSS. Readers
// find an unallocated chunk's slots empty without allocating anything.
// Chunks are never freed, so a slot pointer stays valid for the store's
// life.

const (
	chunkBits  = 9
	chunkSlots = 1 << chunkBits // slots per chunk
	chunkMask  = chunkSlots - 1
	numChunks  = ring.Slots / chunkSlots
)

// chunk is chunkSlots consecutive slots and their UsedMemory shares. It is
// larger than the runtime's largest small-object size, so each chunk gets
// pages of its own: it starts on a page, and so every slot on a cache line.
// (A small object holding pointers starts 8 bytes past its size class's
// boundary, after a type header, which would split every slot over two
// lines.)
type chunk struct {
	slots [chunkSlots]slot
	// bytes is each slot's share of UsedMemory, guarded by the slot's
	// data lock, so that dropping or replacing a slot adjusts the total
	// without walking its keys.
	bytes [chunkSlots]int64
}

// The runtime's largest small-object size is 32 KiB.
var _ [unsafe.Sizeof(chunk{}) - 32<<10 - 1]byte

func newChunk(first int) *chunk {
	c := new(chunk)
	for i := range c.slots {
		c.slots[i].idx = uint16(first + i)
	}
	return c
}

// peek returns slot i, or nil when its chunk was never written: the slot is
// then empty. It never allocates.
func (s *Store) peek(i uint16) *slot {
	if c := s.chunks[i>>chunkBits].Load(); c != nil {
		return &c.slots[i&chunkMask]
	}
	return nil
}

// writable returns slot i, allocating its chunk on first use.
func (s *Store) writable(i uint16) *slot {
	if sl := s.peek(i); sl != nil {
		return sl
	}
	// Under growMu, so that LockAllWrites, which holds it, sees every
	// chunk a writer could lock.
	s.growMu.Lock()
	defer s.growMu.Unlock()
	p := &s.chunks[i>>chunkBits]
	c := p.Load()
	if c == nil {
		c = newChunk(int(i) &^ chunkMask)
		p.Store(c)
	}
	return &c.slots[i&chunkMask]
}

// slotBytes returns the UsedMemory share of sl, whose data lock is held.
func (s *Store) slotBytes(sl *slot) *int64 {
	return &s.chunks[sl.idx>>chunkBits].Load().bytes[sl.idx&chunkMask]
}

// from yields the slots of the allocated chunks in slot order, from slot
// start on, wrapping past the last slot so that each is yielded once.
func (s *Store) from(start int) iter.Seq2[uint16, *slot] {
	return func(yield func(uint16, *slot) bool) {
		for n := 0; n < ring.Slots; {
			i := (start + n) % ring.Slots
			run := min(chunkSlots-(i&chunkMask), ring.Slots-n)
			n += run
			c := s.chunks[i>>chunkBits].Load()
			if c == nil {
				continue
			}
			for j := i; j < i+run; j++ {
				if !yield(uint16(j), &c.slots[j&chunkMask]) {
					return
				}
			}
		}
	}
}

// nextChunk returns the first slot of the chunk after slot i's.
func nextChunk(i int) int { return (i &^ chunkMask) + chunkSlots }

// WaitWrites waits until no one holds slot's writer lock, so that every
// writer that takes it later sees what the caller stored before (a write
// gate closing). A slot whose chunk was never written has no holder to
// wait for: a writer first allocates the chunk, after this load.
func (s *Store) WaitWrites(slot uint16) {
	if sl := s.peek(slot); sl != nil {
		sl.wmu.Lock()
		//lint:ignore SA2001 taking the lock is the wait
		sl.wmu.Unlock()
	}
}

// LockAllWrites takes every slot's writer lock (a keyless write such as
// FLUSHALL), until UnlockAllWrites. The chunks not yet allocated stay so:
// writers wanting one wait until UnlockAllWrites. The caller must not
// write to a slot of an unallocated chunk meanwhile.
func (s *Store) LockAllWrites() {
	s.growMu.Lock()
	for _, sl := range s.from(0) {
		sl.wmu.Lock()
	}
}

// UnlockAllWrites releases what LockAllWrites took.
func (s *Store) UnlockAllWrites() {
	for _, sl := range s.from(0) {
		sl.wmu.Unlock()
	}
	s.growMu.Unlock()
}

// Chunks returns how many chunks of slots are allocated, for tests and
// memory accounting.
func (s *Store) Chunks() int {
	n := 0
	for i := range s.chunks {
		if s.chunks[i].Load() != nil {
			n++
		}
	}
	return n
}
