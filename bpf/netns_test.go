package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hearsay/hearsay/internal/testenv"
)

// newNetns creates an anonymous network namespace with lo up. It vanishes,
// with every link in it, when the test ends and its handle is closed, even
// if the test fails.
func newNetns(t testing.TB) netns.NsHandle {
	t.Helper()
	var ns netns.NsHandle
	err := func() error {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		ns, err = netns.New() // also switches this thread
		if serr := netns.Set(orig); serr != nil {
			panic(serr) // never leave a thread in the wrong namespace
		}
		return err
	}()
	if err != nil {
		t.Fatalf("create network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	h := nlHandle(t, ns)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up: %v", err)
	}
	return ns
}

func nlHandle(t testing.TB, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// inNetns runs f on an OS thread inside ns. Sockets, links and ifindexes
// resolved by f belong to ns.
func inNetns(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		ferr := f()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread() // otherwise the thread exits with the goroutine
		}
		errc <- ferr
	}()
	return <-errc
}

// requireNetAdmin skips tests that attach XDP and create namespaces.
func requireNetAdmin(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t, "attaches XDP and creates network namespaces (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)")
	testenv.SkipShort(t, "attaches XDP in network namespaces")
}

// testPinRoot returns a private bpffs directory for the test's pins, so
// that tests never touch /sys/fs/bpf/hearsay of real nodes. It is removed
// at the end.
func testPinRoot(t testing.TB) string {
	t.Helper()
	if err := ensureBPFFS("/sys/fs/bpf/hearsay-test"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("/sys/fs/bpf/hearsay-test", fmt.Sprintf("%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_")))
	t.Cleanup(func() {
		os.RemoveAll(dir)
		os.Remove("/sys/fs/bpf/hearsay-test") // fails while other tests use it
	})
	return dir
}

func sleepMS(n int) { time.Sleep(time.Duration(n) * time.Millisecond) }
