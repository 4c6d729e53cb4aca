package redis

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/redistest"
)

// frozenProxy forwards TCP to a server until frozen; then it stops
// forwarding without closing anything, as a network partition would.
type frozenProxy struct {
	ln     net.Listener
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *frozenProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &frozenProxy{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go p.pipe(c, s)
			go p.pipe(s, c)
		}
	}()
	return p
}

func (p *frozenProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		for p.frozen.Load() {
			time.Sleep(10 * time.Millisecond) // hold the bytes, close nothing
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// TestBusDetectsASilentPartition: when the subscription's connection stops
// answering without closing, Listen reports it lost after two ping periods.
func TestBusDetectsASilentPartition(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := newProxy(t, srv.Addr)
	s, err := New(Options{Addrs: []string{proxy.ln.Addr().String()}, Prefix: "bus:", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bus := s.Bus()
	bus.pingEvery = 100 * time.Millisecond
	live := make(chan bool, 16)
	keys := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		bus.Listen(ctx, func(k string) { keys <- k }, func(l bool) { live <- l })
	}()
	expect := func(want bool, within time.Duration) {
		t.Helper()
		select {
		case got := <-live:
			if got != want {
				t.Fatalf("onLive(%v), want onLive(%v)", got, want)
			}
		case <-time.After(within):
			t.Fatalf("no onLive(%v) within %v", want, within)
		}
	}
	expect(true, 2*time.Second)
	if err := bus.Publish(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-keys:
		if k != "k1" {
			t.Errorf("received %q, want k1", k)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("published key not received")
	}
	time.Sleep(250 * time.Millisecond) // a quiet period with answered pings stays live
	select {
	case l := <-live:
		t.Fatalf("onLive(%v) while the connection was healthy", l)
	default:
	}
	proxy.frozen.Store(true)
	expect(false, 2*time.Second)
	proxy.frozen.Store(false)
	cancel()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Listen did not return after its context ended")
	}
}
