package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssogate/ssogate/internal/syncbuf"
)

func TestServeLoggerBuffersInfoAndFlushesWarn(t *testing.T) {
	var out syncbuf.Buffer
	logger, closeLog, err := newServeLogger(&out, "info")
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	logger.Info("decision", "allow", true)
	if s := out.String(); s != "" {
		t.Fatalf("an info record was written at once: %q", s)
	}
	logger.With("component", "store").Warn("redis unreachable")
	s := out.String()
	if !strings.Contains(s, `"msg":"decision"`) || !strings.Contains(s, `"msg":"redis unreachable"`) || !strings.Contains(s, `"component":"store"`) {
		t.Fatalf("a warn record did not flush the buffer: %q", s)
	}
	logger.Info("later")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), `"msg":"later"`) {
		if time.Now().After(deadline) {
			t.Fatalf("an info record was not flushed within %v", logFlushInterval)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServeLoggerCloseFlushes(t *testing.T) {
	var out syncbuf.Buffer
	logger, closeLog, err := newServeLogger(&out, "debug")
	if err != nil {
		t.Fatal(err)
	}
	logger.Debug("last words")
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"msg":"last words"`) {
		t.Fatalf("close did not flush: %q", out.String())
	}
	if err := closeLog(); err != nil { // serve closes twice on an error path
		t.Fatal(err)
	}
}

func TestServeLoggerRefusesUnknownLevel(t *testing.T) {
	if _, _, err := newServeLogger(&syncbuf.Buffer{}, "loud"); err == nil {
		t.Fatal("no error for an unknown level")
	}
}

// TestServeFlushesDecisionLogOnSignals: serve buffers its log, so every
// way it is asked to stop must write the buffer out: no decision record of
// a check answered before the signal may be lost.
func TestServeFlushesDecisionLogOnSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			g := newGateway(t)
			cfg, grpcAddr, httpAddr := writeConfig(t, g, "s.yaml", "{backend: memory}")
			p := startProcLevel(t, "serve", cfg, grpcAddr, httpAddr, "info")
			const n = 10
			for range n {
				if _, err := p.check(checkRequest("GET", "/docs/hub", nil)); err != nil {
					t.Fatal(err)
				}
			}
			p.cmd.Process.Signal(sig)
			select {
			case <-p.exited:
			case <-time.After(15 * time.Second):
				t.Fatalf("serve did not stop after %v", sig)
			}
			if !p.cmd.ProcessState.Success() {
				t.Fatalf("serve exited with %s after %v", p.cmd.ProcessState, sig)
			}
			if got := strings.Count(p.stderr.String(), `"msg":"decision"`); got != n {
				t.Fatalf("%d decision records after %v, want %d:\n%s", got, sig, n, p.stderr.String())
			}
		})
	}
}
