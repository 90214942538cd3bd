package gossip

import (
	"encoding/binary"

	"github.com/hearsay/hearsay/gossip/wire"
)

// The state digest is a sum of per-record and per-claim hashes, kept per
// anti-entropy bucket. A sum can be updated in O(1) when one record changes
// and does not depend on the order records were learned in.

func mix(h, v uint64) uint64 {
	h ^= v
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 31
	h *= 0x94d049bb133111eb
	h ^= h >> 29
	return h
}

func mixID(h uint64, id *wire.NodeID) uint64 {
	h = mix(h, binary.LittleEndian.Uint64(id[0:8]))
	h = mix(h, binary.LittleEndian.Uint64(id[8:16]))
	return mix(h, uint64(binary.LittleEndian.Uint32(id[16:20])))
}

func recordHash(r *record) uint64 {
	h := mixID(0x7265636f7264, &r.id)
	h = mix(h, r.version)
	h = mix(h, binary.LittleEndian.Uint64(r.ip[0:8]))
	h = mix(h, binary.LittleEndian.Uint64(r.ip[8:16]))
	h = mix(h, uint64(r.port)<<32|uint64(r.bus)<<16|uint64(r.flags&(roleFlags|wire.FlagFail)))
	h = mixID(h, &r.master)
	return mix(h, r.configEpoch)
}

func claimHash(cl *claim) uint64 {
	h := mixID(0x636c61696d, &cl.owner)
	h = mix(h, cl.epoch)
	h = mix(h, cl.version)
	for _, r := range cl.ranges {
		h = mix(h, uint64(r.Start)<<16|uint64(r.End))
	}
	return h
}

// hashIn adds (sign +1) or removes (sign -1) r from the digest. Callers
// remove a record before changing a hashed field and add it back after.
func (c *Core) hashIn(r *record, sign int) {
	c.shardGen++
	c.addHash(r.id.Bucket(), recordHash(r), sign)
}

func (c *Core) claimHashIn(cl *claim, sign int) {
	c.addHash(cl.owner.Bucket(), claimHash(cl), sign)
}

func (c *Core) addHash(b int, h uint64, sign int) {
	if sign < 0 {
		c.buckets[b] -= h
		c.digest -= h
	} else {
		c.buckets[b] += h
		c.digest += h
	}
}
