package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/extauthz"
	"github.com/ssogate/ssogate/store/memory"
	"github.com/ssogate/ssogate/store/snapshot"
)

// evalCmd decides one CheckRequest against a config and a state snapshot,
// through the same Authorizer.Check as the gRPC server. Exit 0 whatever the
// decision, 2 when an input is invalid.
func evalCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "gateway file (ssogate.yaml)")
	statePath := fs.String("state", "", "store snapshot (spec section 4); empty = no state")
	reqPath := fs.String("request", "", "CheckRequest in protojson; - reads stdin")
	nowFlag := fs.String("now", "", "decision clock, RFC 3339 (default: the current time)")
	logLevel := fs.String("log-level", "warn", "stderr log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" || *reqPath == "" {
		fmt.Fprintln(stderr, "ssogate eval: --config and --request are required")
		return 2
	}
	now := time.Now
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			fmt.Fprintf(stderr, "ssogate eval: --now %q: want an RFC 3339 time such as 2026-06-02T12:00:00Z\n", *nowFlag)
			return 2
		}
		now = func() time.Time { return t }
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "ssogate eval: %v\n", err)
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	// The store expires sessions on the decision clock, so that --now in
	// the past still finds sessions that have since been dropped.
	st := memory.New().WithClock(now)
	if *statePath != "" {
		if _, err := snapshot.Load(context.Background(), *statePath, st); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	}
	req, err := readCheckRequest(*reqPath, stdin)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx := context.Background()
	a, err := extauthz.New(ctx, cfg, st, extauthz.Options{Now: now, Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *cfgPath, err)
		return 2
	}
	resp, err := a.Check(ctx, req)
	if err != nil { // no response to print: an empty one would read as an allow
		fmt.Fprintln(stderr, err)
		return 1
	}
	return printProto(stdout, stderr, resp)
}

// readCheckRequest reads a protojson CheckRequest from path ("-" = stdin).
// Errors name the file and protojson's description of the bad field.
func readCheckRequest(path string, stdin io.Reader) (*authv3.CheckRequest, error) {
	var b []byte
	var err error
	name := path
	if path == "-" {
		name = "stdin"
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading request: %w", err)
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(b, req); err != nil {
		return nil, fmt.Errorf("%s: not a CheckRequest in protojson: %w", name, err)
	}
	return req, nil
}

func printProto(stdout, stderr io.Writer, resp *authv3.CheckResponse) int {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(resp)
	if err != nil {
		fmt.Fprintf(stderr, "encoding response: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}
