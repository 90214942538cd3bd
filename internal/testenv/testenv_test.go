package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestStrictFails runs a child test that skips for the environment, once
// plain (it must skip) and once with HEARSAY_CI_STRICT=1 (it must fail).
func TestStrictFails(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		RequireBinary(t, "no-such-binary-hearsay-testenv")
		t.Fatal("RequireBinary returned for a missing binary")
	}
	for _, strict := range []bool{false, true} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStrictFails$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", StrictVar+"=")
		if strict {
			cmd.Env = append(cmd.Env, StrictVar+"=1")
		}
		out, err := cmd.CombinedOutput()
		s := string(out)
		switch {
		case !strict && (err != nil || !strings.Contains(s, "--- SKIP")):
			t.Fatalf("without strict mode: err %v, want a skip:\n%s", err, s)
		case strict && (err == nil || !strings.Contains(s, "--- FAIL") || !strings.Contains(s, "no-such-binary")):
			t.Fatalf("with strict mode: err %v, want a failure naming the binary:\n%s", err, s)
		}
	}
}
