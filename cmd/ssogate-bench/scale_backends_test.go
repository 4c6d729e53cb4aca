package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets scale start this test binary as its reference server
// (scale runs its own executable with "ref-server", as the real tool does).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "ref-server" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// buildSsogate builds cmd/ssogate into a temporary folder.
func buildSsogate(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "ssogate")
	if out, err := exec.Command(goTool, "build", "-o", bin, "../ssogate").CombinedOutput(); err != nil {
		t.Fatalf("building ssogate: %v\n%s", err, out)
	}
	return bin
}

// freePorts returns the first of n consecutive loopback ports that were
// all free a moment ago.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 100; try++ {
		base := 20000 + rand.IntN(40000)
		var lns []net.Listener
		for p := base; p < base+n; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if len(lns) == n {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// One state served by real ssogate processes on each backend at once: the
// bolt file and the redis-server are filled by ssogate import, and every
// server must answer each request kind as gen expects (scale counts any
// other answer as an error and fails), so a backend that lost the state
// would deny the members' reads.
func TestScaleServesEachBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs ssogate processes")
	}
	redisServer, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed; .ci/run installs it")
		}
		t.Skip("redis-server is not installed")
	}
	dir := t.TempDir()
	c := genConfig{Orgs: 3, Sessions: 20, Members: 30, Resources: 40, Pool: 8, TokenTTL: Duration(time.Hour), Seed: 1,
		Roles: []string{"read", ""}, GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}
	// The folder's name has a colon, which stays the path's.
	state := filepath.Join(dir, "st:1")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := generate(state, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	bin := buildSsogate(t)
	sc := scaleConfig{Ssogate: bin, Concurrency: []int{2}, Conns: 1, Slice: 200 * time.Millisecond, Rounds: 2,
		Mix: "session=2,public=1,redirect=1,api401=1", LogLevel: "warn", LogFile: filepath.Join(dir, "ssogate.log"),
		StartWait: time.Minute, RedisServer: redisServer}
	// Ports: the reference server, then 3 ssogates (gRPC and HTTP each),
	// then the redis-servers of folders 0 to 2 (only folder 1's is used).
	base := freePorts(t, 10)
	sc.RefAddr, sc.BasePort, sc.RedisPort = "127.0.0.1:"+strconv.Itoa(base), base+1, base+7
	for _, e := range []string{state, state + ":redis", state + ":bolt"} {
		d, backend, b, err := parseDir(e, bin)
		if err != nil {
			t.Fatal(err)
		}
		sc.Dirs, sc.Backends, sc.Bins = append(sc.Dirs, d), append(sc.Backends, backend), append(sc.Bins, b)
	}
	if err := sc.check(); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if err := scale(context.Background(), sc, &out, &errs); err != nil {
		log, _ := os.ReadFile(sc.LogFile)
		t.Fatalf("scale: %v\n%s\n%s\nssogate log:\n%s", err, out.String(), errs.String(), log)
	}
	for _, want := range []string{"| 2 | reference |", "| 2 | " + state + " |", "| 2 | " + state + ":redis |", "| 2 | " + state + ":bolt |", "imported"} {
		if !strings.Contains(out.String()+errs.String(), want) {
			t.Errorf("output lacks %q:\n%s\n%s", want, out.String(), errs.String())
		}
	}
	if _, err := os.Stat(filepath.Join(state, "state.db")); err != nil {
		t.Errorf("bolt's state: %v", err)
	}
	// The per-run gateway files are removed.
	if m, _ := filepath.Glob(filepath.Join(state, "ssogate-scale-*.yaml")); len(m) > 0 {
		t.Errorf("left behind: %v", m)
	}
}
