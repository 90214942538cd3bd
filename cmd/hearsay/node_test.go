package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A password comes from the flag, else its file, else the environment;
// flag and file together, a file others may read, and an empty file are
// refused.
func TestCredentialResolve(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("pass", "s3cret word\n", 0o600)
	crlf := write("crlf", "s3cret\r\n", 0o400)
	open := write("open", "s3cret\n", 0o644)
	empty := write("empty", "\n", 0o600)
	env := func(k string) string {
		if k == envRequirePass {
			return "from-env"
		}
		return ""
	}
	for _, c := range []struct {
		name string
		cred credential
		want string
		err  string
	}{
		{"flag", credential{value: "flagpass"}, "flagpass", ""},
		{"file", credential{file: good}, "s3cret word", ""},
		{"file crlf", credential{file: crlf}, "s3cret", ""},
		{"env", credential{}, "from-env", ""},
		{"both", credential{value: "x", file: good}, "", "--requirepass and --requirepass-file both set"},
		{"open file", credential{file: open}, "", "mode 0644: its group or others may read the password; run chmod 600 " + open},
		{"empty file", credential{file: empty}, "", "--requirepass-file " + empty + " is empty"},
		{"missing file", credential{file: filepath.Join(dir, "nope")}, "", "--requirepass-file: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.cred.resolve("requirepass", envRequirePass, env)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
	if got, _ := (credential{}).resolve("masterauth", envMasterAuth, env); got != "" {
		t.Errorf("masterauth took %q from the environment meant for requirepass", got)
	}
}

func TestEffectiveTimerSlack(t *testing.T) {
	for _, c := range []struct {
		flag, timeout, want time.Duration
	}{
		{defaultTimerSlack, 15 * time.Second, defaultTimerSlack},
		{defaultTimerSlack, time.Second, defaultTimerSlack},
		{defaultTimerSlack, 100 * time.Millisecond, 2 * time.Millisecond}, // a fiftieth of the timeout
		{0, time.Second, 0},
	} {
		got, err := effectiveTimerSlack(c.flag, c.timeout)
		if err != nil || got != c.want {
			t.Errorf("effectiveTimerSlack(%v, %v) = %v, %v; want %v", c.flag, c.timeout, got, err, c.want)
		}
	}
	if _, err := effectiveTimerSlack(-time.Millisecond, time.Second); err == nil {
		t.Error("a negative slack was accepted")
	}
}

func TestTimerSlackFor(t *testing.T) {
	if got := timerSlackFor(1); got != defaultTimerSlack {
		t.Errorf("one P: %v, want %v", got, defaultTimerSlack)
	}
	for _, n := range []int{2, 8} {
		if got := timerSlackFor(n); got != 0 {
			t.Errorf("%d Ps: %v, want none", n, got)
		}
	}
}
