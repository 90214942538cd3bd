package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/gossip/wire"
)

// readmeNodeCommands returns the shell lines of the README's "Running
// nodes" block (comments stripped): the commands an operator runs to
// start a node.
func readmeNodeCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\n## Running nodes\n.*?\n```\n(.*?)```\n").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no code block under \"## Running nodes\"")
	}
	var lines []string
	for _, l := range strings.Split(string(m[1]), "\n") {
		if i := strings.Index(l, "#"); i >= 0 {
			l = l[:i]
		}
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// startReadmeNode runs the README's commands in dir with the node's
// address 10.0.0.5 replaced by 127.0.0.1 (the test's only address) and
// port 7000 by port, edited by edit, and returns the running node.
func startReadmeNode(t *testing.T, dir string, port int, edit func([]string) []string) *proc {
	t.Helper()
	var p *proc
	for _, l := range readmeNodeCommands(t) {
		l = strings.ReplaceAll(l, "10.0.0.5", "127.0.0.1")
		switch {
		case strings.HasPrefix(l, "hearsay cluster "):
			// Joins the other nodes; this test has one.
		case strings.HasPrefix(l, "hearsay node "):
			args := strings.Fields(l)[2:]
			for i := range args {
				if args[i] == "7000" && i > 0 && args[i-1] == "--port" {
					args[i] = strconv.Itoa(port)
				}
				if i > 0 && args[i-1] == "--cluster-secret-file" && !filepath.IsAbs(args[i]) {
					// The operator runs the node where the file is;
					// spawnNode does not change directory.
					args[i] = filepath.Join(dir, args[i])
				}
			}
			if edit != nil {
				args = edit(args)
			}
			// The README's command has no --dir: the node keeps its
			// state in the directory it runs in, here dir.
			args = append(args, "--dir", dir, "--node-timeout", "1s", "--heartbeat", "off")
			p = startNode(t, port, dir, args...)
		default:
			cmd := exec.Command("sh", "-c", l)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("README command %q: %v\n%s", l, err, out)
			}
		}
	}
	if p == nil {
		t.Fatal("README's \"Running nodes\" block starts no node")
	}
	return p
}

// forgeTakeover sends the attack on an unauthenticated bus over one
// connection to busAddr: a MEET and a PING from an invented node, then an
// UPDATE in which that node claims slots 0-16383 at configEpoch 1000.
func forgeTakeover(t *testing.T, busAddr string) {
	t.Helper()
	var evil wire.NodeID
	for i := range evil {
		evil[i] = 0xe0 + byte(i%16)
	}
	hdr := wire.Header{Sender: evil, CurrentEpoch: 1000, ConfigEpoch: 1000, Version: 1, Flags: wire.FlagMaster,
		Addr: wire.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 1, BusPort: 10001}}
	claim := wire.SlotClaim{Owner: evil, ConfigEpoch: 1000, Version: 1, Ranges: []wire.SlotRange{{Start: 0, End: 16383}}}
	enc := wire.NewEncoder(nil)
	var frames []byte
	for _, m := range []wire.Message{
		{Type: wire.TypeMeet, Header: hdr},
		{Type: wire.TypePing, Header: hdr},
		{Type: wire.TypeUpdate, Header: hdr, Claims: []wire.SlotClaim{claim}},
	} {
		var err error
		if frames, err = enc.AppendFrame(frames, &m); err != nil {
			t.Fatal(err)
		}
	}
	c, err := net.DialTimeout("tcp", busAddr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.Write(frames) // a node that refuses them may close the link at once
	time.Sleep(500 * time.Millisecond)
}

// ownsAllSlots reports whether p's CLUSTER NODES gives every slot to p
// itself and CLUSTER INFO says the cluster is ok.
func ownsAllSlots(t *testing.T, p *proc) (bool, string) {
	ctx := context.Background()
	nodes, err1 := client(t, p).ClusterNodes(ctx).Result()
	info, err2 := client(t, p).ClusterInfo(ctx).Result()
	var mine bool
	for _, l := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(l)
		if len(f) >= 9 && strings.Contains(f[2], "myself") && strings.Join(f[8:], " ") == "0-16383" {
			mine = true
		}
	}
	return err1 == nil && err2 == nil && mine && strings.Contains(info, "cluster_state:ok"), nodes + info
}

// A node started as the README says refuses the forged frames that take
// every slot of a node without a secret; the same node without the
// secret (allowed on loopback) loses them, which shows the frames work.
func TestReadmeNodesRefuseForgedFrames(t *testing.T) {
	for _, c := range []struct {
		name   string
		edit   func([]string) []string
		secure bool
	}{
		{"as the README says", nil, true},
		{"without the secret", func(args []string) []string {
			var out []string
			for i := 0; i < len(args); i++ {
				if args[i] == "--cluster-secret-file" {
					i++
					continue
				}
				out = append(out, args[i])
			}
			return out
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			port := freePort(t)
			p := startReadmeNode(t, dir, port, c.edit)
			if r, err := rawCommand(p.addr(), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil || r != "+OK" {
				t.Fatalf("ADDSLOTSRANGE: %q %v", r, err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for ok, _ := ownsAllSlots(t, p); !ok; ok, _ = ownsAllSlots(t, p) {
				if time.Now().After(deadline) {
					t.Fatal("node never reached cluster_state:ok with all slots")
				}
				time.Sleep(50 * time.Millisecond)
			}
			forgeTakeover(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
			if c.secure {
				time.Sleep(time.Second)
				if ok, state := ownsAllSlots(t, p); !ok {
					t.Fatalf("the forged frames took the node's slots:\n%s", state)
				}
				return
			}
			deadline = time.Now().Add(5 * time.Second)
			for ok, state := ownsAllSlots(t, p); ok; ok, state = ownsAllSlots(t, p) {
				if time.Now().After(deadline) {
					t.Fatalf("the forged frames had no effect on a node without a secret, so they prove nothing:\n%s", state)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// refusedStart runs `hearsay node` with args, expects it to exit non-zero
// within 10 s, and returns its output.
func refusedStart(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, append([]string{"node", "--heartbeat", "off"}, args...)...).CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("node %v started (%v):\n%s", args, err, out)
	}
	return string(out)
}

// A node whose bus is reachable beyond loopback needs a secret or
// --insecure-bus; a secret file others may read, or a short one, is
// refused with the file named and the fix.
func TestNodeRefusesInsecureBus(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	wild := []string{"--port", strconv.Itoa(port), "--dir", dir, "--bind", "0.0.0.0", "--announce-ip", "127.0.0.1"}
	out := refusedStart(t, wild...)
	for _, w := range []string{"refusing to start", "on every interface (--bind 0.0.0.0)", "--cluster-secret-file", "--insecure-bus", "head -c 32 /dev/urandom"} {
		if !strings.Contains(out, w) {
			t.Errorf("refusal lacks %q:\n%s", w, out)
		}
	}

	secret := filepath.Join(dir, "cluster.secret")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = refusedStart(t, append(wild, "--cluster-secret-file", secret)...)
	if !strings.Contains(out, secret+" has mode 0644") || !strings.Contains(out, "chmod 600 "+secret) {
		t.Errorf("world-readable secret: %s", out)
	}
	if err := os.WriteFile(filepath.Join(dir, "short"), []byte("tooshort\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = refusedStart(t, append(wild, "--cluster-secret-file", filepath.Join(dir, "short"))...)
	if !strings.Contains(out, "holds 8 bytes, fewer than the 16") || !strings.Contains(out, "head -c 32 /dev/urandom > "+filepath.Join(dir, "short")) {
		t.Errorf("short secret: %s", out)
	}

	if err := os.Chmod(secret, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startNode(t, port, dir, append(wild[4:], "--cluster-secret-file", secret)...)
	p.stop(t)
	p = startNode(t, port, dir, append(wild[4:], "--insecure-bus")...)
	p.stop(t)
}

// startAuthNode starts a node whose client port wants a password and waits
// until it answers PING with NOAUTH.
func startAuthNode(t *testing.T, port int, dir string, extra ...string) *proc {
	t.Helper()
	p := spawnNode(t, port, dir, append([]string{binary, "node", "--port", strconv.Itoa(port), "--dir", dir,
		"--node-timeout", "1s", "--heartbeat", "off"}, extra...))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r, err := rawCommand(p.addr(), "PING"); err == nil && strings.HasPrefix(r, "-NOAUTH") {
			return p
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("node on %d did not start:\n%s", port, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --requirepass-file and HEARSAY_REQUIREPASS set the password without it
// showing in the node's command line, and `hearsay cluster` authenticates
// with -a or REDISCLI_AUTH.
func TestNodePasswordOffTheCommandLine(t *testing.T) {
	const pass = "correct horse battery"
	dir := t.TempDir()
	file := filepath.Join(dir, "requirepass")
	if err := os.WriteFile(file, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		env   string
		extra []string
	}{
		{"file", "", []string{"--requirepass-file", file}},
		{"environment", pass, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("HEARSAY_REQUIREPASS", c.env)
			t.Setenv("REDISCLI_AUTH", "")
			port := freePort(t)
			p := startAuthNode(t, port, t.TempDir(), c.extra...)
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.cmd.Process.Pid))
			if err != nil || strings.Contains(string(cmdline), "horse") {
				t.Errorf("command line %q (%v) shows the password", cmdline, err)
			}
			r, err := rawPipeline(p.addr(), []string{"AUTH", pass}, []string{"PING"})
			if err != nil || len(r) != 2 || r[0] != "+OK" || r[1] != "+PONG" {
				t.Fatalf("AUTH, PING: %q %v", r, err)
			}
			cli := func(env string, args ...string) (string, error) {
				cmd := exec.Command(binary, append([]string{"cluster", "nodes", p.addr()}, args...)...)
				cmd.Env = append(os.Environ(), "NO_COLOR=1", "REDISCLI_AUTH="+env)
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			if out, err := cli(""); err == nil || !strings.Contains(out, "NOAUTH") {
				t.Errorf("cluster nodes without a password: %v\n%s", err, out)
			}
			if out, err := cli("", "-a", pass); err != nil || !strings.Contains(out, "myself") || !strings.Contains(out, "may not be safe") {
				t.Errorf("cluster nodes -a: %v\n%s", err, out)
			}
			if out, err := cli("", "--password", pass, "--no-auth-warning"); err != nil || strings.Contains(out, "may not be safe") {
				t.Errorf("cluster nodes --password --no-auth-warning: %v\n%s", err, out)
			}
			if out, err := cli(pass); err != nil || !strings.Contains(out, "myself") || strings.Contains(out, "may not be safe") {
				t.Errorf("cluster nodes with REDISCLI_AUTH: %v\n%s", err, out)
			}
		})
	}
	out := refusedStart(t, "--port", strconv.Itoa(freePort(t)), "--dir", dir, "--requirepass", "x", "--requirepass-file", file)
	if !strings.Contains(out, "--requirepass and --requirepass-file both set") {
		t.Errorf("both: %s", out)
	}
}

// A nodes.json claim by a node the file does not list stops the start,
// naming the file and the claim, instead of losing those slots.
func TestNodeRefusesClaimOfUnknownOwner(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p := startNode(t, port, dir)
	if r, err := rawCommand(p.addr(), "CLUSTER", "ADDSLOTSRANGE", "0", "99"); err != nil || r != "+OK" {
		t.Fatalf("ADDSLOTSRANGE: %q %v", r, err)
	}
	p.stop(t)
	path := filepath.Join(dir, "nodes.json")
	var st map[string]any
	if err := json.Unmarshal(mustReadFile(t, path), &st); err != nil {
		t.Fatal(err)
	}
	claims, _ := st["claims"].([]any)
	own, _ := claims[0].(map[string]any)
	if len(claims) != 1 || own == nil {
		t.Fatalf("nodes.json claims: %v", st["claims"])
	}
	// The stranger's claim, with the field names of the node's own.
	stranger := strings.Repeat("ab", 20)
	other := map[string]any{}
	for k, v := range own {
		other[k] = v
	}
	other["owner"], other["slots"] = stranger, "100-199"
	st["claims"] = []any{own, other}
	if err := os.WriteFile(path, mustJSON(t, st), 0o644); err != nil {
		t.Fatal(err)
	}
	out := refusedStart(t, "--port", strconv.Itoa(port), "--dir", dir)
	for _, w := range []string{path, "claim of slots 100-199 by node " + stranger, "does not list"} {
		if !strings.Contains(out, w) {
			t.Errorf("refusal lacks %q:\n%s", w, out)
		}
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
