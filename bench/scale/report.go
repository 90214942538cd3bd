package scale

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hearsay/hearsay/bench/compare"
)

// WriteMarkdown prints a line saying what ran, the markdown table of
// issue 10 and the rows' notes.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "hearsay %s (`--heartbeat udp`) vs Redis %s, same run, %s, %d CPUs, load average %s at start and %s at end, took %v;\n",
		r.HearsayRev, r.RedisVersion, r.Start.UTC().Format("2006-01-02 15:04 MST"), r.CPUs, r.LoadStart, r.LoadEnd,
		(time.Duration(r.ElapsedS * float64(time.Second))).Round(time.Second))
	fmt.Fprintf(&b, "node timeout %v, no replicas, settle %v, idle window %v; bus bytes: %s.\n\n",
		seconds(r.NodeTimeoutS), seconds(r.SettleS), seconds(r.WindowS), r.Counting)
	b.WriteString("| system | nodes | idle bus bytes/node/s (TCP) | idle bus bytes/node/s (UDP) | idle CPU per node | ctx switches/node/s | RSS/node | PSS/node | anon RSS/node | create time | all-known time |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, row := range r.Rows {
		if row.Failed != "" {
			fmt.Fprintf(&b, "| %s | %d | — | — | — | — | — | — | — | failed (note) | — |\n", row.System, row.Nodes)
			continue
		}
		tcp, udp := "n/a", "n/a"
		if row.Counted {
			tcp, udp = compare.Group(row.TCPBytesPerNodeS), compare.Group(row.UDPBytesPerNodeS)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %.2f %% | %s | %.1f MiB | %.1f MiB | %.1f MiB | %.2f s | %.2f s |\n", row.System, row.Nodes, tcp, udp,
			row.CPUPercentPerNode, compare.Group(row.CtxSwitchesPerNodeS), row.RSSBytesPerNode/(1<<20),
			row.PSSBytesPerNode/(1<<20), row.AnonBytesPerNode/(1<<20), row.CreateS, row.AllKnownS)
	}
	for _, row := range r.Rows {
		if row.Failed != "" {
			fmt.Fprintf(&b, "\nnote (%d %s nodes): not measured: %s\n", row.Nodes, row.System, row.Failed)
		}
		for _, n := range row.Notes {
			fmt.Fprintf(&b, "\nnote (%d %s nodes): %s\n", row.Nodes, row.System, n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond)
}
