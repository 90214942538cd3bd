package bpf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearsay/hearsay/internal/testenv"
)

// TestCheckGeneratedWithoutLibbpf runs check-generated.sh in a mount
// namespace where /usr/include/bpf is an empty tmpfs: a machine with clang
// but without libbpf-dev. The vendored headers must be enough, and the
// regenerated object must equal the committed one.
func TestCheckGeneratedWithoutLibbpf(t *testing.T) {
	testenv.SkipShort(t, "regenerating the XDP object")
	testenv.RequireRoot(t, "a mount namespace hides /usr/include/bpf")
	testenv.RequireBinary(t, "clang", "unshare")
	if _, err := os.Stat("/usr/include/bpf"); err != nil {
		// Nothing to hide: this machine already lacks libbpf-dev.
		out, err := exec.Command("sh", "check-generated.sh").CombinedOutput()
		if err != nil {
			t.Fatalf("check-generated.sh: %v\n%s", err, out)
		}
		return
	}
	cmd := exec.Command("unshare", "-m", "sh", "-c",
		"mount -t tmpfs none /usr/include/bpf && test ! -e /usr/include/bpf/bpf_helpers.h && sh check-generated.sh")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("check-generated.sh without /usr/include/bpf: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "matches heartbeat.c") {
		t.Fatalf("check-generated.sh did not compare the object:\n%s", out)
	}
}

// TestCheckGeneratedSkipsWithoutClang runs the check with a PATH that has
// go and sh but no clang: it must skip with a message saying so, and fail
// instead under HEARSAY_CI_STRICT=1.
func TestCheckGeneratedSkipsWithoutClang(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.Skipf(t, "go not in PATH: %v", err)
	}
	shBin := testenv.RequireBinary(t, "sh")
	dir := t.TempDir()
	for _, b := range []string{goBin, shBin} {
		if err := os.Symlink(b, filepath.Join(dir, filepath.Base(b))); err != nil {
			t.Fatal(err)
		}
	}
	for _, strict := range []string{"", "1"} {
		cmd := exec.Command(filepath.Join(dir, "sh"), "check-generated.sh")
		cmd.Env = append(os.Environ(), "PATH="+dir, "HEARSAY_CI_STRICT="+strict)
		out, err := cmd.CombinedOutput()
		if !strings.Contains(string(out), "clang not found") {
			t.Fatalf("strict=%q: no clang message:\n%s", strict, out)
		}
		if (err != nil) != (strict == "1") {
			t.Fatalf("strict=%q: err=%v\n%s", strict, err, out)
		}
	}
}
