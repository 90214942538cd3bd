package command

import (
	"os"
	"strings"
	"testing"
)

// compatRows returns the command names that have a row in
// docs/compatibility.md: the backquoted first cell of each table row.
func compatRows(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the compatibility page: %v", err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			if name, _, ok := strings.Cut(rest, "`"); ok {
				rows[name] = true
			}
		}
	}
	return rows
}

// TestCompatDocListsEveryCommand keeps docs/compatibility.md complete:
// every command and subcommand in the table needs a row there.
func TestCompatDocListsEveryCommand(t *testing.T) {
	rows := compatRows(t, "../../docs/compatibility.md")
	for _, c := range defaultTable {
		names := []string{c.Name}
		for sub := range c.Sub {
			if sub != "help" {
				names = append(names, c.Name+" "+sub)
			}
		}
		for _, n := range names {
			want := strings.ToUpper(n)
			if !rows[want] {
				t.Errorf("docs/compatibility.md has no row for %s: add \"| `%s` | supported/differs/refused | differences |\" to its table", want, want)
			}
		}
	}
}
