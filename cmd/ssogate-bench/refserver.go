package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os/signal"
	"syscall"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// refServer is the reference ext_authz server: it answers every Check with
// OK and an empty ok_response, without reading the request. It runs on the
// same grpc-go, with the same transport options, as ssogate serve, so the
// difference between the two is ssogate's decision path. Like any plain Go
// ext_authz server, it decodes each CheckRequest into go-control-plane's
// full message with grpc-go's default codec; ssogate serve decodes only
// the fields it reads (extauthz/wire), which is part of its decision path.
type refServer struct {
	authv3.UnimplementedAuthorizationServer
}

var okResponse = &authv3.CheckResponse{
	Status:       &rpcstatus.Status{Code: int32(code.Code_OK)},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
}

// Check implements envoy.service.auth.v3.Authorization.
func (refServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return okResponse, nil
}

// newRefServer returns a gRPC server with the reference Authorization
// service and grpc.health.v1.Health, as ssogate serve registers them.
func newRefServer() *grpc.Server {
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, refServer{})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	return gs
}

func refServerCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("ref-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9292", "gRPC listen address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "ssogate-bench ref-server: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	gs := newRefServer()
	go func() {
		<-ctx.Done()
		gs.Stop()
	}()
	if err := gs.Serve(ln); err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "ssogate-bench ref-server: %v\n", err)
		return 1
	}
	return 0
}
