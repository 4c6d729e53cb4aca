package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// runConfig is a side-by-side run: the reference server and ssogate, each
// loaded in turn at every concurrency, for a number of rounds.
type runConfig struct {
	Dir         string
	Ssogate     string
	Backend     string
	Concurrency []int
	Conns       int
	Warmup      time.Duration
	Duration    time.Duration
	Rounds      int
	Mix         string
	RefAddr     string
	LogLevel    string
	LogFile     string
	RedisServer string
	StartWait   time.Duration
	Markdown    bool
	Env         []string // extra environment for ssogate only, KEY=VALUE
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c runConfig
	fs.StringVar(&c.Dir, "dir", "", "folder written by gen")
	fs.StringVar(&c.Ssogate, "ssogate", "ssogate", "ssogate binary")
	fs.StringVar(&c.Backend, "backend", "memory", "store backend: memory (serve --state), bolt (imported into DIR/state.db) or redis (a redis-server started on 127.0.0.1:16379)")
	conc := fs.String("concurrency", "1,16,64", "comma-separated concurrencies")
	fs.IntVar(&c.Conns, "conns", 2, "gRPC connections of the load generator")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "warm-up before each measurement")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured time per server, concurrency and round")
	fs.IntVar(&c.Rounds, "rounds", 3, "rounds; each loads the reference server and ssogate in turn at every concurrency, and the table shows medians")
	fs.StringVar(&c.Mix, "mix", "session=1", "request kinds and weights: session, public, redirect, api401")
	fs.StringVar(&c.RefAddr, "ref-addr", "127.0.0.1:19292", "listen address of the reference server")
	fs.StringVar(&c.LogLevel, "log-level", "info", "ssogate serve --log-level (info logs every decision)")
	fs.StringVar(&c.LogFile, "log", os.DevNull, "file for ssogate's log (decisions are encoded and written either way)")
	fs.StringVar(&c.RedisServer, "redis-server", "redis-server", "redis-server binary for --backend redis")
	fs.DurationVar(&c.StartWait, "start-timeout", 10*time.Minute, "longest wait for ssogate to load its state and serve")
	fs.BoolVar(&c.Markdown, "markdown", false, "print the table as Markdown")
	envFlag(fs, &c.Env, "KEY=VALUE added to ssogate's environment only (e.g. GOGC=200); repeatable")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if c.Concurrency, err = parseInts(*conc); err != nil || c.Dir == "" || c.Rounds < 1 || c.Conns < 1 || c.Duration <= 0 || c.Warmup < 0 {
		fmt.Fprintln(stderr, "ssogate-bench run: --dir is required; --concurrency is a list of positive numbers; --rounds and --conns >= 1; --duration positive; --warmup not negative")
		return 2
	}
	return untilSignal("run", stderr, func(ctx context.Context) error { return sideBySide(ctx, c, stdout, stderr) })
}

// envFlag defines --ssogate-env on fs: KEY=VALUE pairs appended to env.
func envFlag(fs *flag.FlagSet, env *[]string, usage string) {
	fs.Func("ssogate-env", usage, func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("%q is not KEY=VALUE", v)
		}
		*env = append(*env, v)
		return nil
	})
}

// untilSignal runs fn with a context that SIGINT and SIGTERM cancel, and
// returns the command's exit code: 1 after printing fn's error, else 0.
func untilSignal(cmd string, stderr io.Writer, fn func(context.Context) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := fn(ctx); err != nil {
		fmt.Fprintf(stderr, "ssogate-bench %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// proc is a server started by run.
type proc struct {
	name string
	cmd  *exec.Cmd
	addr string
	done chan struct{} // closed when the process has exited
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits up to 15s before killing the process.
func (p *proc) stop() {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// start runs bin and waits until it serves grpc.health.v1 on addr; it
// returns how long that took.
func start(ctx context.Context, name, addr string, out io.Writer, wait time.Duration, env []string, bin string, args ...string) (*proc, time.Duration, error) {
	if ln, err := net.Listen("tcp", addr); err != nil {
		return nil, 0, fmt.Errorf("%s: %s is taken (a server from an earlier run?): %w", name, addr, err)
	} else {
		ln.Close()
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	// The servers die with this process, even when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	if err := waitServing(ctx, addr, wait, p.done); err != nil {
		p.stop()
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	return p, time.Since(t0), nil
}

// waitServing polls grpc.health.v1 at addr until it answers SERVING.
func waitServing(ctx context.Context, addr string, wait time.Duration, exited <-chan struct{}) error {
	// gRPC's default reconnect backoff starts at a second: the reported
	// start-up time would be rounded up to the next retry.
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.2, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return err
	}
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	deadline := time.Now().Add(wait)
	for {
		select {
		case <-exited:
			return errors.New("exited before serving (see its log)")
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving on %s after %s", addr, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// measurement is one server at one concurrency in one round.
type measurement struct {
	server string
	conc   int
	res    loadResult
}

func sideBySide(ctx context.Context, c runConfig, stdout, stderr io.Writer) error {
	gc, mix, err := readState(c.Dir, c.Mix)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logw, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logw.Close()

	cfgFile, serveArgs, cleanup, err := prepareBackend(ctx, c, stderr, logw)
	defer cleanup()
	if err != nil {
		return err
	}
	ref, _, err := start(ctx, "reference server", c.RefAddr, stderr, time.Minute, nil, self, "ref-server", "--addr", c.RefAddr)
	if err != nil {
		return err
	}
	defer ref.stop()
	args := append([]string{"serve", "--config", cfgFile, "--log-level", c.LogLevel}, serveArgs...)
	sso, took, err := start(ctx, "ssogate", gc.GRPC, logw, c.StartWait, c.Env, c.Ssogate, args...)
	if err != nil {
		return err
	}
	defer sso.stop()
	rss, peak, _ := procMemory(sso.pid())
	fmt.Fprintf(stdout, "state: %d orgs, %d members, %d sessions, %d resources; backend %s; mix %s; %d conns; ssogate env %v; log level %s\n",
		gc.Orgs, gc.Members, gc.Sessions, gc.Resources, c.Backend, c.Mix, c.Conns, c.Env, c.LogLevel)
	fmt.Fprintf(stdout, "ssogate serving after %s, RSS %.1f MB (peak %.1f MB) before load\n",
		took.Round(time.Millisecond), mb(rss), mb(peak))

	var all []measurement
	for round := 1; round <= c.Rounds; round++ {
		for _, conc := range c.Concurrency {
			for _, p := range []*proc{ref, sso} {
				lc := loadConfig{Addr: p.addr, Concurrency: conc, Conns: c.Conns, Warmup: c.Warmup,
					Duration: c.Duration, PID: p.pid(), CheckStatus: p == sso}
				res, err := runLoad(ctx, lc, mix)
				if err != nil {
					return fmt.Errorf("%s at concurrency %d: %w", p.name, conc, err)
				}
				fmt.Fprintf(stderr, "round %d, concurrency %d, %s: %.0f checks/s, p99 %s, CPU %s/check, errors %d\n",
					round, conc, p.name, res.Throughput(), us(res.Percentile(99)), us(res.ServerCPUPerCheck()), res.Errors)
				if res.Errors > 0 {
					// A server that answers wrongly has no figures worth printing.
					return fmt.Errorf("%s at concurrency %d: %d of %d checks were errors, the first: %s", p.name, conc, res.Errors, res.Checks, res.FirstError)
				}
				name := "ref"
				if p == sso {
					name = "ssogate"
				}
				all = append(all, measurement{server: name, conc: conc, res: res})
			}
		}
	}
	rss, peak, _ = procMemory(sso.pid())
	printTable(stdout, c, all)
	fmt.Fprintf(stdout, "ssogate RSS after load %.1f MB (peak %.1f MB)\n", mb(rss), mb(peak))
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// prepareBackend returns the gateway file and serve flags for the backend,
// importing the state into bolt or a fresh redis-server first.
func prepareBackend(ctx context.Context, c runConfig, stderr, logw io.Writer) (cfg string, args []string, cleanup func(), err error) {
	cleanup = func() {}
	state := filepath.Join(c.Dir, "state.yaml")
	switch c.Backend {
	case "memory":
		return filepath.Join(c.Dir, "ssogate.yaml"), []string{"--state", state}, cleanup, nil
	case "bolt":
		cfg = filepath.Join(c.Dir, "ssogate-bolt.yaml")
		need, err := boltNeedsImport(c.Dir)
		if err != nil {
			return "", nil, cleanup, err
		}
		if need {
			if err := importState(ctx, c.Ssogate, cfg, state, stderr); err != nil {
				return "", nil, cleanup, err
			}
		}
		return cfg, nil, cleanup, nil
	case "redis":
		cfg = filepath.Join(c.Dir, "ssogate-redis.yaml")
		stop, err := startRedis(ctx, c.RedisServer, "127.0.0.1:16379", logw)
		if err != nil {
			return "", nil, cleanup, err
		}
		cleanup = stop
		if err := importState(ctx, c.Ssogate, cfg, state, stderr); err != nil {
			return "", nil, cleanup, err
		}
		return cfg, nil, cleanup, nil
	}
	return "", nil, cleanup, fmt.Errorf("unknown backend %q (want memory, bolt or redis)", c.Backend)
}

// boltNeedsImport reports whether dir's bolt store, state.db, is still to
// be imported from its state.yaml. A state.db older than state.yaml was
// imported from an earlier state (gen writes over a folder), and is an
// error rather than something to import over: import would add the new
// records to the old ones.
func boltNeedsImport(dir string) (bool, error) {
	db, err := os.Stat(filepath.Join(dir, "state.db"))
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	st, err := os.Stat(filepath.Join(dir, "state.yaml"))
	if err != nil {
		return false, err
	}
	if db.ModTime().Before(st.ModTime()) {
		return false, fmt.Errorf("%s/state.db is older than its state.yaml (imported from an earlier gen?): remove it to import the state again", dir)
	}
	return false, nil
}

// startRedis starts an empty redis-server on addr (HOST:PORT) that keeps
// nothing on disk, and waits up to 10 s until it accepts connections. stop
// terminates it and waits for it to exit.
func startRedis(ctx context.Context, bin, addr string, logw io.Writer) (stop func(), err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("redis-server address %q: %w", addr, err)
	}
	if ln, err := net.Listen("tcp", addr); err != nil {
		return nil, fmt.Errorf("redis-server: %s is taken (a server from an earlier run?): %w", addr, err)
	} else {
		ln.Close()
	}
	rs := exec.Command(bin, "--port", port, "--bind", host, "--save", "", "--appendonly", "no")
	rs.Stdout, rs.Stderr = logw, logw
	rs.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := rs.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { rs.Wait(); close(exited) }()
	stop = func() {
		rs.Process.Signal(syscall.SIGTERM)
		<-exited
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return stop, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("%s on %s exited before it served (%s); its output goes to --log", bin, addr, rs.ProcessState)
		case <-ctx.Done():
			stop()
			return nil, fmt.Errorf("waiting for %s on %s: %w", bin, addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s on %s: not accepting connections after 10s: %w", bin, addr, err)
		}
	}
}

func importState(ctx context.Context, bin, cfg, state string, stderr io.Writer) error {
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, bin, "import", "--config", cfg, "--state", state)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ssogate import: %w", err)
	}
	fmt.Fprintf(stderr, "imported %s in %s\n", state, time.Since(t0).Round(time.Millisecond))
	return nil
}

// summary is the median of each figure over the rounds.
type summary struct {
	tput, p50, p90, p99, p999, cpu, client float64
	errors                                 int64
}

func summarize(ms []measurement) summary {
	med := func(f func(loadResult) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = f(m.res)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	usf := func(d time.Duration) float64 { return float64(d) / 1e3 }
	s := summary{
		tput:   med(loadResult.Throughput),
		p50:    med(func(r loadResult) float64 { return usf(r.Percentile(50)) }),
		p90:    med(func(r loadResult) float64 { return usf(r.Percentile(90)) }),
		p99:    med(func(r loadResult) float64 { return usf(r.Percentile(99)) }),
		p999:   med(func(r loadResult) float64 { return usf(r.Percentile(99.9)) }),
		cpu:    med(func(r loadResult) float64 { return usf(r.ServerCPUPerCheck()) }),
		client: med(func(r loadResult) float64 { return usf(r.ClientCPUPerCheck()) }),
	}
	for _, m := range ms {
		s.errors += m.res.Errors
	}
	return s
}

func printTable(w io.Writer, c runConfig, all []measurement) {
	if c.Markdown {
		fmt.Fprintln(w, "| concurrency | server | checks/s | p50 µs | p90 µs | p99 µs | p99.9 µs | server CPU µs/check | load-gen CPU µs/check | errors |")
		fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	} else {
		fmt.Fprintf(w, "%-5s %-9s %9s %8s %8s %8s %8s %9s %9s %7s\n", "conc", "server", "checks/s", "p50µs", "p90µs", "p99µs", "p99.9µs", "cpuµs/chk", "genµs/chk", "errors")
	}
	for _, conc := range c.Concurrency {
		var ref, sso []measurement
		for _, m := range all {
			if m.conc != conc {
				continue
			}
			if m.server == "ref" {
				ref = append(ref, m)
			} else {
				sso = append(sso, m)
			}
		}
		r, s := summarize(ref), summarize(sso)
		row := func(name string, x summary) {
			if c.Markdown {
				fmt.Fprintf(w, "| %d | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f | %.1f | %d |\n", conc, name, x.tput, x.p50, x.p90, x.p99, x.p999, x.cpu, x.client, x.errors)
			} else {
				fmt.Fprintf(w, "%-5d %-9s %9.0f %8.0f %8.0f %8.0f %8.0f %9.1f %9.1f %7d\n", conc, name, x.tput, x.p50, x.p90, x.p99, x.p999, x.cpu, x.client, x.errors)
			}
		}
		row("reference", r)
		row("ssogate", s)
		ratio := fmt.Sprintf("ssogate/ref: throughput %.2f, p99 %.2f, CPU/check %.2f", s.tput/r.tput, s.p99/r.p99, s.cpu/r.cpu)
		if c.Markdown {
			fmt.Fprintf(w, "| %d | **ratio** | **%.2f** | %.2f | %.2f | **%.2f** | %.2f | **%.2f** | | |\n", conc, s.tput/r.tput, s.p50/r.p50, s.p90/r.p90, s.p99/r.p99, s.p999/r.p999, s.cpu/r.cpu)
		} else {
			fmt.Fprintf(w, "%-5d %s\n", conc, ratio)
		}
	}
}
