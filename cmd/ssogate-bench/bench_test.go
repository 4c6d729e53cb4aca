package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/store/snapshot"
)

func TestParseStatCPU(t *testing.T) {
	// proc(5): utime and stime are fields 14 and 15; the name may hold
	// spaces and parentheses.
	line := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 12345 1000000 500 18446744073709551615\n"
	d, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if d != 3*time.Second {
		t.Errorf("cpu = %s, want 3s (300 ticks)", d)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1")); err == nil {
		t.Error("short line accepted")
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Errorf("own /proc stat: %v", err)
	}
}

func TestParseStatusMemory(t *testing.T) {
	rss, peak, err := parseStatusMemory([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"))
	if err != nil || rss != 1<<20 || peak != 2<<20 {
		t.Errorf("rss %d peak %d err %v", rss, peak, err)
	}
	if _, _, err := procMemory(os.Getpid()); err != nil {
		t.Errorf("own /proc status: %v", err)
	}
}

func TestParseMix(t *testing.T) {
	m, err := parseMix("session=3, public,api401=0")
	if err != nil || m["session"] != 3 || m["public"] != 1 || m["api401"] != 0 {
		t.Errorf("mix %v, %v", m, err)
	}
	for _, bad := range []string{"", "sessions=1", "session=x", "session=-1", "session=0", "session=0,public=0"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestScheduleFollowsWeights(t *testing.T) {
	s := newSchedule([]weighted{{name: "a", weight: 3, reqs: make([]*authv3.CheckRequest, 2)}, {name: "b", weight: 1, reqs: make([]*authv3.CheckRequest, 5)}})
	count := map[string]int{}
	for n := uint64(0); n < 400; n++ {
		_, m := s.at(n)
		count[m.name]++
	}
	if count["a"] != 300 || count["b"] != 100 {
		t.Errorf("counts %v, want a 300 b 100", count)
	}
}

// gen writes a gateway folder that ssogate's own loaders accept, and a
// load run against the reference server answers every request.
func TestGenAndLoad(t *testing.T) {
	dir := t.TempDir()
	c := genConfig{Orgs: 3, Sessions: 20, Members: 30, Resources: 40, Pool: 8, TokenTTL: Duration(time.Hour), Seed: 1, Roles: []string{"read", ""},
		GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}
	if err := generate(dir, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "ssogate.yaml"))
	if err != nil {
		t.Fatalf("generated gateway: %v", err)
	}
	if len(cfg.Orgs) != 3 {
		t.Errorf("%d orgs", len(cfg.Orgs))
	}
	snap, err := snapshot.Read(filepath.Join(dir, "state.yaml"))
	if err != nil {
		t.Fatalf("generated state: %v", err)
	}
	if len(snap.Memberships) != 30 || len(snap.Sessions) != 20 || len(snap.Resources) != 40 {
		t.Errorf("state has %d memberships, %d sessions, %d resources", len(snap.Memberships), len(snap.Sessions), len(snap.Resources))
	}
	weights, _ := parseMix("session,public,redirect,api401")
	mix, err := loadMix(dir, weights)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mix {
		if len(m.reqs) != 8 {
			t.Errorf("%s: %d requests", m.name, len(m.reqs))
		}
		for _, r := range m.reqs {
			h := r.GetAttributes().GetRequest().GetHttp()
			if !strings.HasPrefix(h.GetPath(), "/") || h.GetHeaders()[":path"] != h.GetPath() {
				t.Fatalf("%s: path %q", m.name, h.GetPath())
			}
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := newRefServer()
	go gs.Serve(ln)
	defer gs.Stop()
	res, err := runLoad(context.Background(), loadConfig{Addr: ln.Addr().String(), Concurrency: 4, Conns: 1,
		Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond, PID: os.Getpid()}, mix)
	if err != nil {
		t.Fatal(err)
	}
	if res.Checks == 0 || res.Errors != 0 || res.Percentile(50) <= 0 || res.Percentile(99.9) < res.Percentile(50) {
		t.Errorf("result %+v", res)
	}
	var out bytes.Buffer
	printResult(&out, loadConfig{Concurrency: 4, PID: 1}, res)
	if !strings.Contains(out.String(), "p99.9") {
		t.Errorf("report:\n%s", out.String())
	}
	// The reference server answers 200 to everything: checking statuses
	// against ssogate's expectations must count the denials' kinds as errors.
	res, err = runLoad(context.Background(), loadConfig{Addr: ln.Addr().String(), Concurrency: 2, Conns: 1,
		Duration: 100 * time.Millisecond, CheckStatus: true}, mix)
	if err != nil || res.Errors == 0 {
		t.Errorf("status check found %d errors, err %v", res.Errors, err)
	}
}

// No model is created by a member of its own org, in states of every
// shape, so no session request reads a model its member created (that
// takes the full policy); creators are still spread over the members.
func TestCreatorsAreNotMembersOfTheOrg(t *testing.T) {
	for _, tc := range []struct{ orgs, members, resources int }{
		{10, 2000, 1000},      // /tmp/b10 of docs/performance.md
		{10000, 2000, 100000}, // the 10,000-org states: once 4% of the requests
		{3, 30, 40}, {7, 5, 70}, {2, 1, 10},
	} {
		creators := map[int]bool{}
		for r := range tc.resources {
			c := resourceCreator(r, tc.orgs, tc.members)
			if c < 0 || c >= tc.members {
				t.Fatalf("%+v: resource %d: creator %d is no member", tc, r, c)
			}
			if c%tc.orgs == r%tc.orgs && tc.members > 1 {
				t.Fatalf("%+v: resource %d of org %d created by member %d of the same org", tc, r, r%tc.orgs, c)
			}
			creators[c] = true
		}
		if want := min(tc.members, tc.resources) / 2; len(creators) < want {
			t.Errorf("%+v: %d distinct creators, want at least %d", tc, len(creators), want)
		}
	}
}

// --distinct-settings gives every org its own session timeout; without it
// all orgs share one.
func TestGenDistinctSettings(t *testing.T) {
	for _, distinct := range []bool{false, true} {
		dir := t.TempDir()
		c := genConfig{Orgs: 4, Sessions: 2, Members: 3, Resources: 4, Pool: 2, TokenTTL: Duration(time.Hour), Seed: 1, Roles: []string{"read"},
			GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0", DistinctSettings: distinct}
		if err := generate(dir, c, time.Now()); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(filepath.Join(dir, "ssogate.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		timeouts := map[time.Duration]bool{}
		for _, o := range cfg.Orgs {
			timeouts[o.SSO.SessionTimeout] = true
		}
		if want := map[bool]int{false: 1, true: 4}[distinct]; len(timeouts) != want {
			t.Errorf("distinct %v: %d session timeouts among 4 orgs, want %d", distinct, len(timeouts), want)
		}
	}
}

// gen refuses a folder that holds an earlier state, and load fails when
// its checks fail, so that no figure comes from a wrong setup.
func TestBenchRefusesWrongSetups(t *testing.T) {
	dir := t.TempDir()
	c := genConfig{Orgs: 2, Sessions: 2, Members: 3, Resources: 4, Pool: 2, TokenTTL: Duration(time.Hour), Seed: 1, Roles: []string{"read"},
		GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}
	if err := generate(dir, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := generate(dir, c, time.Now()); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("gen over an earlier state: err = %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing serves there
	var out, errs bytes.Buffer
	if code := run([]string{"load", "--addr", addr, "--requests", dir, "--duration", "200ms", "--warmup", "0s", "--concurrency", "2"}, &out, &errs); code != 1 ||
		!strings.Contains(errs.String(), "checks were errors") {
		t.Errorf("load against nothing: exit %d, stderr %q", code, errs.String())
	}
	for _, args := range [][]string{
		{"load", "--requests", dir, "--concurrency", "-3"},
		{"load", "--requests", dir, "--duration", "0s"},
		{"run", "--dir", dir, "--conns", "0"},
		{"run", "--dir", dir, "--duration", "-1s"},
	} {
		if code := run(args, &out, &errs); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
