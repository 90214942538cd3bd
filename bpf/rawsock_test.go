package bpf

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// blockingUDP carries datagrams both ways, over IPv4 and a dual-stack
// wildcard socket, and Close wakes a reader blocked in recvfrom.
func TestBlockingUDP(t *testing.T) {
	for _, bind := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		t.Run(bind, func(t *testing.T) {
			s, err := listenBlockingUDP(netip.MustParseAddrPort(bind))
			if err != nil {
				t.Fatal(err)
			}
			port := s.LocalAddr().(*net.UDPAddr).AddrPort().Port()
			if port == 0 {
				t.Fatal("no port bound")
			}
			peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort()

			if _, err := s.WriteToUDPAddrPort([]byte("ping"), peerAddr); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := peer.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[:n]) != "ping" || from.Port() != port {
				t.Fatalf("peer read %q from %v: %v", buf[:n], from, err)
			}
			if _, err := peer.WriteToUDPAddrPort([]byte("pong"), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)); err != nil {
				t.Fatal(err)
			}
			n, from, err = s.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[:n]) != "pong" || from != peerAddr {
				t.Fatalf("read %q from %v: %v, want pong from %v", buf[:n], from, err, peerAddr)
			}

			done := make(chan error, 1)
			go func() {
				_, _, err := s.ReadFromUDPAddrPort(buf)
				done <- err
			}()
			time.Sleep(20 * time.Millisecond) // let it block
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("blocked read ended with %v, want net.ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not wake the blocked reader")
			}
			if _, err := s.WriteToUDPAddrPort([]byte("x"), peerAddr); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("write after Close: %v", err)
			}
			if err := s.Close(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}
