package extauthz

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/ssogate/ssogate/extauthz/wire"
)

// serve runs f's Authorizer as ssogate serve does (Register, wire.Codec)
// on a loopback port, with opts added, and returns a client connection to
// it.
func serve(t *testing.T, f *fixture, opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	gs := grpc.NewServer(append([]grpc.ServerOption{grpc.ForceServerCodecV2(wire.Codec{})}, opts...)...)
	Register(gs, f.auth)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Over gRPC, a CheckRequest gets the response Check gives it in process,
// with or without a unary interceptor, which sees package wire's messages.
func TestServedOverGRPC(t *testing.T) {
	f := newFixture(t, "")
	var seen []string
	intercept := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		resp, err := next(ctx, req)
		seen = append(seen, fmt.Sprintf("%s %T %T", info.FullMethod, req, resp))
		return resp, err
	}
	plain := authv3.NewAuthorizationClient(serve(t, f))
	intercepted := authv3.NewAuthorizationClient(serve(t, f, grpc.UnaryInterceptor(intercept)))
	alice := "hub_session=" + f.keys.Token("u-alice", time.Hour)
	mallory := "hub_session=" + f.keys.Token("u-mallory", time.Hour)
	reqs := []*authv3.CheckRequest{
		// A redirect whose login URL makes a response over grpc-go's 1 KiB
		// pooling threshold.
		request("GET", "/acme/secret-model/"+strings.Repeat("long-path/", 150), map[string]string{"cookie": mallory, "accept": browserAccept}),
		request("GET", "/acme/secret-model", map[string]string{"cookie": alice, "x-sso-role": "admin"}),
		request("GET", "/acme/secret-model", map[string]string{"cookie": mallory, "accept": browserAccept}),
		request("GET", "/api/models/acme/secret-model", map[string]string{"cookie": mallory}),
		request("GET", "/acme/secret-model", map[string]string{"cookie": "hub_session=garbage"}),
		request("GET", "/acme/open-model", nil),
		request("GET", "/docs", nil),
		request("GET", "/acme/../x", nil),
	}
	for _, req := range reqs {
		path := req.GetAttributes().GetRequest().GetHttp().GetPath()
		want := mustCheck(t, f, req)
		for name, client := range map[string]authv3.AuthorizationClient{"plain": plain, "intercepted": intercepted} {
			got, err := client.Check(context.Background(), req)
			if err != nil {
				t.Fatalf("%s, %s: %v", name, path, err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("%s, %s: over gRPC %v, in process %v", name, path, got, want)
			}
		}
	}
	if r := inspect(t, mustCheck(t, f, reqs[0])); r.status != 302 || len(r.headers["location"]) < 1024 {
		t.Errorf("the long redirect: status %d, location of %d bytes", r.status, len(r.headers["location"]))
	}
	want := authv3.Authorization_Check_FullMethodName + " *wire.CheckRequest *wire.CheckResponse"
	if len(seen) != len(reqs) {
		t.Fatalf("the interceptor saw %d calls, want %d", len(seen), len(reqs))
	}
	for _, got := range seen {
		if got != want {
			t.Errorf("the interceptor saw %q, want %q", got, want)
		}
	}
}

// rawCodec sends the bytes it is given: requests no protobuf library
// would encode (repeated map keys, strings that are not UTF-8).
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

func (rawCodec) Name() string { return "proto" }

// field encodes a length-delimited field: a string, bytes or a message.
func field(n protowire.Number, parts ...[]byte) []byte {
	var v []byte
	for _, p := range parts {
		v = append(v, p...)
	}
	return protowire.AppendBytes(protowire.AppendTag(nil, n, protowire.BytesType), v)
}

func bs(x string) []byte { return []byte(x) }

// rawRequest encodes a CheckRequest whose http request has path and the
// given headers map entries (name, value pairs, in order, repeats kept),
// and metadata_context entries (namespace, encoded Struct pairs).
func rawRequest(path string, headers []string, metadata ...[]byte) []byte {
	var entries [][]byte
	for i := 0; i+1 < len(metadata); i += 2 {
		entries = append(entries, entry(metadata[i], metadata[i+1]))
	}
	return rawRequestEntries(path, headers, entries...)
}

// entry encodes a filter_metadata entry: the namespace, then the Struct in
// the parts given (one value field each).
func entry(ns []byte, parts ...[]byte) []byte {
	e := field(1, ns)
	for _, p := range parts {
		e = append(e, field(2, p)...)
	}
	return e
}

// rawRequestEntries is rawRequest with encoded filter_metadata entries.
func rawRequestEntries(path string, headers []string, entries ...[]byte) []byte {
	http := [][]byte{field(1, bs("raw-1")), field(2, bs("GET")), field(4, bs(path))}
	for i := 0; i+1 < len(headers); i += 2 {
		http = append(http, field(3, field(1, bs(headers[i])), field(2, bs(headers[i+1]))))
	}
	attrs := [][]byte{field(4, field(2, http...))}
	var md [][]byte
	for _, e := range entries {
		md = append(md, field(1, e))
	}
	if md != nil {
		attrs = append(attrs, field(11, md...))
	}
	return field(1, attrs...)
}

// Requests only a hand-made encoder sends: each is decided as Envoy's
// own message type would read it, or refused.
func TestOddEncodings(t *testing.T) {
	f := newFixture(t, "")
	conn := serve(t, f)
	alice := "hub_session=" + f.keys.Token("u-alice", time.Hour)
	claims, err := structpb.NewStruct(map[string]any{"platform_user": map[string]any{
		"sub": "u-alice", "exp": float64(time.Now().Add(time.Hour).Unix()), "iss": "https://hub.example.test"}})
	must(t, err)
	claimBytes, err := proto.Marshal(claims)
	must(t, err)
	other, err := structpb.NewStruct(map[string]any{"other": "x"})
	must(t, err)
	otherBytes, err := proto.Marshal(other)
	must(t, err)
	const ns = "envoy.filters.http.jwt_authn"
	for _, tc := range []struct {
		name   string
		req    []byte
		status int    // 0: the call fails with codes.Internal
		user   string // x-sso-user of an allow
	}{
		// A map's last entry for a key wins (protobuf's rule): the
		// token read is the one go-control-plane's map would hold.
		{"repeated cookie, valid last", rawRequest("/acme/secret-model", []string{"cookie", "hub_session=garbage", "cookie", alice}), 200, "u-alice"},
		{"repeated cookie, garbage last: anonymous", rawRequest("/acme/secret-model", []string{"cookie", alice, "cookie", "hub_session=garbage"}), 404, ""},
		{"a :path header does not override path", rawRequest("/acme/secret-model", []string{":path", "/docs", "cookie", alice}), 200, "u-alice"},
		{"path not UTF-8", rawRequest("/acme/secret-model\xff", []string{"cookie", alice}), 400, ""},
		{"header not UTF-8", rawRequest("/acme/secret-model", []string{"cookie", alice, "accept", "text/\xfe"}), 400, ""},
		{"jwt_authn claims", rawRequest("/api/datasets/acme/train-data", nil, bs(ns), claimBytes), 200, "u-alice"},
		{"jwt_authn claims, last entry wins", rawRequest("/api/datasets/acme/train-data", nil, bs(ns), bs("\xff\xff"), bs(ns), claimBytes), 200, "u-alice"},
		{"jwt_authn not a Struct", rawRequest("/api/datasets/acme/train-data", nil, bs(ns), bs("\x0a\xff")), 400, ""},
		// A Struct sent in two parts is their merge, as protobuf-go
		// decodes it: the claims and another field.
		{"jwt_authn claims in two parts", rawRequestEntries("/api/datasets/acme/train-data", nil, entry(bs(ns), claimBytes, otherBytes)), 200, "u-alice"},
		{"jwt_authn claims in two parts, reversed", rawRequestEntries("/api/datasets/acme/train-data", nil, entry(bs(ns), otherBytes, claimBytes)), 200, "u-alice"},
		{"other namespace not a Struct: not read", rawRequest("/acme/open-model", nil, bs("other"), bs("\x0a\xff")), 200, ""},
		{"truncated", rawRequest("/acme/secret-model", nil)[:10], 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := new(authv3.CheckResponse)
			err := conn.Invoke(context.Background(), authv3.Authorization_Check_FullMethodName, tc.req, resp, grpc.ForceCodecV2(rawCodec{}))
			if tc.status == 0 {
				if status.Code(err) != codes.Internal {
					t.Fatalf("error %v, want codes.Internal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := inspect(t, resp)
			if r.status != tc.status || r.headers[HeaderUser] != tc.user {
				t.Fatalf("status %d user %q, want %d %q (%+v)", r.status, r.headers[HeaderUser], tc.status, tc.user, r)
			}
			if tc.status == 400 && r.body["error"] != "bad_request" {
				t.Errorf("body %v, want bad_request", r.body)
			}
			// What go-control-plane's message reads from the same bytes.
			var envoy authv3.CheckRequest
			if err := proto.Unmarshal(tc.req, &envoy); err == nil && tc.status != 400 {
				want := envoy.GetAttributes().GetRequest().GetHttp().GetHeaders()["cookie"]
				if tc.user != "" && want != "" && want != alice {
					t.Errorf("go-control-plane reads cookie %q; allowed as %s", want, tc.user)
				}
			}
		})
	}
}
