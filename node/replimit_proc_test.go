package node_test

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hearsay/hearsay/internal/testenv"
)

// --client-output-buffer-limit's replica class reaches the replication
// links: a replica that stops reading (SIGSTOP) while its master takes
// writes is dropped once its pending stream passes the hard limit, and
// after SIGCONT it syncs again and holds every key.
func TestReplicaOutputLimit(t *testing.T) {
	testenv.SkipShort(t, "starts 2 node processes")
	master := startNode(t, freePort(t), t.TempDir(), "--client-output-buffer-limit", "replica 1mb 0 0")
	replica := startNode(t, freePort(t), t.TempDir())
	do(t, master, "CLUSTER", "ADDSLOTSRANGE", 0, 16383)
	do(t, master, "CLUSTER", "MEET", "127.0.0.1", replica.port)
	id := do(t, master, "CLUSTER", "MYID").(string)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := client(t, replica).Do(t.Context(), "CLUSTER", "REPLICATE", id).Result(); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("CLUSTER REPLICATE: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitReplicaCaughtUp(t, master.addr(), replica.addr(), 15*time.Second)

	stopProc(t, replica)
	big := strings.Repeat("x", 64<<10)
	mc := client(t, master)
	dropped := false
	for i := 0; i < 400 && !dropped; i++ { // up to 25 MB, well past the 1 MB limit and the socket buffers
		if err := mc.Set(t.Context(), "big:"+strconv.Itoa(i), big, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if i%20 == 19 {
			dropped = infoField(t, master.addr(), "replication", "connected_slaves") == "0"
		}
	}
	for end := time.Now().Add(10 * time.Second); !dropped && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		dropped = infoField(t, master.addr(), "replication", "connected_slaves") == "0"
	}
	if !dropped {
		t.Fatal("the master kept a replica that stopped reading, past its 1 MB replica output limit")
	}
	if err := replica.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitReplicaCaughtUp(t, master.addr(), replica.addr(), 20*time.Second)
	sameData(t, "after the replica was dropped and synced again", keyspaceOf(t, master.addr()), keyspaceOf(t, replica.addr()))
}
