package extauthz

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ssogate/ssogate/extauthz/wire"
)

// Register adds the Authorization service and grpc.health.v1.Health to s.
// The returned health server reports SERVING for "" and for
// envoy.service.auth.v3.Authorization; call Shutdown on it to report
// NOT_SERVING while draining.
//
// The Authorization service is go-control-plane's
// (envoy.service.auth.v3.Authorization, method Check, the same name, path
// and messages on the wire), except that it decodes each CheckRequest into
// package wire's messages, which hold only what a Check reads, and answers
// with wire's CheckResponse, which holds only what ssogate sets, instead of
// go-control-plane's messages. Serve with grpc.ForceServerCodecV2(wire.Codec{})
// to decode and encode them without reflection. Unary interceptors see the
// request as a *wire.CheckRequest and the response as a *wire.CheckResponse.
func Register(s *grpc.Server, a *Authorizer) *health.Server {
	s.RegisterService(&authorizationService, a)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	return hs
}

// authorizationService is authv3.Authorization_ServiceDesc with a Check
// handler that decodes a wire.CheckRequest.
var authorizationService = grpc.ServiceDesc{
	ServiceName: authv3.Authorization_ServiceDesc.ServiceName,
	HandlerType: (*wireChecker)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Check", Handler: checkHandler}},
	Metadata:    authv3.Authorization_ServiceDesc.Metadata,
}

// wireChecker is what authorizationService serves.
type wireChecker interface {
	check(ctx context.Context, req *wire.CheckRequest, decodeErr error) *wire.CheckResponse
}

// checkHandler is a grpc.MethodHandler, as protoc-gen-go-grpc writes them.
// A request that cannot be decoded fails with grpc-go's error for it
// (codes.Internal); which bytes decode differs from go-control-plane's
// messages only for input no protobuf encoder writes (see wire.Codec).
func checkHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(wire.CheckRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	c := srv.(wireChecker)
	if interceptor == nil {
		return c.check(ctx, in, nil), nil
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: authv3.Authorization_Check_FullMethodName}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return c.check(ctx, req.(*wire.CheckRequest), nil), nil
	})
}
