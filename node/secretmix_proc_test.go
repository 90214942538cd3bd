package node_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/internal/testenv"
)

// TestSecretMeetsNoSecret: a node with a cluster secret MEETs one without.
// The one without accepts the MEET (it checks nothing) but the other
// refuses every answer; its handshake times out, and the node without a
// secret drops the half-met node after the handshake timeout instead of
// keeping a fail? ghost forever, while the refusals are logged a few
// times, not once a second.
func TestSecretMeetsNoSecret(t *testing.T) {
	testenv.SkipShort(t, "starts two node processes")
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startNode(t, freePort(t), t.TempDir(), "--cluster-secret-file", secret)
	b := startNode(t, freePort(t), t.TempDir())
	if r, err := rawCommand(a.addr(), "CLUSTER", "MEET", "127.0.0.1", fmt.Sprint(b.port)); r != "+OK" {
		t.Fatalf("MEET: %q %v", r, err)
	}
	waitFor(t, 5*time.Second, "b adds a from its MEET", func() (bool, string) {
		nodes := do(t, b, "CLUSTER", "NODES").(string)
		return strings.Count(nodes, "\n") == 2, nodes
	})
	took := waitFor(t, 10*time.Second, "b drops a once the handshake timeout (1 s) has passed", func() (bool, string) {
		nodes := do(t, b, "CLUSTER", "NODES").(string)
		return strings.Count(nodes, "\n") == 1, nodes
	})
	time.Sleep(2 * time.Second) // a's MEETs have stopped: b must not take it back
	for _, p := range []*proc{a, b} {
		if nodes := do(t, p, "CLUSTER", "NODES").(string); strings.Count(nodes, "\n") != 1 {
			t.Fatalf("node %d lists others: %s", p.port, nodes)
		}
	}
	refusals := strings.Count(readLog(a), "authentication failed")
	t.Logf("b dropped the half-met node %v after it appeared; a logged %d refusal lines", took.Round(time.Millisecond), refusals)
	if refusals > 3 {
		t.Fatalf("a logged %d refusal lines in a few seconds:\n%s", refusals, readLog(a))
	}
}
