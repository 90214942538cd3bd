package node

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/hearsay/hearsay/failover"
	"github.com/hearsay/hearsay/gossip"
	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/node/clusterview"
	"github.com/hearsay/hearsay/node/command"
	"github.com/hearsay/hearsay/ring"
)

// nodeMetrics holds the node's Prometheus metrics. Each node has its own
// Set, so several nodes in one process (tests) do not collide.
type nodeMetrics struct {
	set *metrics.Set

	// [type][0 received, 1 sent]
	busMsgs  [16][2]*metrics.Counter
	busBytes [16][2]*metrics.Counter

	badFrames      sync.Map // error label -> *metrics.Counter
	sendDropped    *metrics.Counter
	persistDropped *metrics.Counter
	dialFailed     *metrics.Counter
	linkEvicted    *metrics.Counter
	linkOpened     *metrics.Counter
	clientsOpened  *metrics.Counter
	// accept errors by listener, and connections refused at maxclients
	acceptErrorsClient, acceptErrorsBus *metrics.Counter
	rejected                            *metrics.Counter
	outputDropped                       *metrics.Counter
	memoryReleases                      *metrics.Counter // releaseMemory collections run
	expireCycleKeys                     *metrics.Counter
	expireCycleSeconds                  *metrics.Histogram
	heartbeatErrors                     *metrics.Counter
	heartbeatSamples                    *metrics.Counter
	persistSeconds                      *metrics.Histogram
	events                              [16]*metrics.Counter
	electionStart                       atomic.Int64 // unix ns when this node's last election began

	// Per-command metrics by Command.ID, created on first use; commands
	// numbered after newMetrics (none today) fall back to the map.
	cmdByID  []atomic.Pointer[cmdMetrics]
	commands sync.Map // *command.Command -> *cmdMetrics

	// Values published by the bus loop for gauges.
	currentEpoch, configEpoch atomic.Uint64
	slotsOwned, knownNodes    atomic.Int64
	clusterOK                 atomic.Bool
	linksOut, linksIn         atomic.Int64 // stored by the bus loop each tick

	repl replMetrics
}

type cmdMetrics struct {
	calls *metrics.Counter
	dur   *metrics.PrometheusHistogram
}

func newMetrics(n *Node) *nodeMetrics {
	s := metrics.NewSet()
	m := &nodeMetrics{set: s, cmdByID: make([]atomic.Pointer[cmdMetrics], command.NumIDs())}
	for t := wire.TypePing; t.Valid(); t++ {
		name := strings.ToLower(t.String())
		for dir, label := range [2]string{"in", "out"} {
			m.busMsgs[t][dir] = s.NewCounter(`hearsay_bus_messages_total{type="` + name + `",dir="` + label + `"}`)
			m.busBytes[t][dir] = s.NewCounter(`hearsay_bus_bytes_total{type="` + name + `",dir="` + label + `"}`)
		}
	}
	m.sendDropped = s.NewCounter(`hearsay_bus_send_dropped_total`)
	m.persistDropped = s.NewCounter(`hearsay_bus_persist_dropped_messages_total`)
	m.dialFailed = s.NewCounter(`hearsay_bus_dial_failures_total`)
	m.linkEvicted = s.NewCounter(`hearsay_bus_links_evicted_total`)
	m.linkOpened = s.NewCounter(`hearsay_bus_links_opened_total`)
	m.clientsOpened = s.NewCounter(`hearsay_client_connections_total`)
	m.acceptErrorsClient = s.NewCounter(`hearsay_accept_errors_total{listener="client"}`)
	m.acceptErrorsBus = s.NewCounter(`hearsay_accept_errors_total{listener="bus"}`)
	m.rejected = s.NewCounter(`hearsay_rejected_connections_total`)
	m.outputDropped = s.NewCounter(`hearsay_client_output_limit_drops_total`)
	m.memoryReleases = s.NewCounter(`hearsay_memory_releases_total`)
	m.expireCycleKeys = s.NewCounter(`hearsay_active_expired_keys_total`)
	m.expireCycleSeconds = s.NewHistogram(`hearsay_active_expire_cycle_seconds`)
	m.heartbeatErrors = s.NewCounter(`hearsay_heartbeat_errors_total`)
	m.heartbeatSamples = s.NewCounter(`hearsay_heartbeat_samples_total`)
	m.persistSeconds = s.NewHistogram(`hearsay_persist_duration_seconds`)
	for k := gossip.EventNodeAdded; k <= gossip.EventSelfFailed; k++ {
		m.events[k] = s.NewCounter(`hearsay_cluster_events_total{kind="` + k.String() + `"}`)
	}
	s.NewGauge(`hearsay_bus_links{dir="out"}`, func() float64 { return float64(m.linksOut.Load()) })
	s.NewGauge(`hearsay_bus_links{dir="in"}`, func() float64 { return float64(m.linksIn.Load()) })
	s.NewGauge(`hearsay_current_epoch`, func() float64 { return float64(m.currentEpoch.Load()) })
	s.NewGauge(`hearsay_config_epoch`, func() float64 { return float64(m.configEpoch.Load()) })
	s.NewGauge(`hearsay_slots_owned`, func() float64 { return float64(m.slotsOwned.Load()) })
	s.NewGauge(`hearsay_known_nodes`, func() float64 { return float64(m.knownNodes.Load()) })
	s.NewGauge(`hearsay_cluster_state_ok`, func() float64 {
		if m.clusterOK.Load() {
			return 1
		}
		return 0
	})
	s.NewGauge(`hearsay_keys`, func() float64 { return float64(n.store.Len()) })
	s.NewGauge(`hearsay_keys_expired_total`, func() float64 { return float64(n.store.ExpiredCount()) })
	s.NewGauge(`hearsay_keys_evicted_total`, func() float64 { return float64(n.store.EvictedCount()) })
	s.NewGauge(`hearsay_used_memory_bytes`, func() float64 { return float64(n.store.UsedMemory()) })
	return m
}

// busMsg counts one bus message of type t and its frame size.
func (m *nodeMetrics) busMsg(t wire.Type, sent bool, size int) {
	dir := 0
	if sent {
		dir = 1
	}
	if c := m.busMsgs[t&15][dir]; c != nil {
		c.Inc()
		m.busBytes[t&15][dir].Add(size)
	}
}

// badFrame counts a frame that closed its link, by error class.
func (m *nodeMetrics) badFrame(err error) {
	label := "other"
	for _, e := range []struct {
		err  error
		name string
	}{
		{wire.ErrBadMagic, "magic"}, {wire.ErrBadVersion, "version"}, {wire.ErrBadType, "type"},
		{wire.ErrTooLarge, "too_large"}, {wire.ErrTruncated, "truncated"}, {wire.ErrChecksum, "checksum"},
		{wire.ErrAuth, "auth"}, {wire.ErrMalformed, "malformed"},
	} {
		if errors.Is(err, e.err) {
			label = e.name
			break
		}
	}
	c, ok := m.badFrames.Load(label)
	if !ok {
		c, _ = m.badFrames.LoadOrStore(label, m.set.GetOrCreateCounter(`hearsay_bus_bad_frames_total{error="`+label+`"}`))
	}
	c.(*metrics.Counter).Inc()
}

func (m *nodeMetrics) event(k gossip.EventKind) {
	if int(k) < len(m.events) && m.events[k] != nil {
		m.events[k].Inc()
	}
}

// observe is command.Options.Observe: calls and latency by command.
func (m *nodeMetrics) observe(cmd *command.Command, calls int, d time.Duration) {
	var cm *cmdMetrics
	if id := cmd.ID; id > 0 && id < len(m.cmdByID) {
		if cm = m.cmdByID[id].Load(); cm == nil {
			// Racing loops get the same metrics from the set.
			cm = m.newCmdMetrics(cmd)
			m.cmdByID[id].Store(cm)
		}
	} else {
		v, ok := m.commands.Load(cmd)
		if !ok {
			v, _ = m.commands.LoadOrStore(cmd, m.newCmdMetrics(cmd))
		}
		cm = v.(*cmdMetrics)
	}
	cm.calls.Add(calls)
	if d >= 0 {
		// Durations are sampled (command.ObserveSample); counts are exact.
		cm.dur.Update(d.Seconds())
	}
}

func (m *nodeMetrics) newCmdMetrics(cmd *command.Command) *cmdMetrics {
	name := strings.ReplaceAll(cmd.Name, "|", "_")
	return &cmdMetrics{
		calls: m.set.GetOrCreateCounter(`hearsay_commands_total{cmd="` + name + `"}`),
		dur:   m.set.GetOrCreatePrometheusHistogram(`hearsay_command_duration_seconds{cmd="` + name + `"}`),
	}
}

// published records the gauges of a new route view.
func (m *nodeMetrics) published(v *routeView) {
	m.currentEpoch.Store(v.currentEpoch)
	m.configEpoch.Store(v.configEpoch)
	m.slotsOwned.Store(int64(v.mySlots))
	m.knownNodes.Store(int64(v.knownNodes))
	m.clusterOK.Store(v.ok)
}

// Status is the JSON document served on /status.
type Status struct {
	ID           string       `json:"id"`
	ClusterState string       `json:"cluster_state"`
	CurrentEpoch uint64       `json:"current_epoch"`
	ConfigEpoch  uint64       `json:"config_epoch"`
	Role         string       `json:"role"`
	SlotsOwned   int          `json:"slots_owned"`
	Keys         int          `json:"keys"`
	Nodes        []StatusNode `json:"nodes"`
}

// StatusNode is one known node in Status.
type StatusNode struct {
	ID          string   `json:"id"`
	Addr        string   `json:"addr"`
	Flags       []string `json:"flags"`
	Master      string   `json:"master,omitempty"`
	ConfigEpoch uint64   `json:"config_epoch"`
	Slots       string   `json:"slots,omitempty"`
}

// Status returns the node's current status from the published view.
func (n *Node) Status() Status {
	v := n.view.Load()
	st := Status{
		ID: v.self.String(), ClusterState: "fail", CurrentEpoch: v.currentEpoch, ConfigEpoch: v.configEpoch,
		Role: n.role(), SlotsOwned: v.mySlots, Keys: n.store.Len(),
	}
	if v.ok {
		st.ClusterState = "ok"
	}
	for _, nv := range v.nodes {
		sn := StatusNode{
			ID:          nv.ID.String(),
			Addr:        netip.AddrPortFrom(nv.Addr.IP, nv.Addr.Port).String() + "@" + strconv.Itoa(int(nv.Addr.BusPort)),
			Flags:       strings.Split(string(clusterview.AppendFlags(nil, nv.Myself, nv.Flags)), ","),
			ConfigEpoch: nv.ConfigEpoch, Slots: ring.FormatRanges(nv.Slots),
		}
		if !nv.Master.IsZero() {
			sn.Master = nv.Master.String()
		}
		st.Nodes = append(st.Nodes, sn)
	}
	return st
}

func (n *Node) httpMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		n.metrics.set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(n.Status())
	})
	// The standard Go profiles, for operators (the --http listener is
	// off by default and usually bound to loopback).
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// failover counts election steps, votes and promotions, and times
// elections from their first request to the promotion.
func (m *nodeMetrics) failover(e *gossip.FailoverEvent) {
	switch e.Kind {
	case gossip.FailoverNote:
		m.set.GetOrCreateCounter(`hearsay_failover_steps_total{step="` + metricLabel(e.Reason) + `"}`).Inc()
		if e.Reason == failover.NoteElectionStarted || e.Reason == failover.NoteManualStarted {
			m.electionStart.Store(time.Now().UnixNano())
		}
	case gossip.FailoverVote:
		if e.Granted {
			m.set.GetOrCreateCounter(`hearsay_failover_votes_granted_total`).Inc()
		} else {
			m.set.GetOrCreateCounter(`hearsay_failover_votes_refused_total{reason="` + metricLabel(e.Reason) + `"}`).Inc()
		}
	case gossip.FailoverMigrated:
		m.set.GetOrCreateCounter(`hearsay_replica_migrations_total`).Inc()
	case gossip.FailoverPromoted, gossip.FailoverTakeover:
		m.set.GetOrCreateCounter(`hearsay_failover_promotions_total`).Inc()
		if t := m.electionStart.Swap(0); t != 0 {
			m.set.GetOrCreateHistogram(`hearsay_failover_election_seconds`).Update(time.Since(time.Unix(0, t)).Seconds())
		}
	}
}

// metricLabel turns a reason text into a label value: lowercase words
// joined by underscores.
func metricLabel(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		case len(b) > 0 && b[len(b)-1] != '_':
			b = append(b, '_')
		}
	}
	for len(b) > 0 && b[len(b)-1] == '_' {
		b = b[:len(b)-1]
	}
	return string(b)
}
