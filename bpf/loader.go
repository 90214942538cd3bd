package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Defaults for Config.PinRoot and Config.LockDir.
const (
	DefaultPinRoot = "/sys/fs/bpf/hearsay"
	DefaultLockDir = "/run/hearsay"
)

// AttachMode is how the program is attached to the interface.
type AttachMode string

// Attach modes.
const (
	AttachNative  AttachMode = "native"  // XDP_FLAGS_DRV_MODE
	AttachGeneric AttachMode = "generic" // XDP_FLAGS_SKB_MODE
)

// Names of the pins under PinRoot/<ifname>/.
const (
	pinProg = "prog"
	pinLink = "link"
)

var pinnedMaps = []string{
	heartbeatMapHbNodes, heartbeatMapHbProgress, heartbeatMapHbPeers,
	heartbeatMapHbStats, heartbeatMapHbOwners,
}

// mapSlot returns where the map pinned as name lives in ifc.objs.
func (ifc *iface) mapSlot(name string) **ebpf.Map {
	switch name {
	case heartbeatMapHbNodes:
		return &ifc.objs.HbNodes
	case heartbeatMapHbProgress:
		return &ifc.objs.HbProgress
	case heartbeatMapHbPeers:
		return &ifc.objs.HbPeers
	case heartbeatMapHbStats:
		return &ifc.objs.HbStats
	case heartbeatMapHbOwners:
		return &ifc.objs.HbOwners
	}
	panic("bpf: no map " + name)
}

// iface is this node's handle on the program shared by every hearsay node
// on one interface. Its own entries are keyed by port.
type iface struct {
	name    string
	index   int
	mode    AttachMode
	pinDir  string
	lock    string
	port    uint32
	objs    heartbeatObjects
	lnk     link.Link
	want    AttachMode // forced mode, or "" for native then generic
	logf    func(string, ...any)
	present bool // our owner entry is registered
}

// unsupported wraps err so that errors.Is(err, ErrUnsupported) holds.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// defaultInterface returns the interface holding addr.
func defaultInterface(addr netip.Addr) (string, error) {
	if addr.IsLoopback() {
		return "lo", nil
	}
	if addr.IsUnspecified() {
		return "", fmt.Errorf("heartbeat: bind address %v is a wildcard; set the XDP interface", addr)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", fmt.Errorf("heartbeat: list addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if ok && ip.Unmap() == addr.Unmap() {
			l, err := netlink.LinkByIndex(a.LinkIndex)
			if err != nil {
				return "", fmt.Errorf("heartbeat: interface of %v: %w", addr, err)
			}
			return l.Attrs().Name, nil
		}
	}
	return "", fmt.Errorf("heartbeat: no interface holds %v", addr)
}

// ensureBPFFS makes dir, mounting bpffs on /sys/fs/bpf first if needed.
func ensureBPFFS(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &st); err == nil && st.Type != unix.BPF_FS_MAGIC &&
		strings.HasPrefix(filepath.Clean(dir), "/sys/fs/bpf/") {
		if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"); err != nil {
			return unsupported("mount bpffs on /sys/fs/bpf: %v", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return unsupported("create pin directory: %v", err)
	}
	if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
		return unsupported("%s is not on a bpf filesystem", dir)
	}
	return nil
}

// withLock runs f holding an exclusive flock on path.
func withLock(path string, f func() error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("heartbeat: lock directory: %w", err)
	}
	fd, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("heartbeat: lock file: %w", err)
	}
	defer fd.Close()
	for {
		err = unix.Flock(int(fd.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("heartbeat: lock %s: %w", path, err)
	}
	defer unix.Flock(int(fd.Fd()), unix.LOCK_UN)
	return f()
}

// procStartTime returns field 22 of /proc/<pid>/stat, the start time of the
// process in clock ticks since boot.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, errors.New("bad /proc stat")
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22 is f[19] after pid and comm
}

func ownerAlive(o heartbeatHbOwner) bool {
	st, err := procStartTime(int(o.Pid))
	return err == nil && st == o.StartTime
}

// openIface joins (or creates) the shared program on ifname for a node with
// heartbeat port port. The caller must hold the interface lock.
func openIface(ifname string, port uint16, pinRoot, lockDir string, want AttachMode, logf func(string, ...any)) (*iface, error) {
	if pinRoot == "" {
		pinRoot = DefaultPinRoot
	}
	if lockDir == "" {
		lockDir = DefaultLockDir
	}
	// Say so plainly, before anything else fails in a less obvious way
	// (an unreadable pin dir, a program on the interface we cannot inspect).
	if miss := missingCaps(); miss != "" {
		return nil, unsupported("missing %s (run as root or grant them)", miss)
	}
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: interface %q: %w", ifname, err)
	}
	ifc := &iface{
		name:   ifname,
		index:  l.Attrs().Index,
		pinDir: filepath.Join(pinRoot, ifname),
		lock:   filepath.Join(lockDir, "xdp-"+ifname+".lock"),
		port:   uint32(port),
		want:   want,
		logf:   logf,
	}
	if err := ensureBPFFS(ifc.pinDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, unsupported("lock directory: %v", err)
	}
	err = withLock(ifc.lock, func() error {
		if err := ifc.joinLocked(l); err != nil {
			ifc.closeObjs()
			return err
		}
		return nil
	})
	if err != nil {
		os.Remove(ifc.pinDir) // only if empty: never another node's pins
		return nil, err
	}
	return ifc, nil
}

func (ifc *iface) closeObjs() {
	if ifc.lnk != nil {
		ifc.lnk.Close()
		ifc.lnk = nil
	}
	ifc.objs.Close()
	ifc.objs = heartbeatObjects{}
}

// loadPinned opens the pinned program, link and maps. It reports false
// when the pins are absent or incomplete.
func (ifc *iface) loadPinned() (bool, error) {
	if _, err := os.Stat(filepath.Join(ifc.pinDir, pinLink)); err != nil {
		return false, nil
	}
	spec, err := loadHeartbeat()
	if err != nil {
		return false, err
	}
	lnk, err := link.LoadPinnedLink(filepath.Join(ifc.pinDir, pinLink), nil)
	if err != nil {
		return false, nil
	}
	ifc.lnk = lnk
	info, err := lnk.Info()
	if err != nil || info.XDP() == nil || int(info.XDP().Ifindex) != ifc.index {
		return false, nil // defunct link (interface recreated) or not ours
	}
	prog, err := ebpf.LoadPinnedProgram(filepath.Join(ifc.pinDir, pinProg), nil)
	if err != nil {
		return false, nil
	}
	ifc.objs.HearsayHeartbeat = prog
	for _, name := range pinnedMaps {
		m, err := ebpf.LoadPinnedMap(filepath.Join(ifc.pinDir, name), nil)
		if err != nil {
			return false, nil
		}
		*ifc.mapSlot(name) = m
		if err := spec.Maps[name].Compatible(m); err != nil {
			// Left by another version of hearsay: replace it, unless
			// nodes of that version are still running.
			if pid := livePinnedOwner(filepath.Join(ifc.pinDir, heartbeatMapHbOwners)); pid != 0 {
				return false, fmt.Errorf("heartbeat: %s: the pinned XDP state in %s has another layout (%v) and is in use by pid %d (another hearsay version?)", ifc.name, ifc.pinDir, err, pid)
			}
			return false, nil
		}
	}
	return true, nil
}

// livePinnedOwner returns the PID of a live node registered in the pinned
// owner map at path, or 0. It only assumes the key is a u32 port and the
// value starts with the u32 PID and u64 start time.
func livePinnedOwner(path string) uint32 {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return 0
	}
	defer m.Close()
	if m.KeySize() != 4 || m.ValueSize() < 16 {
		return 0
	}
	var port uint32
	v := make([]byte, m.ValueSize())
	it := m.Iterate()
	for it.Next(&port, &v) {
		o := heartbeatHbOwner{Pid: binary.NativeEndian.Uint32(v[0:]), StartTime: binary.NativeEndian.Uint64(v[8:])}
		if ownerAlive(o) {
			return o.Pid
		}
	}
	return 0
}

// reapDead removes the entries of registered nodes whose process is gone
// and returns how many live nodes remain.
func (ifc *iface) reapDead() (int, error) {
	var (
		port  uint32
		owner heartbeatHbOwner
		dead  []uint32
		live  int
	)
	it := ifc.objs.HbOwners.Iterate()
	for it.Next(&port, &owner) {
		if ownerAlive(owner) {
			live++
		} else {
			dead = append(dead, port)
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("heartbeat: read owners: %w", err)
	}
	for _, p := range dead {
		ifc.logf("heartbeat: %s: removing state of dead node on port %d", ifc.name, p)
		if err := ifc.removePort(p); err != nil {
			return 0, err
		}
	}
	return live, nil
}

// removePort deletes everything keyed by port.
func (ifc *iface) removePort(port uint32) error {
	var (
		k    heartbeatHbPeerKey
		v    heartbeatHbPeer
		mine []heartbeatHbPeerKey
	)
	it := ifc.objs.HbPeers.Iterate()
	for it.Next(&k, &v) {
		if k.LocalPort == port {
			mine = append(mine, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("heartbeat: read peers: %w", err)
	}
	for _, k := range mine {
		if err := ifc.objs.HbPeers.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("heartbeat: delete peer: %w", err)
		}
	}
	if err := ifc.objs.HbNodes.Update(&port, &heartbeatHbNode{}, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("heartbeat: clear node %d: %w", port, err)
	}
	if err := ifc.objs.HbProgress.Update(&port, uint64(0), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("heartbeat: clear progress %d: %w", port, err)
	}
	if err := ifc.objs.HbOwners.Delete(&port); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("heartbeat: unregister %d: %w", port, err)
	}
	return nil
}

// unpinAll detaches the program and removes every pin.
func (ifc *iface) unpinAll() {
	if ifc.lnk != nil {
		_ = ifc.lnk.Unpin()
	}
	for _, name := range append([]string{pinLink, pinProg}, pinnedMaps...) {
		_ = os.Remove(filepath.Join(ifc.pinDir, name))
	}
	ifc.closeObjs() // closing the last link fd detaches the program
	_ = os.Remove(ifc.pinDir)
}

func (ifc *iface) joinLocked(l netlink.Link) error {
	ok, err := ifc.loadPinned()
	if err != nil {
		return err
	}
	live := 0
	if ok {
		if live, err = ifc.reapDead(); err != nil {
			return err
		}
	}
	if ok && live > 0 {
		ifc.mode = AttachGeneric
		if x := l.Attrs().Xdp; x != nil && x.AttachMode == xdpAttachedDrv {
			ifc.mode = AttachNative
		}
		ifc.logf("heartbeat: %s: joining the %s-mode program of %d other node(s)", ifc.name, ifc.mode, live)
	} else {
		if ok || len(ifc.pinDirEntries()) > 0 {
			ifc.logf("heartbeat: %s: removing stale pins from a previous run", ifc.name)
		}
		ifc.unpinAll()
		if err := os.MkdirAll(ifc.pinDir, 0o700); err != nil {
			return unsupported("create pin directory: %v", err)
		}
		if err := ifc.attachFresh(); err != nil {
			return err
		}
	}
	return ifc.register()
}

func (ifc *iface) pinDirEntries() []os.DirEntry {
	e, _ := os.ReadDir(ifc.pinDir)
	return e
}

// xdpAttachedDrv is XDP_ATTACHED_DRV from linux/if_link.h.
const xdpAttachedDrv = 1

func (ifc *iface) attachFresh() error {
	// Look again: stale pins removed just now may have held an attachment.
	l, err := netlink.LinkByIndex(ifc.index)
	if err != nil {
		return fmt.Errorf("heartbeat: interface %s: %w", ifc.name, err)
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		return fmt.Errorf("heartbeat: %s already has XDP program id %d that is not hearsay's; detach it first", ifc.name, x.ProgId)
	}
	if err := loadHeartbeatObjects(&ifc.objs, nil); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return unsupported("load XDP program: %v (needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, or root)", err)
		}
		return unsupported("load XDP program: %v", err)
	}
	var errs []error
	for _, m := range []struct {
		flags link.XDPAttachFlags
		mode  AttachMode
	}{{link.XDPDriverMode, AttachNative}, {link.XDPGenericMode, AttachGeneric}} {
		if ifc.want != "" && ifc.want != m.mode {
			continue
		}
		lnk, err := link.AttachXDP(link.XDPOptions{Program: ifc.objs.HearsayHeartbeat, Interface: ifc.index, Flags: m.flags})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.mode, err))
			continue
		}
		ifc.lnk, ifc.mode = lnk, m.mode
		break
	}
	if ifc.lnk == nil {
		return unsupported("attach XDP to %s: %v", ifc.name, errors.Join(errs...))
	}
	ifc.logf("heartbeat: %s: attached XDP program in %s mode", ifc.name, ifc.mode)
	if ifc.mode == AttachNative && l.Type() == "veth" {
		ifc.logf("heartbeat: %s: native XDP on veth: PONGs reach the peer only if its end has an XDP program (or GRO); use generic mode if it runs the udp fallback", ifc.name)
	}
	pin := func(name string, f func(string) error) error {
		if err := f(filepath.Join(ifc.pinDir, name)); err != nil {
			ifc.unpinAll()
			return fmt.Errorf("heartbeat: pin %s: %w", name, err)
		}
		return nil
	}
	if err := pin(pinLink, ifc.lnk.Pin); err != nil {
		return err
	}
	if err := pin(pinProg, ifc.objs.HearsayHeartbeat.Pin); err != nil {
		return err
	}
	for _, name := range pinnedMaps {
		if err := pin(name, (*ifc.mapSlot(name)).Pin); err != nil {
			return err
		}
	}
	return nil
}

// register claims our port in the owner registry.
func (ifc *iface) register() error {
	var o heartbeatHbOwner
	if err := ifc.objs.HbOwners.Lookup(&ifc.port, &o); err == nil && int(o.Pid) != os.Getpid() {
		return fmt.Errorf("heartbeat: %s: port %d is already used by live process %d", ifc.name, ifc.port, o.Pid)
	}
	st, err := procStartTime(os.Getpid())
	if err != nil {
		return fmt.Errorf("heartbeat: own start time: %w", err)
	}
	o = heartbeatHbOwner{Pid: uint32(os.Getpid()), StartTime: st}
	if err := ifc.objs.HbOwners.Update(&ifc.port, &o, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("heartbeat: register port %d: %w", ifc.port, err)
	}
	ifc.present = true
	return nil
}

// leave removes our entries; the last node detaches and unpins.
func (ifc *iface) leave() error {
	return withLock(ifc.lock, func() error {
		var err error
		if ifc.present {
			err = ifc.removePort(ifc.port)
			ifc.present = false
		}
		live, rerr := ifc.reapDead()
		if rerr == nil && live == 0 {
			ifc.logf("heartbeat: %s: last node left, detaching XDP", ifc.name)
			ifc.unpinAll()
		} else {
			ifc.closeObjs()
		}
		return errors.Join(err, rerr)
	})
}
