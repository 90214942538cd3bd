package bpf

// Indexes of the hb_stats per-CPU array; they mirror enum hb_stat in
// heartbeat.c.
const (
	statPass = iota
	statPingTx
	statPongRx
	statBadLen
	statBadMagic
	statBadType
	statBadMAC
	statUnknownPeer
	statCount
)

func (s *Stats) addKernel(c *[statCount]uint64) {
	s.Pass += c[statPass]
	s.PingTx += c[statPingTx]
	s.PongRx += c[statPongRx]
	s.BadLen += c[statBadLen]
	s.BadMagic += c[statBadMagic]
	s.BadType += c[statBadType]
	s.BadMAC += c[statBadMAC]
	s.UnknownPeer += c[statUnknownPeer]
}
