package node

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterInfoFields sends CLUSTER INFO on a fresh connection and parses
// the reply's fields.
func clusterInfoFields(addr string) (map[string]string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	p := &pipeConn{c: c, r: bufio.NewReader(c)}
	if err := p.write([]string{"CLUSTER", "INFO"}); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	head, err := p.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(head, "$") {
		return nil, fmt.Errorf("reply %q, want a bulk string", head)
	}
	size, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil {
		return nil, err
	}
	body := make([]byte, size+2)
	if _, err := io.ReadFull(p.r, body); err != nil {
		return nil, err
	}
	f := map[string]string{}
	for _, line := range strings.Split(string(body[:size]), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			f[k] = v
		}
	}
	return f, nil
}

// TestClusterInfoAnswersWhileBusLoopBusy: CLUSTER INFO is served from the
// published view and the mirrored counters, so it answers, with current
// figures, while the bus loop is held by other work.
func TestClusterInfoAnswersWhileBusLoopBusy(t *testing.T) {
	a, addrA := runNode(t)
	_, addrB := runNode(t)
	_, portB, _ := net.SplitHostPort(addrB)
	pb, _ := strconv.Atoi(portB)
	if got, err := rawCommand(addrA, "CLUSTER", "MEET", "127.0.0.1", portB, strconv.Itoa(pb+1000)); err != nil || got != "+OK" {
		t.Fatalf("CLUSTER MEET: %q %v", got, err)
	}
	var f map[string]string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		f, err = clusterInfoFields(addrA)
		if err == nil && f["cluster_known_nodes"] == "2" && f["cluster_stats_messages_pong_received"] != "" && f["cluster_stats_messages_pong_received"] != "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node A never knew B with a PONG received: %v %v", f, err)
		}
	}

	held, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = a.exec(func(time.Duration) {
			close(held)
			<-release
		})
	}()
	<-held
	got, err := clusterInfoFields(addrA)
	close(release)
	if err != nil {
		t.Fatalf("CLUSTER INFO while the bus loop was held: %v", err)
	}
	for _, k := range []string{"cluster_known_nodes", "cluster_current_epoch", "cluster_state"} {
		if got[k] != f[k] {
			t.Errorf("%s: %q while held, %q before", k, got[k], f[k])
		}
	}
	before, _ := strconv.Atoi(f["cluster_stats_messages_pong_received"])
	now, _ := strconv.Atoi(got["cluster_stats_messages_pong_received"])
	if now < before {
		t.Errorf("PONGs received went back from %d to %d", before, now)
	}
	if got["cluster_stats_messages_sent"] == "" || got["cluster_stats_messages_sent"] == "0" {
		t.Errorf("cluster_stats_messages_sent %q, want the mirrored count", got["cluster_stats_messages_sent"])
	}
}
