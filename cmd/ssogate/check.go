package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// checkCmd sends one CheckRequest to a running ext_authz server over gRPC
// (plaintext) and prints the CheckResponse as protojson.
func checkCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9191", "gRPC address of the ext_authz server")
	reqPath := fs.String("request", "", "CheckRequest in protojson; - reads stdin")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of the call")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *reqPath == "" {
		fmt.Fprintln(stderr, "ssogate check: --request is required")
		return 2
	}
	req, err := readCheckRequest(*reqPath, stdin)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "ssogate check: %v\n", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "ssogate check: %s: %v\n", *addr, err)
		return 1
	}
	return printProto(stdout, stderr, resp)
}
