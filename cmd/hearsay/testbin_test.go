package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// testLdflags stamp the test binary as the Makefile's build does, with
// values TestVersionFlag looks for.
const testLdflags = "-X main.version=v9.8.7 -X main.commit=feedface"

var testBin struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testBin.dir != "" {
		os.RemoveAll(testBin.dir)
	}
	os.Exit(code)
}

// hearsayBinary builds the hearsay binary once per test run, for the
// tests that run it as a process.
func hearsayBinary(t *testing.T) string {
	t.Helper()
	testBin.once.Do(func() {
		if testBin.dir, testBin.err = os.MkdirTemp("", "hearsay-cmd-test"); testBin.err != nil {
			return
		}
		testBin.path = filepath.Join(testBin.dir, "hearsay")
		testBin.out, testBin.err = exec.Command("go", "build", "-ldflags", testLdflags, "-o", testBin.path, ".").CombinedOutput()
	})
	if testBin.err != nil {
		t.Fatalf("go build: %v\n%s", testBin.err, testBin.out)
	}
	return testBin.path
}
