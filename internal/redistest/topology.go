package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartSentinel starts a Redis Sentinel that monitors master under name,
// and waits until it answers PING.
func StartSentinel(tb testing.TB, master *Server, name string) *Server {
	tb.Helper()
	s := newServer(tb)
	host, port, _ := net.SplitHostPort(master.Addr)
	s.conf = filepath.Join(s.dir, "sentinel.conf")
	conf := fmt.Sprintf("sentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 5000\n", name, host, port, name)
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	s.start()
	tb.Cleanup(s.Kill)
	return s
}

// StartCluster starts n cluster-mode servers, gives each an equal range of
// the 16384 slots, joins them and waits until every node reports
// cluster_state:ok. It returns the nodes (Redis 7 or later).
func StartCluster(tb testing.TB, n int) []*Server {
	tb.Helper()
	nodes := make([]*Server, n)
	for i := range nodes {
		nodes[i] = Start(tb, Options{Cluster: true})
	}
	const slots = 16384
	for i, node := range nodes {
		first, last := i*slots/n, (i+1)*slots/n-1
		if _, err := Do(node.Addr, "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(first), strconv.Itoa(last)); err != nil {
			tb.Fatalf("assigning slots to %s: %v", node.Addr, err)
		}
	}
	for _, node := range nodes[1:] {
		host, port, _ := net.SplitHostPort(node.Addr)
		if _, err := Do(nodes[0].Addr, "CLUSTER", "MEET", host, port); err != nil {
			tb.Fatalf("joining %s: %v", node.Addr, err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, node := range nodes {
		for {
			info, err := Do(node.Addr, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("cluster not ready on %s: %v\n%s", node.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nodes
}

// Do sends one command to addr and returns its reply: a simple string, a
// bulk string or an integer as text. An error reply is returned as an error.
func Do(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case line == "":
		return "", fmt.Errorf("empty reply")
	case line[0] == '-':
		return "", fmt.Errorf("%s", line[1:])
	case line[0] == '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line[1:], nil
}
