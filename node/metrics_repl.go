package node

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/hearsay/hearsay/node/repl"
)

// replMetrics are the replication metrics.
type replMetrics struct {
	syncs [2][2]*metrics.Counter // [full][as replica]
	wait  *metrics.Histogram

	saves     *metrics.Counter
	saveDur   *metrics.Histogram
	saveBytes atomic.Int64
}

// registerRepl adds the replication metrics for r.
func (m *nodeMetrics) registerRepl(r *repl.Manager) {
	s := m.set
	for full, kind := range [2]string{"partial", "full"} {
		for asReplica, side := range [2]string{"master", "replica"} {
			m.repl.syncs[full][asReplica] = s.NewCounter(`hearsay_repl_syncs_total{kind="` + kind + `",side="` + side + `"}`)
		}
	}
	m.repl.wait = s.NewHistogram(`hearsay_repl_wait_duration_seconds`)
	m.repl.saves = s.NewCounter(`hearsay_snapshot_saves_total`)
	m.repl.saveDur = s.NewHistogram(`hearsay_snapshot_save_duration_seconds`)
	s.NewGauge(`hearsay_snapshot_last_bytes`, func() float64 { return float64(m.repl.saveBytes.Load()) })
	s.NewGauge(`hearsay_repl_offset`, func() float64 { return float64(r.Offset()) })
	s.NewGauge(`hearsay_repl_backlog_size_bytes`, func() float64 { return float64(r.Stream().Info().BacklogSize) })
	s.NewGauge(`hearsay_repl_backlog_histlen_bytes`, func() float64 { return float64(r.Stream().Info().HistLen) })
	s.NewGauge(`hearsay_repl_retained_bytes`, func() float64 { return float64(r.Stream().Info().Retained) })
	s.NewGauge(`hearsay_repl_connected_replicas`, func() float64 { return float64(len(r.Replicas())) })
	s.NewGauge(`hearsay_repl_partial_sync_errors_total`, func() float64 { return float64(r.PartialSyncErrors.Load()) })
	s.NewGauge(`hearsay_repl_replicas_dropped_total`, func() float64 { return float64(r.ReplicaDrops.Load()) })
	s.RegisterMetricsWriter(func(w io.Writer) {
		for _, ri := range r.Replicas() {
			fmt.Fprintf(w, "hearsay_repl_replica_offset{replica=%q} %d\n", ri.Addr, ri.Offset)
			fmt.Fprintf(w, "hearsay_repl_replica_lag_bytes{replica=%q} %d\n", ri.Addr, ri.Behind)
			fmt.Fprintf(w, "hearsay_repl_replica_ack_age_seconds{replica=%q} %.3f\n", ri.Addr, ri.Lag.Seconds())
		}
	})
}

func (m *nodeMetrics) replSync(full, asReplica bool) {
	f, a := 0, 0
	if full {
		f = 1
	}
	if asReplica {
		a = 1
	}
	m.repl.syncs[f][a].Inc()
}

func (m *nodeMetrics) replWait(d time.Duration) { m.repl.wait.Update(d.Seconds()) }

func (m *nodeMetrics) snapshotSaved(size int64, d time.Duration) {
	m.repl.saves.Inc()
	m.repl.saveDur.Update(d.Seconds())
	m.repl.saveBytes.Store(size)
}
