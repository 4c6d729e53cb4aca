package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// scaleConfig is a scaling run: the reference server and one ssogate per
// state folder, all running at once, loaded in turn in short slices.
type scaleConfig struct {
	Dirs        []string
	Bins        []string // the ssogate binary of each folder: --ssogate, or the folder's @BIN
	Backends    []string // the store backend of each folder: memory, or the folder's :BACKEND
	Ssogate     string
	Concurrency []int
	Conns       int
	Warmup      time.Duration
	Slice       time.Duration
	Rounds      int
	Mix         string
	RefAddr     string
	BasePort    int
	LogLevel    string
	LogFile     string
	StartWait   time.Duration
	Env         []string
	RedisServer string
	RedisPort   int // the i-th folder's redis-server, if its backend is redis, listens on 127.0.0.1:RedisPort+i
}

// backends are the store backends a scaling run can serve a folder with.
var backends = []string{"memory", "bolt", "redis"}

// parseDir reads one --dirs entry, DIR[:BACKEND][@BIN]: the folder, its
// store backend (memory when not given) and its ssogate binary (def when not
// given). Only a backend's name after the last colon is read as one, so a
// folder with a colon in its name is still a folder; a misspelt backend is
// then a folder that does not exist, which scale reports before it starts
// any server.
func parseDir(entry, def string) (dir, backend, bin string, err error) {
	dir, bin, ok := strings.Cut(entry, "@")
	if !ok || bin == "" {
		bin = def
	}
	backend = "memory"
	if i := strings.LastIndexByte(dir, ':'); i >= 0 && slices.Contains(backends, dir[i+1:]) {
		dir, backend = dir[:i], dir[i+1:]
	}
	if dir == "" {
		return "", "", "", fmt.Errorf("--dirs %q names no folder", entry)
	}
	dir, err = filepath.Abs(dir)
	return dir, backend, bin, err
}

func scaleCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c scaleConfig
	dirs := fs.String("dirs", "", "comma-separated folders written by gen, each DIR[:BACKEND][@BIN]: BACKEND is the store, memory (the default, seeded with serve --state), bolt (DIR/state.db, imported when missing) or redis (a redis-server of its own, imported); BIN serves it with another ssogate binary (to compare builds on one state); the first is the baseline the others' growth is measured against")
	fs.StringVar(&c.Ssogate, "ssogate", "ssogate", "ssogate binary")
	conc := fs.String("concurrency", "16,64", "comma-separated concurrencies")
	fs.IntVar(&c.Conns, "conns", 2, "gRPC connections of the load generator")
	fs.DurationVar(&c.Warmup, "warmup", time.Second, "warm-up before each slice")
	fs.DurationVar(&c.Slice, "slice", 4*time.Second, "measured time per server, concurrency and round")
	fs.IntVar(&c.Rounds, "rounds", 15, "rounds; each loads every server once at every concurrency")
	fs.StringVar(&c.Mix, "mix", "session=1", "request kinds and weights: session, public, redirect, api401")
	fs.StringVar(&c.RefAddr, "ref-addr", "127.0.0.1:19292", "listen address of the reference server")
	fs.IntVar(&c.BasePort, "base-port", 19400, "the i-th ssogate (from 0) serves gRPC on 127.0.0.1:base-port+2i and HTTP on the next port")
	fs.StringVar(&c.LogLevel, "log-level", "info", "ssogate serve --log-level (info logs every decision)")
	fs.StringVar(&c.LogFile, "log", os.DevNull, "file for the ssogates' logs (decisions are encoded and written either way)")
	fs.DurationVar(&c.StartWait, "start-timeout", 10*time.Minute, "longest wait for an ssogate to load its state and serve")
	envFlag(fs, &c.Env, "KEY=VALUE added to the ssogates' environment only; repeatable")
	fs.StringVar(&c.RedisServer, "redis-server", "redis-server", "redis-server binary for folders served with :redis")
	fs.IntVar(&c.RedisPort, "redis-base-port", 16379, "the i-th folder (from 0), when served with :redis, gets a redis-server on 127.0.0.1:redis-base-port+i")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	for _, d := range strings.Split(*dirs, ",") {
		if d = strings.TrimSpace(d); d != "" && err == nil {
			var dir, backend, bin string
			dir, backend, bin, err = parseDir(d, c.Ssogate)
			c.Dirs, c.Bins, c.Backends = append(c.Dirs, dir), append(c.Bins, bin), append(c.Backends, backend)
		}
	}
	switch {
	case err != nil:
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments %q: every input is a flag", fs.Args())
	default:
		if c.Concurrency, err = parseInts(*conc); err != nil {
			err = fmt.Errorf("--concurrency: %w", err)
		} else if _, err = parseMix(c.Mix); err != nil {
			err = fmt.Errorf("--mix: %w", err)
		} else {
			err = c.check()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "ssogate-bench scale: %v\n", err)
		return 2
	}
	return untilSignal("scale", stderr, func(ctx context.Context) error { return scale(ctx, c, stdout, stderr) })
}

// check returns what is wrong with the flags, if anything.
func (c scaleConfig) check() error {
	switch {
	case len(c.Dirs) == 0:
		return errors.New("--dirs is required: folders written by gen, comma-separated")
	case c.Rounds < 1:
		return errors.New("--rounds must be at least 1")
	case c.Slice <= 0:
		return errors.New("--slice must be positive")
	case c.Warmup < 0:
		return errors.New("--warmup must not be negative")
	case c.Conns < 1:
		return errors.New("--conns must be at least 1")
	case c.StartWait <= 0:
		return errors.New("--start-timeout must be positive")
	case c.LogFile == "":
		return errors.New("--log must name a file (the null device by default)")
	case c.BasePort < 1 || c.BasePort+2*len(c.Dirs)-1 > 65535:
		return fmt.Errorf("--base-port %d: %d ssogates need ports %d to %d", c.BasePort, len(c.Dirs), c.BasePort, c.BasePort+2*len(c.Dirs)-1)
	case slices.Contains(c.Backends, "redis") && (c.RedisPort < 1 || c.RedisPort+len(c.Dirs)-1 > 65535):
		return fmt.Errorf("--redis-base-port %d: %d folders need ports %d to %d", c.RedisPort, len(c.Dirs), c.RedisPort, c.RedisPort+len(c.Dirs)-1)
	}
	for i, b := range c.Backends {
		if p := c.RedisPort + i; b == "redis" && p >= c.BasePort && p <= c.BasePort+2*len(c.Dirs)-1 {
			return fmt.Errorf("--redis-base-port %d: port %d is one of the ssogates' (%d to %d, from --base-port)", c.RedisPort, p, c.BasePort, c.BasePort+2*len(c.Dirs)-1)
		}
	}
	// The ssogates listen on 127.0.0.1; a reference server on any address
	// with one of their ports would clash with one of them.
	_, p, err := net.SplitHostPort(c.RefAddr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || port < 1 || port > 65535 {
		return fmt.Errorf("--ref-addr %q is not HOST:PORT", c.RefAddr)
	}
	if port >= c.BasePort && port <= c.BasePort+2*len(c.Dirs)-1 {
		return fmt.Errorf("--ref-addr %s: port %d is one of the ssogates' (%d to %d, from --base-port)", c.RefAddr, port, c.BasePort, c.BasePort+2*len(c.Dirs)-1)
	}
	for i, b := range c.Backends {
		if b == "redis" && port == c.RedisPort+i {
			return fmt.Errorf("--ref-addr %s: port %d is the redis-server's of %s (from --redis-base-port)", c.RefAddr, port, c.Dirs[i])
		}
	}
	log, err := filepath.Abs(c.LogFile)
	if err != nil {
		return fmt.Errorf("--log: %w", err)
	}
	for i, d := range c.Dirs {
		for j := range i {
			if c.Dirs[j] != d {
				continue
			}
			if c.Bins[j] == c.Bins[i] && c.Backends[j] == c.Backends[i] {
				return fmt.Errorf("--dirs names %s twice with the same ssogate and backend", d)
			}
			if c.Backends[j] == "bolt" && c.Backends[i] == "bolt" {
				return fmt.Errorf("--dirs names %s twice with bolt: one server at a time can open its state.db", d)
			}
		}
		if strings.HasPrefix(log, d+string(filepath.Separator)) {
			return fmt.Errorf("--log %s is inside the state folder %s: it would overwrite the state", c.LogFile, d)
		}
	}
	return nil
}

// scaleServer is one server of a scaling run and the requests it is sent.
type scaleServer struct {
	name string // "reference" or the state folder
	p    *proc
	mix  []weighted
	ref  bool
	// by concurrency, one slice per round, in round order
	slices map[int][]loadResult
	rss    int64 // bytes, after the last round
}

// scale starts every server, then loads each in turn: per round and
// concurrency, the reference server and every ssogate once, in an order
// rotated each round so that no state always follows another. Slow drift
// of the machine (other tenants, frequency) then falls on every server
// alike, and each round's ratios compare slices seconds apart.
func scale(ctx context.Context, c scaleConfig, stdout, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The ssogates' logs (a decision per Check at info) go to a file
	// (the null device by default), so that no goroutine of this process
	// copies them.
	logw, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("--log: %w", err)
	}
	defer logw.Close()
	// Every folder is read and every port checked before any server
	// starts: loading a million sessions takes a while.
	states := make([]genConfig, len(c.Dirs))
	mixes := make([][]weighted, len(c.Dirs))
	for i, dir := range c.Dirs {
		if states[i], mixes[i], err = readState(dir, c.Mix); err != nil {
			return err
		}
		for _, f := range []string{"state.yaml", "orgs"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				return fmt.Errorf("%s is not a complete folder written by gen: %w", dir, err)
			}
		}
		if c.Backends[i] == "bolt" {
			if _, err := boltNeedsImport(dir); err != nil {
				return err
			}
		}
	}
	addrs := []string{c.RefAddr}
	for i := range c.Dirs {
		addrs = append(addrs, c.grpcAddr(i), c.httpAddr(i))
		if c.Backends[i] == "redis" {
			addrs = append(addrs, c.redisAddr(i))
		}
	}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("%s is taken: %w", a, err)
		}
		ln.Close()
	}
	var servers []*scaleServer
	var redisStops []func() // after the ssogates, which use them
	defer func() {
		for _, s := range servers {
			s.p.stop()
		}
		for _, stop := range redisStops {
			stop()
		}
	}()
	for i, dir := range c.Dirs {
		// A gateway file of the folder's backend on this server's own
		// ports, beside the folder's (its paths are relative to it),
		// named for this process so that two runs on a folder do not
		// share it. Bolt and redis are filled by ssogate import, as an
		// operator would fill them.
		cfg := filepath.Join(dir, fmt.Sprintf("ssogate-scale-%d-%d.yaml", os.Getpid(), i))
		store := map[string]string{
			"memory": "{backend: memory}",
			"bolt":   "{backend: bolt, path: state.db}",
			"redis":  fmt.Sprintf("{backend: redis, addr: %q}", c.redisAddr(i)),
		}[c.Backends[i]]
		body := fmt.Sprintf(gatewayTemplate, c.grpcAddr(i), c.httpAddr(i), store)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			return err
		}
		defer os.Remove(cfg)
		state := filepath.Join(dir, "state.yaml")
		args := []string{"serve", "--config", cfg, "--log-level", c.LogLevel}
		switch c.Backends[i] {
		case "memory":
			args = append(args, "--state", state)
		case "bolt":
			need, err := boltNeedsImport(dir)
			if err != nil {
				return err
			}
			if need {
				if err := importState(ctx, c.Bins[i], cfg, state, stderr); err != nil {
					return err
				}
			}
		case "redis":
			stop, err := startRedis(ctx, c.RedisServer, c.redisAddr(i), logw)
			if err != nil {
				return err
			}
			redisStops = append(redisStops, stop)
			if err := importState(ctx, c.Bins[i], cfg, state, stderr); err != nil {
				return err
			}
		}
		name := dir
		if c.Backends[i] != "memory" {
			name += ":" + c.Backends[i]
		}
		if c.Bins[i] != c.Ssogate {
			name += "@" + c.Bins[i]
		}
		p, took, err := start(ctx, "ssogate for "+name, c.grpcAddr(i), logw, c.StartWait, c.Env, c.Bins[i], args...)
		if err != nil {
			if c.LogFile == os.DevNull && ctx.Err() == nil {
				err = fmt.Errorf("%w; run with --log FILE to keep the ssogates' logs", err)
			}
			return err
		}
		servers = append(servers, &scaleServer{name: name, p: p, mix: mixes[i], slices: map[int][]loadResult{}})
		rss, _, _ := procMemory(p.pid())
		gc := states[i]
		fmt.Fprintf(stdout, "%s: %d orgs, %d members, %d sessions, %d resources; serving after %s, RSS %.1f MB\n",
			name, gc.Orgs, gc.Members, gc.Sessions, gc.Resources, took.Round(time.Millisecond), mb(rss))
	}
	ref, _, err := start(ctx, "reference server", c.RefAddr, stderr, time.Minute, nil, self, "ref-server", "--addr", c.RefAddr)
	if err != nil {
		return err
	}
	// gen names orgs, users and models with fixed widths, so every state's
	// requests have the same sizes: the reference server gets the first's.
	servers = append([]*scaleServer{{name: "reference", p: ref, mix: servers[0].mix, ref: true, slices: map[int][]loadResult{}}}, servers...)
	fmt.Fprintf(stdout, "mix %s; %d conns; slices of %s after %s warm-up; %d rounds; ssogate env %v; log level %s\n",
		c.Mix, c.Conns, c.Slice, c.Warmup, c.Rounds, c.Env, c.LogLevel)

	for round := 0; round < c.Rounds; round++ {
		for _, conc := range c.Concurrency {
			for k := range servers {
				s := servers[(k+round)%len(servers)]
				lc := loadConfig{Addr: s.p.addr, Concurrency: conc, Conns: c.Conns, Warmup: c.Warmup,
					Duration: c.Slice, PID: s.p.pid(), CheckStatus: !s.ref}
				res, err := runLoad(ctx, lc, s.mix)
				if err != nil {
					return fmt.Errorf("%s at concurrency %d: %w", s.name, conc, err)
				}
				if res.Errors > 0 {
					return fmt.Errorf("%s at concurrency %d: %d errors, the first: %s", s.name, conc, res.Errors, res.FirstError)
				}
				s.slices[conc] = append(s.slices[conc], res)
			}
		}
		fmt.Fprintf(stderr, "round %d of %d done\n", round+1, c.Rounds)
	}
	for _, s := range servers {
		s.rss, _, _ = procMemory(s.p.pid())
	}
	printScale(stdout, c, servers)
	return nil
}

func (c scaleConfig) grpcAddr(i int) string  { return fmt.Sprintf("127.0.0.1:%d", c.BasePort+2*i) }
func (c scaleConfig) httpAddr(i int) string  { return fmt.Sprintf("127.0.0.1:%d", c.BasePort+2*i+1) }
func (c scaleConfig) redisAddr(i int) string { return fmt.Sprintf("127.0.0.1:%d", c.RedisPort+i) }

// readState reads a gen folder's bench.json and request mix.
func readState(dir, mixFlag string) (genConfig, []weighted, error) {
	var gc genConfig
	b, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	if err != nil {
		return gc, nil, fmt.Errorf("%s is not a folder written by gen: %w", dir, err)
	}
	if err := json.Unmarshal(b, &gc); err != nil {
		return gc, nil, fmt.Errorf("%s/bench.json: %w", dir, err)
	}
	weights, err := parseMix(mixFlag)
	if err != nil {
		return gc, nil, err
	}
	mix, err := loadMix(dir, weights)
	return gc, mix, err
}

// scaleRow is one server's figures at one concurrency: medians over the
// rounds, and medians of per-round ratios (each round's slice of this
// server over the same round's slice of the reference, or of the baseline).
type scaleRow struct {
	cpu, tput, p99             float64 // µs/check, checks/s, µs
	cpuRatio, tputRatio        float64 // to the reference, per round
	p99Ratio                   float64
	growth, growthLo, growthHi float64 // CPU per check over the baseline's, minus 1: median and quartiles
}

func scaleRows(servers []*scaleServer, conc int) []scaleRow {
	ref, base := servers[0].slices[conc], servers[min(1, len(servers)-1)].slices[conc]
	rows := make([]scaleRow, len(servers))
	for i, s := range servers {
		var cpu, tput, p99, cr, tr, pr, gr []float64
		for r, res := range s.slices[conc] {
			c := float64(res.ServerCPUPerCheck()) / 1e3
			p := float64(res.Percentile(99)) / 1e3
			cpu, tput, p99 = append(cpu, c), append(tput, res.Throughput()), append(p99, p)
			cr = append(cr, ratio(c, float64(ref[r].ServerCPUPerCheck())/1e3))
			tr = append(tr, ratio(res.Throughput(), ref[r].Throughput()))
			pr = append(pr, ratio(p, float64(ref[r].Percentile(99))/1e3))
			gr = append(gr, ratio(c, float64(base[r].ServerCPUPerCheck())/1e3)-1)
		}
		rows[i] = scaleRow{cpu: quantile(cpu, 0.5), tput: quantile(tput, 0.5), p99: quantile(p99, 0.5),
			cpuRatio: quantile(cr, 0.5), tputRatio: quantile(tr, 0.5), p99Ratio: quantile(pr, 0.5),
			growth: quantile(gr, 0.5), growthLo: quantile(gr, 0.25), growthHi: quantile(gr, 0.75)}
	}
	return rows
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// quantile returns the q-quantile of v (0 <= q <= 1), interpolating
// between the two nearest values; 0 for no values.
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	x := q * float64(len(s)-1)
	i := int(x)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (x-float64(i))*(s[i+1]-s[i])
}

func printScale(w io.Writer, c scaleConfig, servers []*scaleServer) {
	fmt.Fprintln(w, "| concurrency | server | CPU µs/check | CPU ratio | growth over the first state (quartiles) | throughput ratio | p99 ratio | RSS after load |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---|---:|---:|---:|")
	for _, conc := range c.Concurrency {
		for i, r := range scaleRows(servers, conc) {
			s := servers[i]
			if s.ref {
				fmt.Fprintf(w, "| %d | reference | %.1f | 1 | | 1 | 1 | |\n", conc, r.cpu)
				continue
			}
			growth := "—"
			if i > 1 {
				growth = fmt.Sprintf("%+.1f%% (%+.1f%% to %+.1f%%)", 100*r.growth, 100*r.growthLo, 100*r.growthHi)
			}
			fmt.Fprintf(w, "| %d | %s | %.1f | %.2f | %s | %.2f | %.2f | %.1f MB |\n",
				conc, s.name, r.cpu, r.cpuRatio, growth, r.tputRatio, r.p99Ratio, mb(s.rss))
		}
	}
}
