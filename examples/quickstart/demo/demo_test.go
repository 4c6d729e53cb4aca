package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/extauthz"
	"github.com/ssogate/ssogate/store/memory"
	"github.com/ssogate/ssogate/store/snapshot"
)

// quickstart is the example folder, seen from this package's directory.
const quickstart = ".."

// want is what a sample request must produce beyond what its file name
// says ("allow-..." or "deny-...-<status>").
type want struct {
	headers     map[string]string // ok_response headers, exact values
	absent      []string          // ok_response does not set these
	denyHeaders map[string]string // denied_response headers, exact values
	body        map[string]string // denied_response JSON body fields
}

const acmeLogin = "https://hub.example.test/organizations/acme/sso/login?return_to="

var wants = map[string]want{
	"allow-public": {absent: []string{"x-sso-user", "x-sso-org", "x-sso-role", "x-sso-prompt"}},
	"allow-member-session": {
		headers: map[string]string{"x-sso-user": "u-alice", "x-sso-org": "acme", "x-sso-role": "write"},
		absent:  []string{"x-sso-prompt"},
	},
	"allow-external-collaborator": {
		headers: map[string]string{"x-sso-user": "u-bob", "x-sso-org": "acme", "x-sso-role": "read"},
		absent:  []string{"x-sso-prompt"},
	},
	"allow-optional-prompt": {headers: map[string]string{
		"x-sso-user": "u-alice", "x-sso-org": "globex", "x-sso-role": "read",
		"x-sso-prompt": "https://hub.example.test/organizations/globex/sso/login?return_to=https%3A%2F%2Fhub.example.test%2Fglobex%2Froadmap",
	}},
	"deny-anonymous-private-404": {body: map[string]string{"error": "not_found"}},
	"deny-expired-session-302": {denyHeaders: map[string]string{
		"location": acmeLogin + "https%3A%2F%2Fhub.example.test%2Facme%2Fsecret-model%2Ftree%2Fmain",
	}},
	"deny-api-sso-required-401": {
		denyHeaders: map[string]string{
			"x-sso-required": "org=acme; url=" + acmeLogin + "https%3A%2F%2Fhub.example.test%2Fapi%2Fmodels%2Facme%2Fsecret-model",
		},
		body: map[string]string{"error": "sso_required", "org": "acme",
			"login_url": acmeLogin + "https%3A%2F%2Fhub.example.test%2Fapi%2Fmodels%2Facme%2Fsecret-model"},
	},
	"deny-insufficient-role-403": {body: map[string]string{"error": "insufficient_role", "required": "admin", "role": "write"}},
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(quickstart, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readRequest(t *testing.T, name string) *authv3.CheckRequest {
	t.Helper()
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(readFile(t, filepath.Join(RequestsDir, name+".json")), req); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return req
}

func referenceNow(t *testing.T) time.Time {
	t.Helper()
	now, err := time.Parse(time.RFC3339, ReferenceNow)
	if err != nil {
		t.Fatal(err)
	}
	return now
}

// The committed state.yaml is exactly what `demo state --now ReferenceNow` prints.
func TestCommittedStateIsGenerated(t *testing.T) {
	if got, want := readFile(t, "state.yaml"), State(referenceNow(t)); !bytes.Equal(got, want) {
		t.Errorf("state.yaml is stale; regenerate it with\n  go run ./examples/quickstart/demo state --now %s > examples/quickstart/state.yaml", ReferenceNow)
	}
}

// The config, the key, its JWK set and the constants of this program agree.
func TestKeysMatchConfig(t *testing.T) {
	cfg, err := config.Load(filepath.Join(quickstart, "ssogate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	id := cfg.Gateway.Identity
	if id.Issuer != Issuer || !slices.Equal(id.Audiences, []string{Audience}) || filepath.Base(id.JWKSFile) != JWKSFile {
		t.Errorf("ssogate.yaml identity = %+v; the demo signs for iss %q, aud %q, keys in %s", id, Issuer, Audience, JWKSFile)
	}
	key, err := ReadKey(filepath.Join(quickstart, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := JWKS(key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, JWKSFile), jwks) {
		t.Errorf("%s is not the public key set of %s; run `go run ./examples/quickstart/demo keys`", JWKSFile, KeyFile)
	}
}

// requests/ holds exactly the samples of Requests, each as CheckRequest
// builds it (up to the token's signature, which is randomised).
func TestRequestFilesAreTheSamples(t *testing.T) {
	key, err := ReadKey(filepath.Join(quickstart, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(quickstart, RequestsDir))
	if err != nil {
		t.Fatal(err)
	}
	var files, names []string
	for _, e := range entries {
		files = append(files, strings.TrimSuffix(e.Name(), ".json"))
	}
	for i, r := range Requests {
		names = append(names, r.Name)
		if _, ok := wants[r.Name]; !ok {
			t.Errorf("%s: no expectation in wants", r.Name)
		}
		if !slices.Contains(files, r.Name) {
			continue
		}
		got := readRequest(t, r.Name)
		exp, err := CheckRequest(key, r, i+1)
		if err != nil {
			t.Fatal(err)
		}
		gh, eh := got.GetAttributes().GetRequest().GetHttp().GetHeaders(), exp.GetAttributes().GetRequest().GetHttp().GetHeaders()
		for _, k := range []string{"cookie", "authorization"} {
			if v, ok := gh[k]; ok && eh[k] != "" {
				eh[k] = v
			}
		}
		if !proto.Equal(got, exp) {
			t.Errorf("%s.json differs from its description in Requests; run `go run ./examples/quickstart/demo requests`", r.Name)
		}
	}
	slices.Sort(names)
	if !slices.Equal(files, names) {
		t.Errorf("requests/ holds %v, want %v", files, names)
	}
}

// Every sample request gets the decision its file name announces, both on a
// fresh snapshot (as `serve` runs in the walk-through) and on the committed
// state.yaml at ReferenceNow (as `eval --now` runs).
func TestDecisions(t *testing.T) {
	cfg, err := config.Load(filepath.Join(quickstart, "ssogate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fresh := time.Now()
	for _, tc := range []struct {
		name  string
		now   time.Time
		state []byte
	}{
		{"fresh state", fresh, State(fresh)},
		{"committed state.yaml", referenceNow(t), readFile(t, "state.yaml")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			snap, err := snapshot.Parse("state.yaml", tc.state)
			if err != nil {
				t.Fatal(err)
			}
			st := memory.New()
			if err := snap.Apply(ctx, st); err != nil {
				t.Fatal(err)
			}
			a, err := extauthz.New(ctx, cfg, st, extauthz.Options{Now: func() time.Time { return tc.now }})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range Requests {
				resp, err := a.Check(ctx, readRequest(t, r.Name))
				if err != nil {
					t.Fatalf("%s: %v", r.Name, err)
				}
				checkResponse(t, r.Name, resp, wants[r.Name])
			}
		})
	}
}

func checkResponse(t *testing.T, name string, resp *authv3.CheckResponse, w want) {
	t.Helper()
	if strings.HasPrefix(name, "allow-") {
		ok := resp.GetOkResponse()
		if resp.GetStatus().GetCode() != 0 || ok == nil {
			t.Errorf("%s: want allow, got %v", name, resp)
			return
		}
		set := map[string]string{}
		for _, h := range ok.GetHeaders() {
			set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		for k, v := range w.headers {
			if set[k] != v {
				t.Errorf("%s: header %s = %q, want %q", name, k, set[k], v)
			}
		}
		for _, k := range w.absent {
			if v, ok := set[k]; ok {
				t.Errorf("%s: header %s = %q, want it unset", name, k, v)
			}
		}
		return
	}
	i := strings.LastIndexByte(name, '-')
	status, err := strconv.Atoi(name[i+1:])
	if !strings.HasPrefix(name, "deny-") || err != nil {
		t.Fatalf("%s: a sample's name is allow-... or deny-...-<status>", name)
	}
	d := resp.GetDeniedResponse()
	if d == nil || int(d.GetStatus().GetCode()) != status {
		t.Errorf("%s: want deny %d, got %v", name, status, resp)
		return
	}
	set := map[string]string{}
	for _, h := range d.GetHeaders() {
		set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	for k, v := range w.denyHeaders {
		if set[k] != v {
			t.Errorf("%s: denied header %s = %q, want %q", name, k, set[k], v)
		}
	}
	if len(w.body) > 0 {
		var body map[string]any
		if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil {
			t.Fatalf("%s: body %q: %v", name, d.GetBody(), err)
		}
		for k, v := range w.body {
			if body[k] != v {
				t.Errorf("%s: body %s = %v, want %q", name, k, body[k], v)
			}
		}
	}
}

// The command line: state prints State, token and request use the demo key.
func TestCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := run([]string{"state", "--now", ReferenceNow}, &out, &errb); rc != 0 || !bytes.Equal(out.Bytes(), State(referenceNow(t))) {
		t.Errorf("state: rc %d, stderr %q", rc, errb.String())
	}
	out.Reset()
	if rc := run([]string{"token", "--dir", quickstart, "--sub", "u-alice"}, &out, &errb); rc != 0 || strings.Count(out.String(), ".") != 2 {
		t.Errorf("token: rc %d, out %q, stderr %q", rc, out.String(), errb.String())
	}
	out.Reset()
	if rc := run([]string{"request", "--dir", quickstart, "--user", "u-dave", "--path", "/acme/open-model"}, &out, &errb); rc != 0 {
		t.Fatalf("request: rc %d, stderr %q", rc, errb.String())
	}
	req := &authv3.CheckRequest{}
	if err := protojson.Unmarshal(out.Bytes(), req); err != nil || req.GetAttributes().GetRequest().GetHttp().GetPath() != "/acme/open-model" {
		t.Errorf("request: %v, %v", err, req)
	}
	if rc := run([]string{"keys", "--dir", t.TempDir()}, &out, &errb); rc == 0 {
		t.Error("keys outside the quickstart folder: want an error")
	}
}
