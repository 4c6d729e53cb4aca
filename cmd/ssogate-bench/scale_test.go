package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	for _, tc := range []struct {
		v    []float64
		q    float64
		want float64
	}{
		{nil, 0.5, 0},
		{[]float64{7}, 0.5, 7},
		{[]float64{3, 1, 2}, 0.5, 2},
		{[]float64{4, 1, 3, 2}, 0.5, 2.5},
		{[]float64{4, 1, 3, 2}, 0, 1},
		{[]float64{4, 1, 3, 2}, 1, 4},
		{[]float64{5, 1, 4, 2, 3}, 0.25, 2},
		{[]float64{1, 2}, 0.25, 1.25},
	} {
		if got := quantile(tc.v, tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("quantile(%v, %v) = %v, want %v", tc.v, tc.q, got, tc.want)
		}
	}
	v := []float64{3, 1, 2}
	quantile(v, 0.5)
	if v[0] != 3 || v[1] != 1 {
		t.Errorf("quantile sorted its argument: %v", v)
	}
}

// slice is a load result of checks over a second at cpu µs per check.
func slice(cpuMicros float64, checks int64) loadResult {
	lat := make([]time.Duration, checks)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Microsecond
	}
	return loadResult{Checks: checks, Elapsed: time.Second, Latencies: lat,
		ServerCPU: time.Duration(cpuMicros * float64(checks) * 1e3)}
}

// Ratios are taken within a round, then their median across rounds: the
// machine's drift from round to round, which moves every server's CPU
// alike, cancels out, where a ratio of medians would keep it.
func TestScaleRowsPairByRound(t *testing.T) {
	drift := []float64{1, 2, 1.6, 1.1, 1.3} // the machine's speed in each round
	var ref, base, grown []loadResult
	for i, d := range drift {
		ref = append(ref, slice(50*d, 1000))
		base = append(base, slice(100*d, 500))
		// 10% over the baseline in every round but one, which is an outlier.
		g := 1.10
		if i == 2 {
			g = 1.50
		}
		grown = append(grown, slice(100*d*g, 400))
	}
	servers := []*scaleServer{
		{name: "reference", ref: true, slices: map[int][]loadResult{16: ref}},
		{name: "base", slices: map[int][]loadResult{16: base}},
		{name: "grown", slices: map[int][]loadResult{16: grown}},
	}
	rows := scaleRows(servers, 16)
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	near("baseline CPU ratio", rows[1].cpuRatio, 2)
	near("baseline throughput ratio", rows[1].tputRatio, 0.5)
	near("baseline growth", rows[1].growth, 0)
	near("grown CPU ratio", rows[2].cpuRatio, 2.2)
	near("grown growth", rows[2].growth, 0.10)
	near("grown growth, first quartile", rows[2].growthLo, 0.10)
	near("grown growth, third quartile", rows[2].growthHi, 0.10)
	near("grown throughput ratio", rows[2].tputRatio, 0.4)
	// The median of the baseline's own CPU keeps the drift: 100 * 1.3.
	near("baseline median CPU", rows[1].cpu, 130)
}

func TestScaleFlags(t *testing.T) {
	ok := scaleConfig{Dirs: []string{"/a", "/b"}, Bins: []string{"ssogate", "ssogate"}, Backends: []string{"memory", "memory"},
		Rounds: 1, Slice: time.Second, Conns: 1, BasePort: 65532,
		StartWait: time.Minute, LogFile: "/dev/null", RefAddr: "127.0.0.1:19292", RedisPort: 16379}
	if err := ok.check(); err != nil {
		t.Fatalf("%+v: %v", ok, err)
	}
	// One folder twice, with two builds: a comparison of the builds.
	builds := ok
	builds.Dirs, builds.Bins = []string{"/a", "/a"}, []string{"old", "new"}
	if err := builds.check(); err != nil {
		t.Errorf("one folder with two builds: %v", err)
	}
	// One folder with two backends: a comparison of the backends.
	stores := ok
	stores.Dirs, stores.Backends = []string{"/a", "/a"}, []string{"memory", "redis"}
	if err := stores.check(); err != nil {
		t.Errorf("one folder with two backends: %v", err)
	}
	for _, tc := range []struct {
		mod  func(*scaleConfig)
		want string
	}{
		{func(c *scaleConfig) { c.Dirs = nil }, "--dirs is required"},
		{func(c *scaleConfig) { c.Rounds = 0 }, "--rounds"},
		{func(c *scaleConfig) { c.Slice = 0 }, "--slice"},
		{func(c *scaleConfig) { c.Warmup = -time.Second }, "--warmup"},
		{func(c *scaleConfig) { c.Conns = 0 }, "--conns"},
		{func(c *scaleConfig) { c.BasePort = 65533 }, "need ports 65533 to 65536"},
		{func(c *scaleConfig) { c.StartWait = 0 }, "--start-timeout"},
		{func(c *scaleConfig) { c.LogFile = "" }, "--log must name a file"},
		{func(c *scaleConfig) { c.LogFile = "/b/state.yaml" }, "inside the state folder /b"},
		{func(c *scaleConfig) { c.RefAddr = "nonsense" }, `--ref-addr "nonsense" is not HOST:PORT`},
		{func(c *scaleConfig) { c.RefAddr = "127.0.0.1:99999" }, "is not HOST:PORT"},
		{func(c *scaleConfig) { c.RefAddr = "localhost:65534" }, "port 65534 is one of the ssogates'"},
		{func(c *scaleConfig) { c.RefAddr = ":65532" }, "port 65532 is one of the ssogates'"},
		{func(c *scaleConfig) { c.BasePort = 0 }, "--base-port 0"},
		{func(c *scaleConfig) {
			c.Dirs, c.Bins, c.Backends, c.BasePort = []string{"/a", "/b", "/a"}, []string{"x", "x", "x"}, []string{"memory", "memory", "memory"}, 1000
		}, "names /a twice with the same ssogate and backend"},
		{func(c *scaleConfig) {
			c.Dirs, c.Bins, c.Backends = []string{"/a", "/a"}, []string{"old", "new"}, []string{"bolt", "bolt"}
		}, "names /a twice with bolt"},
		{func(c *scaleConfig) { c.Backends = []string{"memory", "redis"}; c.RedisPort = 65535 }, "--redis-base-port 65535: 2 folders need ports 65535 to 65536"},
		{func(c *scaleConfig) { c.Backends = []string{"memory", "redis"}; c.RedisPort = 65532 }, "port 65533 is one of the ssogates'"},
		{func(c *scaleConfig) { c.Backends = []string{"memory", "redis"}; c.RedisPort = 19291 }, "port 19292 is the redis-server's of /b"},
	} {
		c := ok
		tc.mod(&c)
		if err := c.check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to say %q", c, err, tc.want)
		}
	}
}

func TestParseDir(t *testing.T) {
	for _, tc := range []struct {
		entry, dir, backend, bin, err string
	}{
		{entry: "/s/a", dir: "/s/a", backend: "memory", bin: "def"},
		{entry: "/s/a@/bin/old", dir: "/s/a", backend: "memory", bin: "/bin/old"},
		{entry: "/s/a:redis", dir: "/s/a", backend: "redis", bin: "def"},
		{entry: "/s/a:bolt@/bin/old", dir: "/s/a", backend: "bolt", bin: "/bin/old"},
		{entry: "/s/a:memory@", dir: "/s/a", backend: "memory", bin: "def"},
		// A colon inside the path is the path's.
		{entry: "/s/x:y/a", dir: "/s/x:y/a", backend: "memory", bin: "def"},
		{entry: "/s/x:y/a:redis", dir: "/s/x:y/a", backend: "redis", bin: "def"},
		{entry: "/s/a:1", dir: "/s/a:1", backend: "memory", bin: "def"},
		// A misspelt backend is a folder of that name, which does not exist.
		{entry: "/s/a:reids", dir: "/s/a:reids", backend: "memory", bin: "def"},
		{entry: ":redis", err: "names no folder"},
	} {
		dir, backend, bin, err := parseDir(tc.entry, "def")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseDir(%q): error %v, want it to say %q", tc.entry, err, tc.err)
			}
			continue
		}
		if err != nil || dir != tc.dir || backend != tc.backend || bin != tc.bin {
			t.Errorf("parseDir(%q) = %q, %q, %q, %v; want %q, %q, %q", tc.entry, dir, backend, bin, err, tc.dir, tc.backend, tc.bin)
		}
	}
}

func TestBoltNeedsImport(t *testing.T) {
	dir := t.TempDir()
	state, db := filepath.Join(dir, "state.yaml"), filepath.Join(dir, "state.db")
	if err := os.WriteFile(state, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if need, err := boltNeedsImport(dir); !need || err != nil {
		t.Errorf("without state.db: %v, %v; want an import", need, err)
	}
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := os.Chtimes(state, now, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if need, err := boltNeedsImport(dir); need || err != nil {
		t.Errorf("state.db newer than the state: %v, %v; want it used", need, err)
	}
	if err := os.Chtimes(state, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := boltNeedsImport(dir); err == nil || !strings.Contains(err.Error(), "older than its state.yaml") {
		t.Errorf("state.db older than the state: err = %v", err)
	}
}
