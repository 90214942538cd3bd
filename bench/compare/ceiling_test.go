package compare

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearsay/hearsay/bench/childproc"
)

func resp(args ...string) string {
	var b strings.Builder
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}

func TestCeilingServe(t *testing.T) {
	in := resp("GET", "k") + resp("set", "k", "xxx") + resp("GET", "k") + resp("PING") +
		resp("CONFIG", "GET", "save") + resp("DEL", "k") + resp("SET", "k", "")
	want := "$-1\r\n+OK\r\n$3\r\nxxx\r\n+PONG\r\n*2\r\n$4\r\nsave\r\n$0\r\n\r\n-ERR unknown command '\"DEL\"'\r\n+OK\r\n"
	store := map[string][]byte{}
	n, out, err := ceilingServe([]byte(in), nil, store)
	if err != nil || n != len(in) || string(out) != want {
		t.Fatalf("ceilingServe = %d, %q, %v; want %d, %q", n, out, err, len(in), want)
	}
	if v, ok := store["k"]; !ok || len(v) != 0 {
		t.Errorf("store[k] = %q, %v; want the empty value of the last SET", v, ok)
	}
}

// Every split of the input gives the same replies as the whole, and the
// unconsumed part is always a prefix of one command.
func TestCeilingServeSplit(t *testing.T) {
	in := resp("SET", "key:__rand_int__", "xxx") + resp("GET", "key:__rand_int__") + resp("GET", "nope")
	want, err := serveInPieces([]byte(in), len(in))
	if err != nil {
		t.Fatal(err)
	}
	for cut := 0; cut <= len(in); cut++ {
		got, err := serveInPieces([]byte(in), cut)
		if err != nil || got != want {
			t.Fatalf("cut at %d: %q, %v; want %q", cut, got, err, want)
		}
	}
}

// serveInPieces feeds in[:cut] and then the rest, as the loop does with
// what it keeps between reads.
func serveInPieces(in []byte, cut int) (string, error) {
	store := map[string][]byte{}
	n, out, err := ceilingServe(in[:cut], nil, store)
	if err != nil {
		return "", err
	}
	rest := append(append([]byte(nil), in[n:cut]...), in[cut:]...)
	m, out, err := ceilingServe(rest, out, store)
	if err != nil {
		return "", err
	}
	if m != len(rest) {
		return "", strconv.ErrSyntax
	}
	return string(out), nil
}

func TestCeilingServeRejects(t *testing.T) {
	for _, bad := range []string{
		"PING\r\n",                       // inline commands are not spoken
		"*0\r\n",                         // no command
		"*1\r\n+PING\r\n",                // not a bulk string
		"*1\r\n$4\r\nPINGxx",             // no CRLF after the bulk
		"*x\r\n",                         // not a number
		"*1\r\n$-2\r\n",                  // negative length
		"*1\r\n$2000000\r\n",             // longer than any benchmark argument
		"*1\r" + strings.Repeat("1", 40), // a header that never ends
		"*99999\r\n",
	} {
		store := map[string][]byte{}
		n, out, err := ceilingServe([]byte(bad), nil, store)
		if err == nil {
			t.Errorf("ceilingServe(%q) = %d, %q, nil; want a protocol error", bad, n, out)
		}
	}
	// A prefix of a valid command is not an error: it waits for more.
	for _, part := range []string{"", "*", "*2\r", "*2\r\n$3\r\nGE", "*2\r\n$3\r\nGET\r\n$1\r\nk\r"} {
		n, out, err := ceilingServe([]byte(part), nil, map[string][]byte{})
		if err != nil || n != 0 || len(out) != 0 {
			t.Errorf("ceilingServe(%q) = %d, %q, %v; want to wait for more", part, n, out, err)
		}
	}
}

func FuzzCeilingServe(f *testing.F) {
	f.Add([]byte(resp("SET", "a", "b")+resp("GET", "a")), 3)
	f.Add([]byte("*1\r\n$4\r\nPING\r\n"), 7)
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$-1\r\n"), 0)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		n, _, err := ceilingServe(in, nil, map[string][]byte{})
		if n < 0 || n > len(in) {
			t.Fatalf("consumed %d of %d", n, len(in))
		}
		if err != nil {
			return
		}
		if cut < 0 || cut > len(in) {
			cut = len(in) / 2
		}
		whole, err1 := serveInPieces(in[:n], n)
		split, err2 := serveInPieces(in[:n], cut%(n+1))
		if err1 != nil || err2 != nil || whole != split {
			t.Fatalf("whole %q (%v) and split %q (%v) differ", whole, err1, split, err2)
		}
	})
}

func TestCeilingLive(t *testing.T) {
	port, err := childproc.PortBlock(1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := startCeiling(port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ctx := context.Background()
	if r, err := respCall(ctx, port, "PING"); err != nil || r != "PONG" {
		t.Fatalf("PING = %v, %v", r, err)
	}
	// A pipeline sent one byte at a time is answered in full and in order.
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	big := strings.Repeat("v", 200000)
	in := resp("SET", "k", big) + resp("GET", "k") + resp("GET", "other")
	for i := 0; i < len(in); i += 997 {
		if _, err := conn.Write([]byte(in[i:min(i+997, len(in))])); err != nil {
			t.Fatal(err)
		}
	}
	want := "+OK\r\n$200000\r\n" + big + "\r\n$-1\r\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, []byte(want)) {
		t.Fatalf("replies %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
	// Bad input closes the connection; the responder goes on serving.
	bad, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_ = bad.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = bad.Write([]byte("HELLO\r\n"))
	if n, err := bad.Read(make([]byte, 16)); err == nil {
		t.Errorf("bad input: read %d bytes, want the connection closed", n)
	}
	if r, err := respCall(ctx, port, "GET", "k"); err != nil || r != big {
		t.Errorf("GET after a bad client = %d bytes, %v", len(r.(string)), err)
	}
	if cpu, err := c.CPUSeconds(); err != nil || cpu < 0 {
		t.Errorf("CPUSeconds = %v, %v", cpu, err)
	}
	c.Stop()
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
		t.Error("the port still accepts after Stop")
	}
}
