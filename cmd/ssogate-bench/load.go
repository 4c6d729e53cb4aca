package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// loadConfig is one closed-loop load run.
type loadConfig struct {
	Addr        string
	Concurrency int           // workers, each with one request in flight
	Conns       int           // gRPC connections shared by the workers
	Warmup      time.Duration // run, not measured
	Duration    time.Duration // measured
	PID         int           // server process whose CPU time is read; 0: none
	CheckStatus bool          // count answers other than the mix's status as errors
}

// weighted is a request mix: the requests of each kind and its weight.
type weighted struct {
	name   string
	status int
	weight int
	reqs   []*authv3.CheckRequest
}

// loadResult is what one run measured.
type loadResult struct {
	Checks     int64
	Errors     int64
	FirstError string
	Elapsed    time.Duration
	Latencies  []time.Duration // sorted
	ServerCPU  time.Duration   // CPU the server used while measured; 0 without PID
	ClientCPU  time.Duration   // CPU this process used while measured
	ServerRSS  int64           // bytes, at the end
}

// Throughput is checks per second.
func (r loadResult) Throughput() float64 { return float64(r.Checks) / r.Elapsed.Seconds() }

// Percentile returns the p-th percentile latency (0 < p <= 100).
func (r loadResult) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.Latencies))*p/100+0.5) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

// ServerCPUPerCheck is the server's CPU time per measured check.
func (r loadResult) ServerCPUPerCheck() time.Duration {
	if r.Checks == 0 {
		return 0
	}
	return r.ServerCPU / time.Duration(r.Checks)
}

// ClientCPUPerCheck is the load generator's CPU time per measured check.
func (r loadResult) ClientCPUPerCheck() time.Duration {
	if r.Checks == 0 {
		return 0
	}
	return r.ClientCPU / time.Duration(r.Checks)
}

// parseMix reads "session=3,public=1" into weights of the known mixes.
func parseMix(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, w, ok := strings.Cut(item, "=")
		n := 1
		if ok {
			var err error
			if n, err = strconv.Atoi(w); err != nil || n < 0 {
				return nil, fmt.Errorf("mix %q: weight %q is not a whole number of 0 or more", s, w)
			}
		}
		if !slices.ContainsFunc(mixes, func(m mixKind) bool { return m.name == name }) {
			return nil, fmt.Errorf("mix %q: unknown request kind %q (want session, public, redirect or api401)", s, name)
		}
		out[name] += n
	}
	total := 0
	for _, w := range out {
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("mix %q names no request kind with a positive weight", s)
	}
	return out, nil
}

// loadMix reads the request files of the mix from dir/requests.
func loadMix(dir string, weights map[string]int) ([]weighted, error) {
	var out []weighted
	for _, m := range mixes {
		w := weights[m.name]
		if w == 0 {
			continue
		}
		reqs, err := readRequestFile(filepath.Join(dir, "requests", m.name+".pb"))
		if err != nil {
			return nil, err
		}
		if len(reqs) == 0 {
			return nil, fmt.Errorf("%s: no %s requests (gen needs members beyond the sessions for redirect and api401)", dir, m.name)
		}
		out = append(out, weighted{name: m.name, status: m.status, weight: w, reqs: reqs})
	}
	return out, nil
}

// schedule interleaves the mix by weight: with session=3,public=1 it is
// s s s p. Worker i starts at a different place in it.
type schedule struct {
	kinds []int // index into the mix, one entry per weight unit
	mix   []weighted
}

func newSchedule(mix []weighted) *schedule {
	s := &schedule{mix: mix}
	for i, m := range mix {
		for range m.weight {
			s.kinds = append(s.kinds, i)
		}
	}
	return s
}

// at returns the n-th request of the schedule and its kind.
func (s *schedule) at(n uint64) (*authv3.CheckRequest, *weighted) {
	m := &s.mix[s.kinds[n%uint64(len(s.kinds))]]
	round := n / uint64(len(s.kinds))
	return m.reqs[round%uint64(len(m.reqs))], m
}

// runLoad runs cfg.Concurrency workers in a closed loop (each sends its next
// Check when the previous one returns) for Warmup + Duration, recording
// latencies and CPU only during Duration.
func runLoad(ctx context.Context, cfg loadConfig, mix []weighted) (loadResult, error) {
	conns := make([]*grpc.ClientConn, max(cfg.Conns, 1))
	for i := range conns {
		cc, err := grpc.NewClient(cfg.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return loadResult{}, err
		}
		defer cc.Close()
		conns[i] = cc
	}
	sched := newSchedule(mix)
	const (
		warming = iota
		measuring
		stopped
	)
	var (
		phase    atomic.Int32
		errCount atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	lat := make([][]time.Duration, cfg.Concurrency)
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			client := authv3.NewAuthorizationClient(conns[w%len(conns)])
			n := uint64(w) * 7919 // spread the workers over the schedule
			mine := make([]time.Duration, 0, 1<<14)
			for {
				p := phase.Load()
				if p == stopped || ctx.Err() != nil {
					break
				}
				req, m := sched.at(n)
				n++
				t0 := time.Now()
				resp, err := client.Check(ctx, req)
				took := time.Since(t0)
				if p != measuring || phase.Load() != measuring {
					continue
				}
				mine = append(mine, took)
				if err == nil && cfg.CheckStatus {
					if got := httpStatus(resp); got != m.status {
						err = fmt.Errorf("%s request %s: status %d, want %d", m.name, req.GetAttributes().GetRequest().GetHttp().GetId(), got, m.status)
					}
				}
				if err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
			lat[w] = mine
		}(w)
	}

	var res loadResult
	select {
	case <-time.After(cfg.Warmup):
	case <-ctx.Done():
	}
	cpu0, err := serverCPU(cfg.PID)
	if err != nil {
		phase.Store(stopped)
		wg.Wait()
		return res, err
	}
	self0 := selfCPU()
	t0 := time.Now()
	phase.Store(measuring)
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
	}
	phase.Store(stopped)
	res.Elapsed = time.Since(t0)
	res.ClientCPU = selfCPU() - self0
	cpu1, err := serverCPU(cfg.PID)
	wg.Wait()
	if err != nil {
		return res, err
	}
	res.ServerCPU = cpu1 - cpu0
	if cfg.PID > 0 {
		res.ServerRSS, _, _ = procMemory(cfg.PID)
	}
	for _, l := range lat {
		res.Latencies = append(res.Latencies, l...)
	}
	slices.Sort(res.Latencies)
	res.Checks = int64(len(res.Latencies))
	res.Errors = errCount.Load()
	if s, ok := firstErr.Load().(string); ok {
		res.FirstError = s
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}

func serverCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, nil
	}
	return procCPU(pid)
}

// selfCPU is this process's user and system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// httpStatus is 200 for an OK CheckResponse, else the denied HTTP status.
func httpStatus(resp *authv3.CheckResponse) int {
	if resp.GetStatus().GetCode() == 0 {
		return 200
	}
	return int(resp.GetDeniedResponse().GetStatus().GetCode())
}

func loadCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadConfig
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:19191", "ext_authz gRPC address")
	dir := fs.String("requests", "", "folder written by gen (reads DIR/requests/<kind>.pb)")
	mixFlag := fs.String("mix", "session=1", "request kinds and weights: session, public, redirect, api401")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "requests in flight (closed loop)")
	fs.IntVar(&cfg.Conns, "conns", 2, "gRPC connections")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "time before measuring (token cache, connections, JIT-free Go warm-up)")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id, to read its CPU time from /proc/PID/stat")
	fs.BoolVar(&cfg.CheckStatus, "check-status", true, "count answers other than the kind's expected status as errors")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "ssogate-bench load: --requests is required")
		return 2
	}
	if cfg.Concurrency < 1 || cfg.Conns < 1 || cfg.Duration <= 0 || cfg.Warmup < 0 {
		fmt.Fprintln(stderr, "ssogate-bench load: --concurrency and --conns must be at least 1, --duration positive, --warmup not negative")
		return 2
	}
	weights, err := parseMix(*mixFlag)
	if err != nil {
		fmt.Fprintf(stderr, "ssogate-bench load: %v\n", err)
		return 2
	}
	mix, err := loadMix(*dir, weights)
	if err != nil {
		fmt.Fprintf(stderr, "ssogate-bench load: %v\n", err)
		return 1
	}
	res, err := runLoad(context.Background(), cfg, mix)
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "ssogate-bench load: %v\n", err)
		return 1
	}
	printResult(stdout, cfg, res)
	if res.Errors > 0 {
		fmt.Fprintf(stderr, "ssogate-bench load: %d of %d checks were errors, the first: %s\n", res.Errors, res.Checks, res.FirstError)
		return 1
	}
	return 0
}

func printResult(w io.Writer, cfg loadConfig, r loadResult) {
	fmt.Fprintf(w, "concurrency %d, %d conns, %s measured after %s warm-up\n", cfg.Concurrency, cfg.Conns, r.Elapsed.Round(time.Millisecond), cfg.Warmup)
	fmt.Fprintf(w, "checks      %d (%.0f/s), errors %d\n", r.Checks, r.Throughput(), r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error %s\n", r.FirstError)
	}
	fmt.Fprintf(w, "latency     p50 %s  p90 %s  p99 %s  p99.9 %s\n", us(r.Percentile(50)), us(r.Percentile(90)), us(r.Percentile(99)), us(r.Percentile(99.9)))
	if cfg.PID > 0 {
		fmt.Fprintf(w, "server CPU  %s per check, RSS %.1f MB\n", us(r.ServerCPUPerCheck()), float64(r.ServerRSS)/(1<<20))
	}
	fmt.Fprintf(w, "client CPU  %s per check\n", us(r.ClientCPUPerCheck()))
}

// us formats d in microseconds with one decimal.
func us(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) + "µs" }
