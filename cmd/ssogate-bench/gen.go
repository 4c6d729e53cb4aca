package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/protobuf/encoding/protodelim"
)

// Benchmark platform identity: the generated gateway file trusts tokens
// with this issuer and audience, signed by the generated key.
const (
	benchIssuer   = "https://hub.bench.test"
	benchAudience = "hub"
	benchKeyID    = "bench-1"
	benchCookie   = "hub_session"
)

// mixKind is a kind of request in a benchmark mix.
type mixKind struct {
	name   string
	status int // ssogate's answer: 200 for allow, else the denied HTTP status
	doc    string
}

// Mixes are the request kinds gen writes and load sends, with the status
// ssogate must answer (the reference server answers 200 to all).
var mixes = []mixKind{
	{"session", 200, "member with a valid SSO session, platform token in a cookie, GET on a private model"},
	{"public", 200, "anonymous GET on a public model"},
	{"redirect", 302, "member without an SSO session, browser GET: 302 to the org login"},
	{"api401", 401, "member without an SSO session, API GET: 401 sso_required"},
}

// genConfig sizes the benchmark state.
type genConfig struct {
	Orgs      int      `json:"orgs"`
	Members   int      `json:"members"`
	Sessions  int      `json:"sessions"`
	Resources int      `json:"resources"`
	Pool      int      `json:"pool"`  // distinct requests (and platform tokens) per mix
	Roles     []string `json:"roles"` // membership j has role Roles[j % len]; "" is the org default
	// DistinctSettings gives every org its own session timeout (org i:
	// 168h minus i seconds), so that no two orgs share their object of
	// policy data (they still share its keys and common values);
	// otherwise all orgs have the same settings.
	DistinctSettings bool      `json:"distinct_settings,omitempty"`
	TokenTTL         Duration  `json:"token_ttl"`
	Seed             uint64    `json:"seed"`
	Generated        time.Time `json:"generated"`
	GRPC             string    `json:"grpc"` // ssogate's listen addresses in the gateway file
	HTTP             string    `json:"http"`
}

// Duration is a time.Duration that reads and writes as "1h0m0s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

func genCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "folder to write (created; existing files are replaced)")
	var c genConfig
	fs.IntVar(&c.Orgs, "orgs", 10, "organisations (org files), all with SSO enforced")
	fs.IntVar(&c.Members, "members", 0, "memberships; default sessions + pool, so that some members have no session")
	fs.IntVar(&c.Sessions, "sessions", 1000, "SSO sessions; session i belongs to membership i (to a former member when i >= members)")
	fs.IntVar(&c.Resources, "resources", 1000, "catalog entries, spread over the orgs: even ones public, odd ones private")
	fs.BoolVar(&c.DistinctSettings, "distinct-settings", false, "give every org its own session timeout (168h minus i seconds), so that no two orgs share their object of policy data")
	fs.IntVar(&c.Pool, "pool", 1000, "distinct requests per mix (each member request with its own platform token)")
	roles := fs.String("roles", "read,write,contributor,", "membership roles, assigned in turn; an empty item is the org's default_role (read)")
	ttl := fs.Duration("token-ttl", 24*time.Hour, "lifetime of the platform tokens in the request files")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed for the request pools")
	fs.StringVar(&c.GRPC, "grpc", "127.0.0.1:19191", "ssogate gRPC listen address written to the gateway file")
	fs.StringVar(&c.HTTP, "http", "127.0.0.1:18080", "ssogate HTTP listen address written to the gateway file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "ssogate-bench gen: --out is required")
		return 2
	}
	if c.Members == 0 {
		c.Members = c.Sessions + c.Pool
	}
	c.TokenTTL = Duration(*ttl)
	c.Roles = strings.Split(*roles, ",")
	for _, r := range c.Roles {
		if r != "" && !slices.Contains([]string{"no_access", "read", "contributor", "write", "admin"}, r) {
			fmt.Fprintf(stderr, "ssogate-bench gen: --roles: unknown role %q\n", r)
			return 2
		}
	}
	if c.Orgs < 1 || c.Sessions < 0 || c.Resources < 0 || c.Pool < 1 || c.Members < 1 {
		fmt.Fprintln(stderr, "ssogate-bench gen: --orgs, --members and --pool must be positive, --sessions and --resources not negative")
		return 2
	}
	t0 := time.Now()
	if err := generate(*out, c, time.Now()); err != nil {
		fmt.Fprintf(stderr, "ssogate-bench gen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: %d orgs, %d members, %d sessions, %d resources, %d requests per mix (%s)\n",
		*out, c.Orgs, c.Members, c.Sessions, c.Resources, c.Pool, time.Since(t0).Round(time.Millisecond))
	return 0
}

func orgName(i int) string  { return fmt.Sprintf("org-%05d", i) }
func userName(i int) string { return fmt.Sprintf("u%07d", i) }

// memberRole is membership j's role; "" is the org's default_role (read).
func (c genConfig) memberRole(j int) string {
	if len(c.Roles) == 0 {
		return ""
	}
	return c.Roles[j%len(c.Roles)]
}

// generate writes the benchmark folder: ssogate.yaml (memory backend),
// ssogate-bolt.yaml, ssogate-redis.yaml, platform-jwks.json, bench-key.pem,
// orgs/*.yaml, state.yaml (a JSON snapshot), requests/<mix>.pb and bench.json.
func generate(dir string, c genConfig, now time.Time) error {
	c.Generated = now.UTC().Truncate(time.Second)
	// Writing over an earlier state would leave its extra org files and its
	// imported state.db, which would then be served with the new requests.
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty: gen writes a new folder (remove the old state first)", dir)
	}
	for _, d := range []string{dir, filepath.Join(dir, "orgs"), filepath.Join(dir, "requests")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeKeys(dir, key); err != nil {
		return err
	}
	if err := writeGateways(dir, c); err != nil {
		return err
	}
	for i := 0; i < c.Orgs; i++ {
		timeout := 168 * time.Hour
		if c.DistinctSettings {
			timeout -= time.Duration(i) * time.Second
		}
		if err := writeOrg(dir, orgName(i), timeout); err != nil {
			return err
		}
	}
	if err := writeState(filepath.Join(dir, "state.yaml"), c, now); err != nil {
		return err
	}
	if err := writeRequests(dir, c, key, now); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench.json"), append(b, '\n'), 0o644)
}

func writeKeys(dir string, key *ecdsa.PrivateKey) error {
	jwks, err := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &key.PublicKey, KeyID: benchKeyID, Algorithm: "ES256", Use: "sig"},
	}}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "platform-jwks.json"), jwks, 0o644); err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "bench-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

const gatewayTemplate = `# Generated by ssogate-bench gen; see docs/performance.md.
public_url: https://hub.bench.test
listen: {grpc: "%s", http: "%s"}
identity:
  issuer: ` + benchIssuer + `
  audiences: [` + benchAudience + `]
  jwks_file: platform-jwks.json
  cookie: ` + benchCookie + `
  login_url: https://hub.bench.test/login
  clock_skew: 60s
store: %s
orgs_dir: orgs
`

// writeGateways writes one gateway file per store backend.
func writeGateways(dir string, c genConfig) error {
	for name, st := range map[string]string{
		"ssogate.yaml":       "{backend: memory}",
		"ssogate-bolt.yaml":  "{backend: bolt, path: state.db}",
		"ssogate-redis.yaml": "{backend: redis, addr: \"127.0.0.1:16379\"}",
	} {
		body := fmt.Sprintf(gatewayTemplate, c.GRPC, c.HTTP, st)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

const orgTemplate = `name: %[1]s
default_role: read
sso:
  enabled: true
  mode: enforced
  protocol: oidc
  oidc: {issuer: "https://idp.%[1]s.example", client_id: hub-%[1]s}
  session_timeout: %[2]s
  role_mapping:
    attribute: groups
    rules:
      - {value: hub-admins, role: admin}
`

func writeOrg(dir, name string, sessionTimeout time.Duration) error {
	return os.WriteFile(filepath.Join(dir, "orgs", name+".yaml"), []byte(fmt.Sprintf(orgTemplate, name, sessionTimeout)), 0o644)
}

// Catalog layout: resource r belongs to org r % orgs, as that org's k-th
// model (k = r / orgs), named model-<r>; even k are public, odd k private,
// and k = 3 (mod 10) private models are in resource group "vision".
func resourceOrg(r, orgs int) int      { return r % orgs }
func resourceName(r int) string        { return fmt.Sprintf("model-%07d", r) }
func resourcePublic(r, orgs int) bool  { return (r/orgs)%2 == 0 }
func resourceGrouped(r, orgs int) bool { return (r/orgs)%10 == 3 }

// resourceCreator picks the member who created resource r, scattered over
// the members by a hash of r and never a member of r's org (member j is in
// org j % orgs, and only there), so that in every state no member's
// request is for a model it created: those take the full policy, and a
// state where some did would measure another kind of decision. (The
// multiplicative hash this replaced made, with 10,000 orgs, every model of
// an org the creation of one member: its own for one member in 25, 4% of
// the session requests.)
func resourceCreator(r, orgs, members int) int {
	if members <= 0 {
		return 0
	}
	h := uint64(r) + 0x9e3779b97f4a7c15 // splitmix64's finaliser
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	h ^= h >> 31
	c := int(h % uint64(members))
	for i := 0; i < members && orgs > 1 && c%orgs == r%orgs; i++ {
		c = (c + 1) % members // the next member is in the next org
	}
	return c
}

func sessionAge(i int) time.Duration { return time.Hour + time.Duration(i%50)*time.Minute }

// writeState writes the snapshot of spec section 4 as one JSON object,
// one record per line. JSON is YAML, so the file is a snapshot like any
// other (and keeps the name state.yaml); ssogate reads a JSON snapshot as a
// stream, record by record, where a YAML one of a million sessions takes
// minutes and gigabytes to parse. It is written with plain formatting:
// encoding a million records through an encoder is slow too.
func writeState(path string, c genConfig, now time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	// list writes a section of n records, each by rec, one per line.
	list := func(name string, n int, rec func(i int)) {
		fmt.Fprintf(w, "%q: [", name)
		for i := 0; i < n; i++ {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString("\n  ")
			rec(i)
		}
		if n > 0 {
			w.WriteByte('\n')
		}
		w.WriteString("]")
	}
	w.WriteString("{")
	list("memberships", c.Members, func(j int) {
		fmt.Fprintf(w, `{"org": %s, "user": %s`, jsonString(orgName(j%c.Orgs)), jsonString(userName(j)))
		if r := c.memberRole(j); r != "" {
			fmt.Fprintf(w, `, "role": %s`, jsonString(r))
		}
		if j%10 == 7 {
			w.WriteString(`, "resource_groups": {"vision": "write"}`)
		}
		w.WriteString("}")
	})
	w.WriteString(",\n")
	list("sessions", c.Sessions, func(i int) {
		org, user := orgName(i%c.Orgs), userName(i)
		fmt.Fprintf(w, `{"org": %s, "user": %s, "authenticated_at": %s, "email": %s}`, jsonString(org), jsonString(user),
			jsonString(now.Add(-sessionAge(i)).UTC().Format(time.RFC3339)), jsonString(user+"@"+org+".example"))
	})
	w.WriteString(",\n")
	list("resources", c.Resources, func(r int) {
		vis := "private"
		if resourcePublic(r, c.Orgs) {
			vis = "public"
		}
		fmt.Fprintf(w, `{"type": "model", "id": %s, "visibility": %s`, jsonString(orgName(resourceOrg(r, c.Orgs))+"/"+resourceName(r)), jsonString(vis))
		if resourceGrouped(r, c.Orgs) {
			w.WriteString(`, "resource_group": "vision"`)
		}
		fmt.Fprintf(w, `, "created_by": %s}`, jsonString(userName(resourceCreator(r, c.Orgs, c.Members))))
	})
	w.WriteString("}\n")
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// signer signs platform tokens with the benchmark key.
type signer struct {
	s   jose.Signer
	now time.Time
	ttl time.Duration
}

func newSigner(key *ecdsa.PrivateKey, now time.Time, ttl time.Duration) (*signer, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", benchKeyID))
	if err != nil {
		return nil, err
	}
	return &signer{s: s, now: now, ttl: ttl}, nil
}

func (s *signer) token(sub string) (string, error) {
	payload, err := json.Marshal(map[string]any{
		"iss": benchIssuer, "aud": benchAudience, "sub": sub,
		"email": sub + "@users.bench.test", "email_verified": true,
		"iat": s.now.Unix(), "exp": s.now.Add(s.ttl).Unix(),
	})
	if err != nil {
		return "", err
	}
	obj, err := s.s.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// writeRequests writes requests/<mix>.pb: Pool CheckRequests each,
// length-delimited (protodelim), as Envoy would send them.
func writeRequests(dir string, c genConfig, key *ecdsa.PrivateKey, now time.Time) error {
	sg, err := newSigner(key, now, time.Duration(c.TokenTTL))
	if err != nil {
		return err
	}
	rnd := mrand.New(mrand.NewPCG(c.Seed, 0x55060a7e))
	withSession := min(c.Sessions, c.Members)
	for _, m := range mixes {
		var reqs []*authv3.CheckRequest
		for k := 0; k < c.Pool; k++ {
			var req *authv3.CheckRequest
			switch m.name {
			case "session":
				if withSession == 0 {
					break
				}
				j := rnd.IntN(withSession)
				tok, err := sg.token(userName(j))
				if err != nil {
					return err
				}
				org := orgName(j % c.Orgs)
				req = checkRequest("GET", "/"+org+"/"+privateModel(c, j%c.Orgs, rnd)+"/resolve/main/config.json", map[string]string{
					"cookie": "_ga=GA1.1.1234; " + benchCookie + "=" + tok + "; theme=dark",
					"accept": "*/*",
				})
			case "public":
				org := rnd.IntN(c.Orgs)
				req = checkRequest("GET", "/"+orgName(org)+"/"+publicModel(c, org, rnd), map[string]string{
					"accept": "*/*",
				})
			case "redirect", "api401":
				if c.Members <= c.Sessions {
					break
				}
				j := withSession + rnd.IntN(c.Members-withSession)
				tok, err := sg.token(userName(j))
				if err != nil {
					return err
				}
				org := orgName(j % c.Orgs)
				model := privateModel(c, j%c.Orgs, rnd)
				if m.name == "redirect" {
					req = checkRequest("GET", "/"+org+"/"+model+"/tree/main?recursive=1", map[string]string{
						"cookie": benchCookie + "=" + tok,
						"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
					})
				} else {
					req = checkRequest("GET", "/api/models/"+org+"/"+model+"/revision/main", map[string]string{
						"authorization": "Bearer " + tok,
						"accept":        "application/json",
					})
				}
			}
			if req == nil {
				break
			}
			req.Attributes.Request.Http.Id = fmt.Sprintf("%s-%d", m.name, k)
			reqs = append(reqs, req)
		}
		if err := writeRequestFile(filepath.Join(dir, "requests", m.name+".pb"), reqs); err != nil {
			return err
		}
	}
	return nil
}

// privateModel names a private, ungrouped model of org o: one in the
// catalog when there is one, otherwise a name the catalog does not list
// (unlisted resources are private too).
func privateModel(c genConfig, o int, rnd *mrand.Rand) string {
	if r, ok := pickResource(c, o, rnd, func(r int) bool { return !resourcePublic(r, c.Orgs) && !resourceGrouped(r, c.Orgs) }); ok {
		return resourceName(r)
	}
	return fmt.Sprintf("unlisted-%d", rnd.IntN(1000))
}

// publicModel names a public model of org o, or "" → an org page when
// the catalog has none (org pages are public content too).
func publicModel(c genConfig, o int, rnd *mrand.Rand) string {
	if r, ok := pickResource(c, o, rnd, func(r int) bool { return resourcePublic(r, c.Orgs) }); ok {
		return resourceName(r)
	}
	return ""
}

// pickResource picks a resource of org o that satisfies ok, trying a few
// random ones of the org (r = o + k*orgs).
func pickResource(c genConfig, o int, rnd *mrand.Rand, ok func(int) bool) (int, bool) {
	n := (c.Resources - o + c.Orgs - 1) / c.Orgs // resources of org o
	if n <= 0 {
		return 0, false
	}
	for try := 0; try < 32; try++ {
		r := o + rnd.IntN(n)*c.Orgs
		if ok(r) {
			return r, true
		}
	}
	return 0, false
}

// checkRequest builds a CheckRequest with the attributes Envoy sends for
// an HTTP request: method, path, host, scheme, protocol and headers
// (lower-case names, pseudo-headers included).
func checkRequest(method, path string, extra map[string]string) *authv3.CheckRequest {
	h := map[string]string{
		":authority":        "hub.bench.test",
		":method":           method,
		":path":             path,
		":scheme":           "https",
		"user-agent":        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"accept-encoding":   "gzip, deflate, br",
		"x-forwarded-proto": "https",
		"x-request-id":      "7f7a8c1e-6a7b-4a7e-9d55-0c0b9a5f1d21",
	}
	for k, v := range extra {
		h[k] = v
	}
	host := h[":authority"]
	p := path
	q := ""
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p, q = p[:i], p[i+1:]
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: socketAddress("10.0.0.7", 51234)},
		Destination: &authv3.AttributeContext_Peer{Address: socketAddress("10.0.0.2", 443)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method:   method,
			Path:     path,
			Host:     host,
			Scheme:   "https",
			Protocol: "HTTP/2",
			Headers:  h,
			Query:    q,
		}},
	}}
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func writeRequestFile(path string, reqs []*authv3.CheckRequest) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, r := range reqs {
		if _, err := protodelim.MarshalTo(w, r); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readRequestFile reads a file written by writeRequestFile.
func readRequestFile(path string) ([]*authv3.CheckRequest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var out []*authv3.CheckRequest
	for {
		req := &authv3.CheckRequest{}
		err := protodelim.UnmarshalFrom(r, req)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: request %d: %w", path, len(out), err)
		}
		out = append(out, req)
	}
}
