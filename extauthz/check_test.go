package extauthz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/extauthz/route"
	"github.com/ssogate/ssogate/store"
)

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// result is the part of a CheckResponse the tests compare.
type result struct {
	status  int               // 200 for allow, else denied_response status
	headers map[string]string // ok or denied headers
	removed []string
	body    map[string]any
}

func inspect(t *testing.T, resp *authv3.CheckResponse) result {
	t.Helper()
	r := result{headers: map[string]string{}}
	if ok := resp.GetOkResponse(); resp.GetStatus().GetCode() == 0 {
		r.status = 200
		for _, h := range ok.GetHeaders() {
			r.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		r.removed = ok.GetHeadersToRemove()
		for _, k := range r.removed {
			if _, set := r.headers[k]; set {
				t.Errorf("header %s is both set and removed", k)
			}
		}
		return r
	}
	d := resp.GetDeniedResponse()
	if d == nil {
		t.Fatalf("deny without denied_response: %v", resp)
	}
	r.status = int(d.GetStatus().GetCode())
	for _, h := range d.GetHeaders() {
		r.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if r.headers["cache-control"] != "no-store" {
		t.Errorf("denial without cache-control: no-store")
	}
	wantCode := int32(7)
	if r.status == 401 {
		wantCode = 16
	}
	if got := resp.GetStatus().GetCode(); got != wantCode {
		t.Errorf("grpc status %d for HTTP %d, want %d", got, r.status, wantCode)
	}
	if strings.HasPrefix(r.headers["content-type"], "application/json") {
		if err := json.Unmarshal([]byte(d.GetBody()), &r.body); err != nil {
			t.Fatalf("JSON denial body %q: %v", d.GetBody(), err)
		}
	}
	return r
}

func TestCheckDecisions(t *testing.T) {
	f := newFixture(t, "")
	alice := "hub_session=" + f.keys.Token("u-alice", time.Hour)
	bearer := func(sub string) string { return "Bearer " + f.keys.Token(sub, time.Hour) }
	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
		want    map[string]string // headers that must be set with these values
		absent  []string          // headers that must not be set
		body    map[string]any
	}{
		{name: "anonymous public model", method: "GET", path: "/acme/open-model/resolve/main/x.json",
			headers: map[string]string{"accept": "*/*"}, status: 200, absent: []string{HeaderUser}},
		{name: "anonymous private model", method: "GET", path: "/acme/secret-model",
			headers: map[string]string{"accept": browserAccept}, status: 404, body: map[string]any{"error": "not_found"}},
		{name: "unlisted resource is private", method: "GET", path: "/acme/nobody-knows",
			headers: map[string]string{}, status: 404},
		{name: "member with session", method: "GET", path: "/acme/secret-model/blob/main/README.md",
			headers: map[string]string{"cookie": "theme=dark; " + alice, "accept": browserAccept}, status: 200,
			want: map[string]string{HeaderUser: "u-alice", HeaderOrg: "acme", HeaderRole: "write"}, absent: []string{HeaderPrompt}},
		{name: "org name in any case uses the file's spelling", method: "GET", path: "/ACME/secret-model",
			headers: map[string]string{"cookie": alice}, status: 200, want: map[string]string{HeaderOrg: "acme"}},
		{name: "expired session from a browser", method: "GET", path: "/acme/secret-model/tree/main?x=1#frag",
			headers: map[string]string{"authorization": bearer("u-dave"), "accept": browserAccept}, status: 302},
		{name: "expired session on the API", method: "GET", path: "/api/models/acme/secret-model",
			headers: map[string]string{"authorization": bearer("u-dave"), "accept": browserAccept}, status: 401,
			body: map[string]any{"error": "sso_required", "org": "acme"}},
		{name: "git clone without session", method: "GET", path: "/acme/secret-model.git/info/refs?service=git-upload-pack",
			headers: map[string]string{"authorization": bearer("u-mallory"), "accept": "text/html"}, status: 401},
		{name: "accept with text/html q=0 is not a browser", method: "GET", path: "/acme/open-model",
			headers: map[string]string{"authorization": bearer("u-mallory"), "accept": "text/html;q=0, */*"}, status: 401},
		{name: "external collaborator without session reads", method: "GET", path: "/acme/secret-model",
			headers: map[string]string{"authorization": bearer("u-bob")}, status: 200,
			want: map[string]string{HeaderUser: "u-bob", HeaderRole: "read"}},
		{name: "external collaborator cannot push", method: "POST", path: "/api/models/acme/secret-model/commit/main",
			headers: map[string]string{"authorization": bearer("u-bob")}, status: 403,
			body: map[string]any{"error": "insufficient_role", "required": "write", "role": "read"}},
		{name: "git upload-pack with token as Basic password is a read", method: "POST", path: "/acme/secret-model.git/git-upload-pack",
			headers: map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:"+f.keys.Token("u-bob", time.Hour)))},
			status:  200, want: map[string]string{HeaderRole: "read"}},
		{name: "contributor writes own repository", method: "POST", path: "/api/models/acme/erin-model/commit/main",
			headers: map[string]string{"authorization": bearer("u-erin")}, status: 200, want: map[string]string{HeaderRole: "write"}},
		{name: "resource group hides private model", method: "GET", path: "/acme/vision-model",
			headers: map[string]string{"cookie": "hub_session=" + f.keys.Token("u-erin", time.Hour)}, status: 404},
		{name: "optional mode prompts", method: "GET", path: "/globex/plans",
			headers: map[string]string{"cookie": alice}, status: 200,
			want: map[string]string{HeaderOrg: "globex", HeaderRole: "read", HeaderPrompt: "https://hub.example.test/organizations/globex/sso/login?return_to=https%3A%2F%2Fhub.example.test%2Fglobex%2Fplans"}},
		{name: "sso disabled passes through", method: "DELETE", path: "/initech/tps",
			headers: map[string]string{}, status: 200, absent: []string{HeaderUser}},
		{name: "user namespace passes through", method: "GET", path: "/carol/notes",
			headers: map[string]string{"cookie": alice}, status: 200, absent: []string{HeaderUser}},
		{name: "login flow needs no session", method: "GET", path: "/organizations/acme/sso/login?return_to=x",
			headers: map[string]string{"authorization": bearer("u-dave")}, status: 200, absent: []string{HeaderUser}},
		{name: "invalid bearer on an SSO org", method: "GET", path: "/api/models/acme/open-model",
			headers: map[string]string{"authorization": "Bearer not.a.jwt"}, status: 401, body: map[string]any{"error": "invalid_token"},
			want: map[string]string{"www-authenticate": `Bearer error="invalid_token"`}},
		{name: "invalid bearer outside SSO orgs is not examined", method: "GET", path: "/docs/hub",
			headers: map[string]string{"authorization": "Bearer not.a.jwt"}, status: 200},
		{name: "invalid cookie is anonymous", method: "GET", path: "/acme/open-model",
			headers: map[string]string{"cookie": "hub_session=garbage", "accept": browserAccept}, status: 200, absent: []string{HeaderUser}},
		{name: "two users is ambiguous", method: "GET", path: "/acme/secret-model",
			headers: map[string]string{"cookie": alice, "authorization": bearer("u-dave")}, status: 400,
			body: map[string]any{"error": "ambiguous_identity"}},
		{name: "lower-case method needs the same role", method: "put", path: "/api/models/acme/secret-model/commit/main",
			headers: map[string]string{"authorization": bearer("u-bob")}, status: 403},
		{name: "upper-case header names are read", method: "GET", path: "/acme/secret-model",
			headers: map[string]string{"Cookie": alice, "X-SSO-Role": "admin"}, status: 200,
			want: map[string]string{HeaderUser: "u-alice", HeaderRole: "write"}},
		{name: "unknown authorization scheme is an invalid token", method: "GET", path: "/acme",
			headers: map[string]string{"authorization": "Token " + f.keys.Token("u-mallory", time.Hour)}, status: 401},
		{name: "resource group applies to .GIT spelling", method: "GET", path: "/acme/vision-model.GIT/info/refs",
			headers: map[string]string{"authorization": bearer("u-erin")}, status: 404},
		{name: "path parameters are refused", method: "PUT", path: "/acme;x/secret-model/settings", headers: map[string]string{}, status: 400},
		{name: "dot segments cannot escape", method: "GET", path: "/carol/notes/../../acme/secret-model", headers: map[string]string{}, status: 404},
		{name: "repeated slashes merged", method: "GET", path: "//acme//secret-model", headers: map[string]string{}, status: 404},
		{name: "session cookie after a comma", method: "GET", path: "/acme/secret-model",
			headers: map[string]string{"cookie": "theme=dark, " + alice}, status: 200, want: map[string]string{HeaderUser: "u-alice"}},
		{name: "member without session in a spaced cookie is not anonymous", method: "GET", path: "/api/models/acme/open-model",
			headers: map[string]string{"cookie": "theme=dark, hub_session = " + f.keys.Token("u-mallory", time.Hour)}, status: 401,
			body: map[string]any{"error": "sso_required"}},
	}
	// The same decisions when the store reads a Check's records in one call
	// (the cache in front of Redis); its one-at-a-time lookups fail, so a
	// decision path that used them would answer 503.
	ro := &recordsOnly{s: f.store}
	viaRecords, err := New(context.Background(), f.cfg, ro, Options{Now: func() time.Time { return f.now }})
	must(t, err)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, a := range []*Authorizer{f.auth, viaRecords} {
				checkDecision(t, a, tc.method, tc.path, tc.headers, tc.status, tc.want, tc.absent, tc.body)
			}
		})
	}
	if ro.calls.Load() == 0 {
		t.Error("the decision path never called Records")
	}
}

// checkDecision checks a's answer to a request: its status, the headers
// in want (which must have those values) and absent (which must not be
// set), and the body's fields.
func checkDecision(t *testing.T, a *Authorizer, method, path string, headers map[string]string, status int,
	want map[string]string, absent []string, body map[string]any) {
	t.Helper()
	resp, err := a.Check(context.Background(), request(method, path, headers))
	if err != nil {
		t.Fatalf("Check returned an error: %v", err)
	}
	r := inspect(t, resp)
	if r.status != status {
		t.Fatalf("status %d, want %d (headers %v, body %v)", r.status, status, r.headers, r.body)
	}
	for k, v := range want {
		if r.headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, r.headers[k], v)
		}
	}
	for _, k := range absent {
		if _, ok := r.headers[k]; ok {
			t.Errorf("header %s is set", k)
		}
	}
	for k, v := range body {
		if r.body[k] != v {
			t.Errorf("body %s = %v, want %v", k, r.body[k], v)
		}
	}
}

// recordsOnly is a store read only through Records, which counts its
// calls; its Membership, Session and Resource fail.
type recordsOnly struct {
	failingStore
	s     store.Store
	calls atomic.Int32
}

func (r *recordsOnly) Records(ctx context.Context, q store.RecordsQuery) (store.Records, error) {
	r.calls.Add(1)
	return store.ReadRecords(ctx, r.s, q)
}

func mustCheck(t testing.TB, f *fixture, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	resp, err := f.auth.Check(context.Background(), req)
	if err != nil {
		t.Fatalf("Check returned an error: %v", err)
	}
	return resp
}

// The 302, the 401 body and headers all carry the same login_url, built from
// the original path (spec section 5, outcome 4).
func TestLoginURLEverywhere(t *testing.T) {
	f := newFixture(t, "")
	dave := "Bearer " + f.keys.Token("u-dave", time.Hour)
	path := "/acme/secret-model/tree/main/a%20b/../c?q=1&r=ü#frag"
	want := "https://hub.example.test/acme/secret-model/tree/main/a%20b/../c?q=1&r=ü"

	redirect := inspect(t, mustCheck(t, f, request("GET", path, map[string]string{"authorization": dave, "accept": "text/html"})))
	loc, err := url.Parse(redirect.headers["location"])
	if err != nil || redirect.status != 302 {
		t.Fatalf("302 location %q: %v", redirect.headers["location"], err)
	}
	if !strings.HasPrefix(loc.String(), "https://hub.example.test/organizations/acme/sso/login?return_to=") {
		t.Errorf("location = %s", loc)
	}
	if got := loc.Query().Get("return_to"); got != want {
		t.Errorf("return_to = %q, want %q", got, want)
	}
	if strings.ContainsAny(loc.RawQuery[len("return_to="):], "/:?&=#") || strings.Contains(loc.RawQuery, "%c3") {
		t.Errorf("return_to is not fully percent-encoded with upper-case hex: %s", loc.RawQuery)
	}

	api := inspect(t, mustCheck(t, f, request("GET", path, map[string]string{"authorization": dave})))
	u := loc.String()
	if api.body["login_url"] != u {
		t.Errorf("401 body login_url = %v, want %s", api.body["login_url"], u)
	}
	if got := api.headers["www-authenticate"]; got != `SSO realm="acme", url="`+u+`"` {
		t.Errorf("www-authenticate = %s", got)
	}
	if got := api.headers[HeaderRequired]; got != "org=acme; url="+u {
		t.Errorf("x-sso-required = %s", got)
	}
}

func TestSpoofedSSOHeadersAreRemoved(t *testing.T) {
	f := newFixture(t, "")
	alice := "hub_session=" + f.keys.Token("u-alice", time.Hour)
	// x_sso_user and mixes: servers that read headers as CGI variables see
	// them as x-sso-user. x-ssox-y is no identity header and stays.
	spoof := map[string]string{"x-sso-user": "u-dave", "x-sso-role": "admin", "x-sso-prompt": "none", "x-sso-required": "x", "x-sso-anything": "1",
		"x_sso_user": "u-root", "x-sso_role": "admin", "x_sso-org": "globex", "x-ssox-y": "1"}
	underscores := []string{"x_sso_user", "x-sso_role", "x_sso-org"}
	for _, tc := range []struct {
		name, path string
		cookie     string
		removed    []string
	}{
		{"member allow", "/acme/secret-model", alice, append([]string{"x-sso-prompt", "x-sso-required", "x-sso-anything"}, underscores...)},
		{"anonymous public allow", "/acme/open-model", "", append([]string{"x-sso-user", "x-sso-role", "x-sso-prompt", "x-sso-required", "x-sso-anything"}, underscores...)},
		{"pass-through", "/docs/x", "", append([]string{"x-sso-user", "x-sso-role", "x-sso-prompt", "x-sso-required", "x-sso-anything"}, underscores...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			for k, v := range spoof {
				h[k] = v
			}
			if tc.cookie != "" {
				h["cookie"] = tc.cookie
			}
			r := inspect(t, mustCheck(t, f, request("GET", tc.path, h)))
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			for _, k := range tc.removed {
				found := false
				for _, x := range r.removed {
					found = found || x == k
				}
				if !found {
					t.Errorf("%s not in headers_to_remove %v", k, r.removed)
				}
			}
			if tc.cookie != "" && r.headers[HeaderUser] != "u-alice" {
				t.Errorf("x-sso-user = %q, want the authenticated user", r.headers[HeaderUser])
			}
			if slices.Contains(r.removed, "x-ssox-y") || len(r.removed) != len(tc.removed) {
				t.Errorf("headers_to_remove %v, want exactly %v", r.removed, tc.removed)
			}
		})
	}
}

// Thousands of distinct x-sso-* names, some repeated (header_map may
// repeat a name), are each removed once.
func TestManySpoofedHeadersAreRemovedOnce(t *testing.T) {
	f := newFixture(t, "")
	req := request("GET", "/acme/open-model", nil)
	http := req.Attributes.Request.Http
	var list []*corev3.HeaderValue
	for k, v := range http.Headers {
		list = append(list, &corev3.HeaderValue{Key: k, Value: v})
	}
	for i := range 5000 {
		list = append(list, &corev3.HeaderValue{Key: fmt.Sprintf("X-SSO-%d", i%4000), Value: "1"})
	}
	http.Headers, http.HeaderMap = nil, &corev3.HeaderMap{Headers: list}
	r := inspect(t, mustCheck(t, f, req))
	seen := map[string]bool{}
	for _, k := range r.removed {
		if seen[k] {
			t.Fatalf("%s removed twice", k)
		}
		seen[k] = true
	}
	if r.status != 200 || len(seen) != 4000 || !seen["x-sso-3999"] {
		t.Errorf("status %d, %d names removed, want 200 and 4000", r.status, len(seen))
	}
}

// Case variants of one name, as many as fit in a request, are joined in
// the order of their names, each value once.
func TestManyCaseVariantsJoinOnce(t *testing.T) {
	m := map[string]string{"accept": "x"}
	for i := range 1 << 14 {
		name := []byte("xcustomheaders")
		for b := range 14 {
			if i&(1<<b) != 0 {
				name[b] &^= 0x20 // upper-case the b-th letter
			}
		}
		m[string(name)] = "v"
	}
	got := lowerKeys(m)
	if len(got) != 2 || got["accept"] != "x" {
		t.Fatalf("%d names, accept %q", len(got), got["accept"])
	}
	if v := got["xcustomheaders"]; len(v) != 2*len(m)-3 || strings.Count(v, "v") != len(m)-1 {
		t.Errorf("joined value of %d bytes, want %d values", len(v), len(m)-1)
	}
}

// A hand-written request whose header names differ only in case reads the
// same every time (their values joined in the order of the names).
func TestCaseVariantHeadersReadTheSameEveryTime(t *testing.T) {
	f := newFixture(t, "")
	alice := "hub_session=" + f.keys.Token("u-alice", time.Hour)
	req := request("GET", "/acme/secret-model", map[string]string{"Cookie": "a=1; " + alice, "cookie": "b=2", "COOKIE": "c=3"})
	first := inspect(t, mustCheck(t, f, req))
	for range 30 {
		if r := inspect(t, mustCheck(t, f, req)); r.status != first.status || r.headers[HeaderUser] != first.headers[HeaderUser] {
			t.Fatalf("decided %d %q, then %d %q", first.status, first.headers[HeaderUser], r.status, r.headers[HeaderUser])
		}
	}
}

func TestBadInputIs400(t *testing.T) {
	f := newFixture(t, "")
	for _, p := range []string{
		"acme/secret-model", "/api/models/acme%2Fsecret-model", "/acme/x%5c..", "/acme/x%00", "/acme/%zz",
		"/acme\\secret", "/acme/\x01", "/acme/%", "/../acme/secret-model", "/acme/a/../../../x",
	} {
		t.Run(p, func(t *testing.T) {
			r := inspect(t, mustCheck(t, f, request("GET", p, nil)))
			if r.status != 400 || r.body["error"] != "bad_request" {
				t.Errorf("status %d body %v, want 400 bad_request", r.status, r.body)
			}
		})
	}
	t.Run("no http attributes", func(t *testing.T) {
		r := inspect(t, mustCheck(t, f, &authv3.CheckRequest{}))
		if r.status != 400 {
			t.Errorf("status %d", r.status)
		}
	})
	t.Run("no path anywhere", func(t *testing.T) {
		req := request("GET", "", nil)
		delete(req.Attributes.Request.Http.Headers, ":path")
		if r := inspect(t, mustCheck(t, f, req)); r.status != 400 {
			t.Errorf("status %d", r.status)
		}
	})
}

// Envoy with encode_raw_headers sends header_map entries with raw_value.
func TestHeaderMapRawValues(t *testing.T) {
	f := newFixture(t, "")
	req := request("GET", "/acme/secret-model", nil)
	http := req.Attributes.Request.Http
	http.Headers = nil
	http.Path = ""
	http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":path", RawValue: []byte("/acme/secret-model")},
		{Key: ":method", RawValue: []byte("GET")},
		{Key: "cookie", RawValue: []byte("theme=dark")},
		{Key: "cookie", RawValue: []byte("hub_session=" + f.keys.Token("u-alice", time.Hour))},
		{Key: "x-sso-role", RawValue: []byte("admin")},
	}}
	r := inspect(t, mustCheck(t, f, req))
	if r.status != 200 || r.headers[HeaderUser] != "u-alice" || r.headers[HeaderRole] != "write" {
		t.Fatalf("got %+v", r)
	}
}

func TestJWTAuthnMetadata(t *testing.T) {
	f := newFixture(t, "")
	req := request("GET", "/api/datasets/acme/train-data", map[string]string{"accept": "application/json"})
	claims, err := structpb.NewStruct(map[string]any{"sub": "u-alice", "exp": float64(time.Now().Add(time.Hour).Unix()), "iss": "https://hub.example.test"})
	must(t, err)
	req.Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		"envoy.filters.http.jwt_authn": {Fields: map[string]*structpb.Value{"platform_user": structpb.NewStructValue(claims)}},
	}}
	r := inspect(t, mustCheck(t, f, req))
	if r.status != 200 || r.headers[HeaderUser] != "u-alice" {
		t.Fatalf("got %+v", r)
	}
}

// failingStore errors on every read: the decision path must fail closed.
type failingStore struct{ store.Store }

var errStoreDown = errors.New("store unreachable")

func (failingStore) Membership(context.Context, string, string) (*store.Membership, error) {
	return nil, errStoreDown
}
func (failingStore) Session(context.Context, string, string) (*store.Session, error) {
	return nil, errStoreDown
}
func (failingStore) Resource(context.Context, string, string) (*store.Resource, error) {
	return nil, errStoreDown
}

// failingRecords fails Records too.
type failingRecords struct{ failingStore }

func (failingRecords) Records(context.Context, store.RecordsQuery) (store.Records, error) {
	return store.Records{}, errStoreDown
}

func TestStoreErrorsFailClosed(t *testing.T) {
	for _, st := range []Lookup{failingStore{}, failingRecords{}} {
		t.Run(fmt.Sprintf("%T", st), func(t *testing.T) { storeErrorsFailClosed(t, st) })
	}
}

func storeErrorsFailClosed(t *testing.T, st Lookup) {
	f := newFixture(t, "")
	a, err := New(context.Background(), f.cfg, st, Options{})
	must(t, err)
	alice := "hub_session=" + f.keys.Token("u-alice", time.Hour)
	for _, tc := range []struct {
		name, path string
		h          map[string]string
		want       int
	}{
		{"member", "/acme/secret-model", map[string]string{"cookie": alice}, 503},
		{"anonymous on a resource", "/acme/open-model", nil, 503},
		{"outside SSO orgs the store is not needed", "/docs/x", nil, 200},
		{"nor in an org without SSO", "/initech/some-model", map[string]string{"cookie": alice}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := a.Check(context.Background(), request("GET", tc.path, tc.h))
			r := inspect(t, resp)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d", r.status, tc.want)
			}
			if tc.want == 503 && r.body["error"] != "unavailable" {
				t.Errorf("body %v", r.body)
			}
		})
	}
}

func TestPolicyDirTightensAndFailsClosed(t *testing.T) {
	t.Run("custom deny", func(t *testing.T) {
		f := newFixture(t, "package ssogate.custom\n\ndeny contains \"read-only week\" if input.method == \"POST\"\n")
		r := inspect(t, mustCheck(t, f, request("POST", "/api/models/acme/erin-model/commit/main",
			map[string]string{"authorization": "Bearer " + f.keys.Token("u-erin", time.Hour)})))
		if r.status != 403 || r.body["error"] != "policy_denied" {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("an error in a custom module denies 503", func(t *testing.T) {
		f := newFixture(t, "package ssogate.custom\n\ndeny contains m if {\n\tm := sprintf(\"%v\", [1 / 0])\n}\n")
		r := inspect(t, mustCheck(t, f, request("GET", "/docs/x", nil)))
		if r.status != 503 {
			t.Fatalf("got %+v", r)
		}
	})
}

// config.New refuses org names equal ignoring case; a Config built by
// hand is refused by New, since routes find orgs ignoring case.
func TestOrgNamesEqualIgnoringCaseAreRefused(t *testing.T) {
	f := newFixture(t, "")
	cfg := *f.cfg
	twin := *cfg.Orgs[0]
	twin.Name = strings.ToUpper(twin.Name)
	cfg.Orgs = append(append([]*config.Org(nil), cfg.Orgs...), &twin)
	_, err := New(context.Background(), &cfg, failingStore{}, Options{})
	if err == nil || !strings.Contains(err.Error(), twin.Name) || !strings.Contains(err.Error(), "ignoring case") {
		t.Fatalf("New with orgs %q and %q: %v", cfg.Orgs[0].Name, twin.Name, err)
	}
}

// A session counts only with a membership, whether the records are read
// one at a time (which never reads the session of a non-member) or in one
// call (which reads all three).
func TestSessionWithoutMembershipIsNotLoaded(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	must(t, f.store.PutSession(ctx, store.Session{Org: "acme", User: "u-zed", AuthenticatedAt: f.now}))
	viaRecords, err := New(ctx, f.cfg, &recordsOnly{s: f.store}, Options{Now: func() time.Time { return f.now }})
	must(t, err)
	for _, a := range []*Authorizer{f.auth, viaRecords} {
		for _, user := range []string{"u-zed", "u-alice"} {
			in := &policyInput{route: route.Resolve("/acme/secret-model", f.auth.state.Load().orgs), user: user}
			must(t, a.load(ctx, in))
			if member := user == "u-alice"; (in.membership != nil) != member || (in.session != nil) != member || in.resource == nil {
				t.Errorf("records %T, %s: membership %v, session %v, resource %v", a.store, user, in.membership, in.session, in.resource)
			}
		}
	}
}

// A stored membership whose role is not a role fails closed (503), where
// the policy would have read it as the org's default_role.
func TestUnknownStoredRoleFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    store.Membership
	}{
		{"org role", store.Membership{Org: "acme", User: "u-alice", Role: "superuser"}},
		{"org role in upper case", store.Membership{Org: "acme", User: "u-alice", Role: "ADMIN"}},
		{"resource group role", store.Membership{Org: "acme", User: "u-alice", Role: "read", ResourceGroups: map[string]string{"vision": "owner"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "")
			must(t, f.store.PutMembership(context.Background(), tc.m))
			viaRecords, err := New(context.Background(), f.cfg, &recordsOnly{s: f.store}, Options{Now: func() time.Time { return f.now }})
			must(t, err)
			alice := "hub_session=" + f.keys.Token("u-alice", time.Hour)
			for _, a := range []*Authorizer{f.auth, viaRecords} {
				checkDecision(t, a, "GET", "/acme/secret-model", map[string]string{"cookie": alice}, 503, nil, nil, map[string]any{"error": "unavailable"})
			}
		})
	}
}

// panickingStore panics on a read, as bbolt does on a corrupt file.
type panickingStore struct{ failingStore }

func (panickingStore) Membership(context.Context, string, string) (*store.Membership, error) {
	panic("page 12 already freed")
}

func (panickingStore) Resource(context.Context, string, string) (*store.Resource, error) {
	return nil, store.ErrNotFound
}

func TestPanicOnTheDecisionPathIs503(t *testing.T) {
	f := newFixture(t, "")
	a, err := New(context.Background(), f.cfg, panickingStore{}, Options{})
	must(t, err)
	alice := "hub_session=" + f.keys.Token("u-alice", time.Hour)
	checkDecision(t, a, "GET", "/acme/secret-model", map[string]string{"cookie": alice}, 503, nil, nil, map[string]any{"error": "unavailable"})
	// Requests that do not read the store are still answered.
	checkDecision(t, a, "GET", "/docs/x", nil, 200, nil, nil, nil)
}
