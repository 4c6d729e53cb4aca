package extauthz

import (
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Register adds the Authorization service and grpc.health.v1.Health to s.
// The returned health server reports SERVING for "" and for
// envoy.service.auth.v3.Authorization; call Shutdown on it to report
// NOT_SERVING while draining.
func Register(s *grpc.Server, a *Authorizer) *health.Server {
	authv3.RegisterAuthorizationServer(s, a)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	return hs
}
