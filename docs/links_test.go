package docs

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// mdLink matches an inline Markdown link or image target: [text](target).
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// pathRef matches a token that names a repository file by its extension:
// a Markdown page, a Go, C or shell source. Header names are left out: the
// ones comments mention are system headers.
var pathRef = regexp.MustCompile(`(?:\.\./|\./)*[A-Za-z0-9_][A-Za-z0-9_./-]*\.(?:md|go|c|sh)\b`)

// skipDirs are not scanned: git metadata, and vendored third-party headers
// whose comments describe their own project.
var skipDirs = map[string]bool{".git": true, "include": true, "testdata": true, "bin": true}

// repoRoot is the module root, one directory up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod above docs/: %v", err)
	}
	return root
}

// exists reports whether rel, named from file dir, is a file in the repo:
// relative to dir or any of its ancestors up to root (comments often name
// files from the module root, or a sibling in the same package).
func exists(root, dir, rel string) (inside, found bool) {
	rel = strings.TrimSuffix(rel, ".")
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Clean(filepath.Join(d, rel))
		if r, err := filepath.Rel(root, p); err != nil || strings.HasPrefix(r, "..") {
			if d == dir {
				return false, false
			}
		} else if _, err := os.Stat(p); err == nil {
			return true, true
		}
		if d == root || len(d) < len(root) {
			return true, false
		}
	}
}

// TestReferencesStayInRepo fails when a Markdown link or a file named in a
// Go or C comment, a shell comment or a Markdown page points outside the
// repository or at a file that does not exist.
func TestReferencesStayInRepo(t *testing.T) {
	root := repoRoot(t)
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDirs[d.Name()] && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(path)
		if ext != ".md" && ext != ".go" && ext != ".c" && ext != ".sh" && ext != ".h" {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		dir := filepath.Dir(path)
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for line := 1; sc.Scan(); line++ {
			text := sc.Text()
			if ext != ".md" {
				text = comment(ext, text)
			}
			if ext == ".md" {
				for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
					target := m[1]
					if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
						continue
					}
					target, _, _ = strings.Cut(target, "#")
					checked++
					p := filepath.Clean(filepath.Join(dir, target))
					if r, err := filepath.Rel(root, p); err != nil || strings.HasPrefix(r, "..") || filepath.IsAbs(target) {
						t.Errorf("%s:%d: link %q points outside the repository", rel, line, m[1])
					} else if _, err := os.Stat(p); err != nil {
						t.Errorf("%s:%d: link %q points at a missing file", rel, line, m[1])
					}
				}
			}
			for _, loc := range pathRef.FindAllStringIndex(text, -1) {
				if e := loc[1]; e < len(text) && text[e] == '.' && e+1 < len(text) && text[e+1] != ' ' {
					continue // a dotted word such as a.b.c.d, not a file name
				}
				ref := text[loc[0]:loc[1]]
				checked++
				inside, found := exists(root, dir, ref)
				switch {
				case !inside:
					t.Errorf("%s:%d: %q points outside the repository", rel, line, ref)
				case !found:
					t.Errorf("%s:%d: %q names a file that is not in the repository", rel, line, ref)
				}
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d references checked: the scan is not finding the files", checked)
	}
}

// comment returns the comment part of a source line, or "" for code.
func comment(ext, line string) string {
	s := strings.TrimSpace(line)
	switch ext {
	case ".sh":
		if strings.HasPrefix(s, "#") {
			return s
		}
		return ""
	default:
		if i := strings.Index(line, "//"); i >= 0 && !strings.Contains(line[:i], `"`) && !strings.Contains(line[:i], "`") {
			return line[i:]
		}
		if strings.HasPrefix(s, "/*") || strings.HasPrefix(s, "*") {
			return s
		}
		return ""
	}
}
