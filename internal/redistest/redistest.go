// Package redistest runs a real redis-server for tests: on a free loopback
// port, in a temporary folder, stopped when the test ends. It is for tests
// only.
//
// When redis-server is not installed the test is skipped, except in CI
// (the CI environment variable is set), where it fails: .ci/run installs
// redis-server.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a redis-server child process.
type Server struct {
	// Addr is the server's "127.0.0.1:port"; it stays the same across Restart.
	Addr string

	tb      testing.TB
	bin     string
	dir     string
	persist bool
	conf    string   // a config file to start with (Sentinel), or ""
	extra   []string // further arguments

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil when stopped
	done chan struct{} // closed when cmd has exited
}

// Options tune Start.
type Options struct {
	// Persistent makes the server write every change to an append-only
	// file before answering (appendfsync always), so that Restart after
	// Kill finds the data again.
	Persistent bool
	// Cluster starts the server in cluster mode (see StartCluster).
	Cluster bool
}

// Start starts a redis-server and waits until it answers PING.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	s := newServer(tb)
	s.persist = o.Persistent
	if o.Cluster {
		s.extra = []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"}
	}
	s.start()
	tb.Cleanup(s.Kill)
	return s
}

// newServer finds redis-server and picks a free loopback port and a folder.
func newServer(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redis-server is not installed (CI installs it with .ci/run): %v", err)
		}
		tb.Skip("redis-server is not installed; install it (apt-get install redis-server) to run this test")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return &Server{Addr: addr, tb: tb, bin: bin, dir: tb.TempDir()}
}

func (s *Server) start() {
	s.tb.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	var args []string
	if s.conf != "" {
		args = append(args, s.conf, "--sentinel")
	}
	args = append(args, "--port", port, "--bind", "127.0.0.1", "--dir", s.dir, "--save", "",
		"--daemonize", "no", "--logfile", "redis.log")
	if s.persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, s.extra...)
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("starting redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for ping(s.Addr) != nil {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.tb.Fatalf("redis-server exited at start: %s\n%s", cmd.ProcessState, log)
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			s.tb.Fatalf("redis-server on %s did not answer PING within 10s", s.Addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL, as a crash would, and waits until it
// has exited. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Restart starts the server again on the same address and folder (after
// Kill); with Options.Persistent it has the data written before the kill.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	s.start()
}

// ping sends PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
