package node

import (
	"os"
	"strings"
	"testing"

	"github.com/hearsay/hearsay/node/repl"
)

// TestCompatDocListsEveryClusterSubcommand keeps the CLUSTER table of
// docs/compatibility.md complete.
func TestCompatDocListsEveryClusterSubcommand(t *testing.T) {
	b, err := os.ReadFile("../docs/compatibility.md")
	if err != nil {
		t.Fatalf("reading the compatibility page: %v", err)
	}
	doc := string(b)
	for sub := range clusterSubs {
		want := "| `CLUSTER " + strings.ToUpper(sub) + "` |"
		if !strings.Contains(doc, want) {
			t.Errorf("docs/compatibility.md has no row for CLUSTER %s: add \"%s supported/differs/refused | differences |\"", strings.ToUpper(sub), want)
		}
	}
}

// TestCompatDocListsNodeCommands covers the commands the node registers
// on top of the command table: snapshots and replication.
func TestCompatDocListsNodeCommands(t *testing.T) {
	b, err := os.ReadFile("../docs/compatibility.md")
	if err != nil {
		t.Fatalf("reading the compatibility page: %v", err)
	}
	cmds := append((&saver{}).commands(), (&repl.Manager{}).Commands()...)
	for _, c := range cmds {
		want := "| `" + strings.ToUpper(c.Name) + "` |"
		if !strings.Contains(string(b), want) {
			t.Errorf("docs/compatibility.md has no row for %s: add \"%s supported/differs/refused | differences |\"", strings.ToUpper(c.Name), want)
		}
	}
}
