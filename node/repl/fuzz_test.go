package repl

import (
	"bytes"
	"io"
	"testing"

	"github.com/hearsay/hearsay/node/command"
	"github.com/hearsay/hearsay/node/store"
)

// FuzzMasterStream feeds arbitrary bytes to a replica as its master's
// stream: whatever they are, applying them must not panic, and a GETACK in
// them must not write to a link that is not there.
func FuzzMasterStream(f *testing.F) {
	f.Add(encode("SET", "a", "1", "PXAT", "1"))
	f.Add(append(encode("SELECT", "0"), encode("DEL", "a", "b")...))
	f.Add(encode("REPLCONF", "GETACK", "*"))
	f.Add([]byte("*2\r\n$4\r\nPING\r\n$"))
	f.Fuzz(func(t *testing.T, in []byte) {
		st := store.New()
		d := command.New(st, command.Options{})
		m := New(Config{Store: st, Dispatcher: d})
		for _, c := range m.Commands() {
			d.Register(c)
		}
		cs := d.NewConn()
		cs.Master, cs.Authenticated = true, true
		cs.UserData = &masterLink{m: m}
		consumed, _, _ := d.Serve(cs, in, nil)
		if consumed < 0 || consumed > len(in) {
			t.Fatalf("consumed %d of %d", consumed, len(in))
		}
	})
}

// FuzzMarkReader checks the disk-less payload framing: the bytes before
// the first mark come out unchanged, and without a mark the read fails.
func FuzzMarkReader(f *testing.F) {
	f.Add([]byte("payload"), 3)
	f.Fuzz(func(t *testing.T, payload []byte, chunk int) {
		mark := bytes.Repeat([]byte{'M'}, 40)
		if bytes.Contains(payload, []byte{'M'}) {
			return
		}
		chunk = 1 + int(uint(chunk)%97)
		src := &chunked{data: append(append(append([]byte(nil), payload...), mark...), "tail"...), n: chunk}
		got, err := io.ReadAll(&markReader{r: src, mark: mark})
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("got %q %v, want %q", got, err, payload)
		}
		if _, err := io.ReadAll(&markReader{r: &chunked{data: payload, n: chunk}, mark: mark}); err == nil {
			t.Fatal("no mark, no error")
		}
	})
}
