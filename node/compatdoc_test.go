package node

import (
	"os"
	"strings"
	"testing"
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
