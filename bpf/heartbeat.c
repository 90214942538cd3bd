//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// hearsay XDP heartbeat fast path.
//
// A heartbeat is a UDP datagram with a fixed 48-byte payload (see
// PROTOCOL.md, "Heartbeat packets"). This program:
//
//   - answers a valid PING from a known peer by rewriting it in place into a
//     PONG, with the HB_FLAG_KERNEL bit set, and returning XDP_TX (no
//     userspace involved on the answering side);
//   - records a valid PONG in the per-peer map (with its flags, so the node
//     knows whether the peer's kernel or its userspace answered) and drops
//     it;
//   - counts and drops malformed heartbeats, bad MACs and unknown senders;
//   - passes everything else untouched.
//
// The program is shared by every hearsay node on the interface: per-node
// state is keyed by the node's UDP heartbeat port.
//
// Idempotence: the PONG written by the PING path depends only on the input
// packet and the map state (never on the clock or on a per-run counter), and
// running the program again on its own output never rewrites it again (the
// PONG goes to the pinger's port: it is passed untouched, or recorded and
// dropped if that port is local). So BPF_PROG_TEST_RUN with Repeat returns
// the same bytes as a single run.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define HB_PAYLOAD_LEN 48
#define HB_UDP_LEN (sizeof(struct udphdr) + HB_PAYLOAD_LEN)
#define HB_MAGIC 0x31544248U /* "HBT1" read as a little-endian u32 */
#define HB_TYPE_PING 1
#define HB_TYPE_PONG 2
#define HB_REPLY_TTL 64

/* hb_payload.flags: set in every PONG this program writes, never by a
 * userspace responder (hbpacket.FlagKernel). */
#define HB_FLAG_KERNEL 1U

/* hb_node.flags */
#define HB_NODE_AUTH 1U   /* check and write MACs */
#define HB_NODE_ACTIVE 2U /* a local node owns this port */

#define IP_MF_OFFSET 0x3fff /* More Fragments flag and fragment offset */

/* Counters in hb_stats; the Go side mirrors this list (stats.go). */
enum hb_stat {
	HB_STAT_PASS = 0,        /* not a heartbeat: XDP_PASS */
	HB_STAT_PING_TX,         /* PING answered with a PONG (XDP_TX) */
	HB_STAT_PONG_RX,         /* PONG recorded (XDP_DROP) */
	HB_STAT_BAD_LEN,         /* wrong UDP/IP length or truncated payload */
	HB_STAT_BAD_MAGIC,       /* magic is not "HBT1" */
	HB_STAT_BAD_TYPE,        /* type is neither PING nor PONG */
	HB_STAT_BAD_MAC,         /* SipHash MAC mismatch (auth on) */
	HB_STAT_UNKNOWN_PEER,    /* sender key not in hb_peers for this port */
	HB_STAT_MAX,
};

/* SipHash-2-4 state after the payload's first two words (magic, type,
 * flags and a zero reserved field; sender), under the local node's key:
 * flags 0 for PINGs, HB_FLAG_KERNEL for PONGs. Go fills it
 * in; the program finishes a MAC from it with the last three words. */
struct hb_sip {
	__u64 v[4];
};

/* Per local node, indexed by its heartbeat port (__u32, host order). An
 * array, not a hash: the lookup is inlined by the verifier and runs for
 * every UDP packet. Unused ports have flags == 0. */
struct hb_node {
	__u64 own_key; /* sender key stamped into PONGs */
	__u64 mac_k0;  /* SipHash key, bytes 0..7 little-endian */
	__u64 mac_k1;  /* SipHash key, bytes 8..15 little-endian */
	__u32 flags;   /* HB_NODE_ACTIVE, HB_NODE_AUTH */
	__u32 pad;
	struct hb_sip pong_out; /* prefix of this node's PONGs, HB_FLAG_KERNEL set (auth on) */
};

/* Known peer of one local node. */
struct hb_peer_key {
	__u64 peer_key;   /* the peer's sender key */
	__u32 local_port; /* heartbeat port of the local node */
	__u32 pad;        /* must be zero */
};

struct hb_peer {
	__u64 pings_rx;     /* valid PINGs received from the peer (and answered) */
	__u64 pongs_rx;     /* valid PONGs received from the peer */
	__u64 last_pong_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the last PONG */
	__u64 rtt_ns;       /* now - echoed send time of the last PONG */
	__u64 progress;     /* the peer's progress counter in the last PONG */
	__u64 seq;          /* sequence number of the last PONG */
	__u32 pong_flags;   /* flags of the last PONG: HB_FLAG_KERNEL when the peer's XDP program wrote it */
	__u32 pad;
	struct hb_sip ping_in; /* prefix of this peer's PINGs (auth on; Go) */
	struct hb_sip pong_in; /* prefix of this peer's kernel PONGs (auth on; Go) */
};

/* Registry of the local nodes sharing the interface (written by Go only). */
struct hb_owner {
	__u32 pid;
	__u32 pad;
	__u64 start_time; /* /proc/<pid>/stat starttime, guards against PID reuse */
};

struct hb_payload {
	__u32 magic;
	__u8 type;
	__u8 flags;
	__u16 reserved;
	__u64 sender;
	__u64 seq;
	__u64 send_ns;
	__u64 progress;
	__u64 mac;
};

_Static_assert(sizeof(struct hb_payload) == HB_PAYLOAD_LEN, "payload is 48 bytes");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct hb_node);
} hb_nodes SEC(".maps");

/* Progress counter of each local node, indexed by heartbeat port. Go
 * bumps its own slot every tick; a hung process stops bumping it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} hb_progress SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct hb_peer_key);
	__type(value, struct hb_peer);
} hb_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HB_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} hb_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct hb_owner);
} hb_owners SEC(".maps");

/* The payload is little-endian on the wire. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define le64(x) (x)
#define le32(x) (x)
#else
#define le64(x) __builtin_bswap64(x)
#define le32(x) __builtin_bswap32(x)
#endif

static __always_inline int count(__u32 stat, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&hb_stats, &stat);

	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
	return verdict;
}

/* ---- SipHash-2-4 over exactly 40 bytes (five little-endian words) ---- */

#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                               \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = ROTL64(v1, 13);                                           \
		v1 ^= v0;                                                      \
		v0 = ROTL64(v0, 32);                                           \
		v2 += v3;                                                      \
		v3 = ROTL64(v3, 16);                                           \
		v3 ^= v2;                                                      \
		v0 += v3;                                                      \
		v3 = ROTL64(v3, 21);                                           \
		v3 ^= v0;                                                      \
		v2 += v1;                                                      \
		v1 = ROTL64(v1, 17);                                           \
		v1 ^= v2;                                                      \
		v2 = ROTL64(v2, 32);                                           \
	} while (0)

#define SIPBLOCK(m)                                                            \
	do {                                                                   \
		__u64 m_ = (m);                                                \
		v3 ^= m_;                                                      \
		SIPROUND;                                                      \
		SIPROUND;                                                      \
		v0 ^= m_;                                                      \
	} while (0)

/* Last three words and finalization, from a state after two words. */
static __always_inline __u64 siphash_tail(__u64 v0, __u64 v1, __u64 v2,
					  __u64 v3, __u64 m2, __u64 m3,
					  __u64 m4)
{
	SIPBLOCK(m2);
	SIPBLOCK(m3);
	SIPBLOCK(m4);
	/* final block: no tail bytes, length 40 in the top byte */
	SIPBLOCK((__u64)40 << 56);
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* Word 0 of the payload: magic, type, flags, reserved. */
static __always_inline __u64 payload_word0(const struct hb_payload *p)
{
	return le64(*(const __u64 *)p);
}

/* MAC of the payload. With the flags the prefix was made for and a zero
 * reserved field (every PING Go sends, every PONG this program writes) it
 * starts from the precomputed prefix: 10 SipRounds instead of 16. Anything
 * else (a PONG from a userspace responder, odd flags) takes the full
 * computation. */
static __always_inline __u64 payload_mac(const struct hb_node *node,
					 const struct hb_sip *prefix,
					 __u8 prefix_flags,
					 const struct hb_payload *p)
{
	if (p->flags == prefix_flags && p->reserved == 0)
		return siphash_tail(prefix->v[0], prefix->v[1], prefix->v[2],
				    prefix->v[3], le64(p->seq),
				    le64(p->send_ns), le64(p->progress));

	__u64 v0 = node->mac_k0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = node->mac_k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = node->mac_k0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = node->mac_k1 ^ 0x7465646279746573ULL;

	SIPBLOCK(payload_word0(p));
	SIPBLOCK(le64(p->sender));
	return siphash_tail(v0, v1, v2, v3, le64(p->seq), le64(p->send_ns),
			    le64(p->progress));
}

/* ---- checksums (computed in full; no offload is assumed) ---- */

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Ones' complement sum of the UDP header and payload (56 bytes, 14 words),
 * read in memory order. The result is byte-order independent (RFC 1071). */
static __always_inline __u64 csum_udp_body(const __u32 *w)
{
	__u64 s = 0;

#pragma unroll
	for (int i = 0; i < HB_UDP_LEN / 4; i++)
		s += w[i];
	return s;
}

static __always_inline void swap_eth(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

enum hb_verdict {
	HB_NOT_MINE = 0, /* not a heartbeat: pass */
	HB_DROP,         /* counted, drop */
	HB_REPLY,        /* payload rewritten into a PONG: fix headers, XDP_TX */
};

/* Handle the payload of a UDP datagram addressed to a local heartbeat port.
 * The caller has checked that the full payload is inside the packet. */
static __always_inline int handle_payload(__u32 port,
					  const struct hb_node *node,
					  struct hb_payload *p)
{
	if (le32(p->magic) != HB_MAGIC)
		return count(HB_STAT_BAD_MAGIC, HB_DROP);
	if (p->type != HB_TYPE_PING && p->type != HB_TYPE_PONG)
		return count(HB_STAT_BAD_TYPE, HB_DROP);

	/* The peer first: its entry holds the MAC prefix for its packets. */
	struct hb_peer_key pk = {
		.peer_key = le64(p->sender),
		.local_port = port,
	};
	struct hb_peer *peer = bpf_map_lookup_elem(&hb_peers, &pk);

	if (!peer)
		return count(HB_STAT_UNKNOWN_PEER, HB_DROP);
	if ((node->flags & HB_NODE_AUTH) &&
	    (p->type == HB_TYPE_PING ?
		     payload_mac(node, &peer->ping_in, 0, p) :
		     payload_mac(node, &peer->pong_in, HB_FLAG_KERNEL, p)) !=
		    le64(p->mac))
		return count(HB_STAT_BAD_MAC, HB_DROP);

	if (p->type == HB_TYPE_PONG) {
		__u64 now = bpf_ktime_get_ns();
		__u64 sent = le64(p->send_ns);

		__sync_fetch_and_add(&peer->pongs_rx, 1);
		peer->last_pong_ns = now;
		peer->rtt_ns = now >= sent ? now - sent : 0;
		peer->progress = le64(p->progress);
		peer->seq = le64(p->seq);
		peer->pong_flags = p->flags;
		return count(HB_STAT_PONG_RX, HB_DROP);
	}

	/* PING: become a PONG from this node. Sequence number, send time,
	 * flags and reserved are echoed, HB_FLAG_KERNEL added to the flags. */
	__u64 *prog = bpf_map_lookup_elem(&hb_progress, &port);
	__u64 progress = prog ? *prog : 0;

	__sync_fetch_and_add(&peer->pings_rx, 1);
	p->type = HB_TYPE_PONG;
	p->flags |= HB_FLAG_KERNEL;
	p->sender = le64(node->own_key);
	p->progress = le64(progress);
	p->mac = (node->flags & HB_NODE_AUTH) ?
			 le64(payload_mac(node, &node->pong_out, HB_FLAG_KERNEL, p)) :
			 0;
	return HB_REPLY;
}

SEC("xdp")
int hearsay_heartbeat(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip4 = NULL;
	struct ipv6hdr *ip6 = NULL;
	struct udphdr *udp;

	if ((void *)(eth + 1) > end)
		return count(HB_STAT_PASS, XDP_PASS);

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		ip4 = (void *)(eth + 1);
		if ((void *)(ip4 + 1) > end)
			return count(HB_STAT_PASS, XDP_PASS);
		/* options and fragments are left to the stack */
		if (ip4->version != 4 || ip4->ihl != 5 ||
		    (ip4->frag_off & bpf_htons(IP_MF_OFFSET)) ||
		    ip4->protocol != IPPROTO_UDP)
			return count(HB_STAT_PASS, XDP_PASS);
		udp = (void *)(ip4 + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return count(HB_STAT_PASS, XDP_PASS);
		/* extension headers are left to the stack */
		if (ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
			return count(HB_STAT_PASS, XDP_PASS);
		udp = (void *)(ip6 + 1);
	} else {
		return count(HB_STAT_PASS, XDP_PASS);
	}

	if ((void *)(udp + 1) > end)
		return count(HB_STAT_PASS, XDP_PASS);

	__u32 port = bpf_ntohs(udp->dest);
	struct hb_node *node = bpf_map_lookup_elem(&hb_nodes, &port);

	if (!node || !(node->flags & HB_NODE_ACTIVE))
		return count(HB_STAT_PASS, XDP_PASS);

	/* From here on the datagram is addressed to a heartbeat port: it is
	 * either a valid heartbeat or counted and dropped. */
	struct hb_payload *p = (void *)(udp + 1);

	if ((void *)(p + 1) > end || udp->len != bpf_htons(HB_UDP_LEN))
		return count(HB_STAT_BAD_LEN, XDP_DROP);
	if (ip4 && ip4->tot_len != bpf_htons(sizeof(*ip4) + HB_UDP_LEN))
		return count(HB_STAT_BAD_LEN, XDP_DROP);
	if (ip6 && ip6->payload_len != bpf_htons(HB_UDP_LEN))
		return count(HB_STAT_BAD_LEN, XDP_DROP);

	int v = handle_payload(port, node, p);

	if (v == HB_DROP)
		return XDP_DROP;

	/* Reply: swap addresses and ports, write full checksums. */
	swap_eth(eth);

	__u16 sport = udp->source;
	udp->source = udp->dest;
	udp->dest = sport;
	udp->check = 0;

	__u64 sum = csum_udp_body((const __u32 *)udp);

	/* pseudo-header: protocol and UDP length (both as in memory) */
	sum += bpf_htons(IPPROTO_UDP);
	sum += udp->len;

	if (ip4) {
		__u32 a = ip4->saddr;

		ip4->saddr = ip4->daddr;
		ip4->daddr = a;
		ip4->ttl = HB_REPLY_TTL;
		ip4->check = 0;

		const __u32 *w = (const __u32 *)ip4;
		__u64 hs = (__u64)w[0] + w[1] + w[2] + w[3] + w[4];

		ip4->check = ~csum_fold(hs);
		sum += (__u64)ip4->saddr + ip4->daddr;
	} else if (ip6) {
		struct in6_addr a = ip6->saddr;

		ip6->saddr = ip6->daddr;
		ip6->daddr = a;
		ip6->hop_limit = HB_REPLY_TTL;

		const __u32 *w = (const __u32 *)&ip6->saddr;

#pragma unroll
		for (int i = 0; i < 8; i++)
			sum += w[i];
	}

	__u16 c = ~csum_fold(sum);

	udp->check = c ? c : 0xffff; /* 0 means "no checksum" in UDP */
	return count(HB_STAT_PING_TX, XDP_TX);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
