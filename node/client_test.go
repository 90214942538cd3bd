package node_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// Requests larger than the read size arrive in many pieces: a 3 MB SET,
// an MSET of 50,000 pairs, then small commands pipelined behind them in
// the same stream, and a protocol error in the middle of a large request.
// Each gets the right reply, in order. (The node moves such requests out
// of gnet's buffer and resumes parsing instead of starting over on every
// read; BenchmarkParseArrivingInPieces and the README time that.)
func TestLargeRequestsInPieces(t *testing.T) {
	dir, err := os.MkdirTemp(t.TempDir(), "big")
	if err != nil {
		t.Fatal(err)
	}
	p := startNode(t, freePort(t), dir)
	if r, err := rawCommand(p.addr(), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); r != "+OK" {
		t.Fatalf("ADDSLOTSRANGE: %q %v", r, err)
	}
	waitAgree(t, []*proc{p}, 10*time.Second)

	cmd := func(args ...string) []byte {
		var b bytes.Buffer
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		return b.Bytes()
	}
	big := strings.Repeat("0123456789abcdef", 3<<20/16)
	mset := []string{"MSET"}
	for i := range 50000 {
		mset = append(mset, fmt.Sprintf("{m}k%d", i), fmt.Sprint(i))
	}
	var stream []byte
	stream = append(stream, cmd("SET", "big", big)...)
	stream = append(stream, cmd("STRLEN", "big")...)
	stream = append(stream, cmd(mset...)...)
	stream = append(stream, cmd("GET", "{m}k49999")...)
	stream = append(stream, cmd("PING")...)
	want := "+OK\r\n:" + fmt.Sprint(len(big)) + "\r\n+OK\r\n$5\r\n49999\r\n+PONG\r\n"

	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // a bound for a hang
	go func() {
		for off := 0; off < len(stream); off += 7000 {
			if _, err := c.Write(stream[off:min(off+7000, len(stream))]); err != nil {
				return
			}
		}
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("replies %q, %v; want %q", got, err, want)
	}

	// A bad argument header deep inside a large request: the protocol
	// error, then the connection closes.
	good := cmd(mset[:20001]...)
	bad := bytes.Replace(good, []byte("$8\r\n{m}k9999\r\n"), []byte("?8\r\n{m}k9999\r\n"), 1)
	if bytes.Equal(bad, good) {
		t.Fatal("test bug: nothing replaced")
	}
	c2, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(30 * time.Second))
	go func() {
		for off := 0; off < len(bad); off += 5000 {
			if _, err := c2.Write(bad[off:min(off+5000, len(bad))]); err != nil {
				return
			}
		}
	}()
	line, err := bufio.NewReader(c2).ReadString('\n')
	if line != "-ERR Protocol error: expected '$', got '?'\r\n" {
		t.Fatalf("bad request: %q %v", line, err)
	}
	if r, err := rawCommand(p.addr(), "GET", "{m}k1"); r != "$1" {
		t.Fatalf("node after the bad request: %q %v", r, err)
	}
}
