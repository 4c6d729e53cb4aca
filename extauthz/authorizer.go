// Package extauthz is ssogate's decision path: the Envoy ext_authz v3
// Authorization service (envoy.service.auth.v3.Authorization/Check).
//
// Check reads like a pipeline: normalise the path and resolve the hub route
// (package route), identify the platform user (package identity), load the
// membership, SSO session and catalog entry (package store), evaluate the
// Rego policy (package policies) and build the CheckResponse. Every error on
// that path denies with 503 {"error":"unavailable"}: it fails closed.
package extauthz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/extauthz/route"
	"github.com/ssogate/ssogate/extauthz/wire"
	"github.com/ssogate/ssogate/identity"
	"github.com/ssogate/ssogate/internal/accept"
	"github.com/ssogate/ssogate/policies"
	"github.com/ssogate/ssogate/role"
	"github.com/ssogate/ssogate/store"
)

// Lookup is what the decision path reads from the store.
type Lookup interface {
	Membership(ctx context.Context, org, user string) (*store.Membership, error)
	Session(ctx context.Context, org, user string) (*store.Session, error)
	Resource(ctx context.Context, typ, id string) (*store.Resource, error)
}

// RecordsLookup is a Lookup that also reads all of a Check's records in
// one call; the decision path then uses that instead of three lookups
// (store/cache in front of Redis: one round trip on a cache miss instead
// of three).
type RecordsLookup interface {
	Records(ctx context.Context, q store.RecordsQuery) (store.Records, error)
}

// Options tune an Authorizer.
type Options struct {
	// Now is the decision clock; nil means time.Now. eval fixes it with --now.
	Now func() time.Time
	// Logger receives errors, and the decision log (one record per Check)
	// when Decisions is nil; nil discards them.
	Logger *slog.Logger
	// Decisions, when set, receives the decision log instead of Logger.
	Decisions DecisionLog
	// Metrics, when set, observes every decision: the HTTP status (200 for
	// allow), the reason code and the time spent in Check.
	Metrics interface {
		ObserveDecision(status int, reason string, took time.Duration)
	}
}

// state is everything derived from configuration; it is swapped whole.
type state struct {
	publicURL string
	orgs      *route.OrgMap[orgEntry] // org name, ignoring ASCII case → org
	policy    *policies.Engine
	auth      *identity.Authenticator
	mdNS      string
	mdKey     string
}

// orgEntry is what the decision path needs of an org, derived from its
// configuration once, at load time, and held in the route's org index, so
// that a Check finds it with the route's lookup (docs/performance.md).
type orgEntry struct {
	sso    bool            // sso.enabled
	policy policies.OrgRef // its policy data; its Name is the input's org
}

// Authorizer decides CheckRequests. It is safe for concurrent use.
type Authorizer struct {
	authv3.UnimplementedAuthorizationServer

	state     atomic.Pointer[state]
	store     Lookup
	records   RecordsLookup // store, when it is one; else nil
	now       func() time.Time
	logger    *slog.Logger
	decisions DecisionLog
	metrics   interface {
		ObserveDecision(status int, reason string, took time.Duration)
	}
}

// New builds an Authorizer from a loaded configuration: it prepares the
// policy (the embedded default plus policy_dir modules) with the org data and
// the platform-token verifier. Errors name what could not be built.
func New(ctx context.Context, cfg *config.Config, st Lookup, o Options) (*Authorizer, error) {
	a := &Authorizer{store: st, now: o.Now, logger: o.Logger, metrics: o.Metrics}
	a.records, _ = st.(RecordsLookup)
	if a.now == nil {
		a.now = time.Now
	}
	if a.logger == nil {
		a.logger = slog.New(slog.DiscardHandler)
	}
	a.decisions = o.Decisions
	if a.decisions == nil {
		a.decisions = SlogDecisions{Handler: a.logger.Handler()}
	}
	if err := a.Reload(ctx, cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload rebuilds the configuration-derived state and swaps it in
// atomically; in-flight checks finish on the old state. On error the old
// state stays.
func (a *Authorizer) Reload(ctx context.Context, cfg *config.Config) error {
	s, err := buildState(ctx, cfg, a.now)
	if err != nil {
		return err
	}
	a.state.Store(s)
	return nil
}

func buildState(ctx context.Context, cfg *config.Config, now func() time.Time) (*state, error) {
	s := &state{
		publicURL: cfg.Gateway.PublicURL,
		orgs:      route.NewOrgMap[orgEntry](len(cfg.Orgs)),
		mdNS:      cfg.Gateway.Identity.Metadata.Namespace,
		mdKey:     cfg.Gateway.Identity.Metadata.Key,
	}
	data := PolicyOrgs(cfg)
	extra, err := policies.LoadDir(cfg.Gateway.PolicyDir)
	if err != nil {
		return nil, err
	}
	if s.policy, err = policies.New(ctx, data, extra); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	for _, o := range cfg.Orgs {
		// config.New refuses these too; a Config built by hand may not.
		if !s.orgs.Add(o.Name, orgEntry{sso: o.SSO.Enabled, policy: s.policy.Org(o.Name)}) {
			return nil, fmt.Errorf("org %q: another org has the same name ignoring case", o.Name)
		}
	}
	auth, err := identity.FromConfig(ctx, cfg.Gateway.Identity, now)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	s.auth = auth
	return s, nil
}

// PolicyOrgs returns the org data the policy reads (data.ssogate.orgs),
// by canonical org name, from a loaded configuration.
func PolicyOrgs(cfg *config.Config) map[string]policies.Org {
	data := make(map[string]policies.Org, len(cfg.Orgs))
	for _, o := range cfg.Orgs {
		data[o.Name] = policies.Org{
			SSOEnabled:            o.SSO.Enabled,
			Mode:                  o.SSO.Mode,
			DefaultRole:           o.DefaultRole.String(),
			SessionTimeout:        o.SSO.SessionTimeout,
			ExternalCollaborators: o.SSO.ExternalCollaborators,
		}
	}
	return data
}

// Check implements envoy.service.auth.v3.Authorization/Check for a
// CheckRequest built in process (ssogate eval, tests): it encodes the
// request and decodes it as the gRPC service does (Register), and returns
// the response decoded from the bytes the service would send, so both
// decide the same bytes the same way. Every failure to decide is a denial
// in the CheckResponse; a request that cannot be encoded (a string that is
// not UTF-8) is a 400. The error is for a response that go-control-plane
// cannot decode, which ssogate does not build.
func (a *Authorizer) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	b, err := proto.Marshal(req)
	var w wire.CheckRequest
	if err == nil {
		err = w.UnmarshalVT(b)
	}
	if err != nil {
		err = fmt.Errorf("encoding the check request: %w", err)
	}
	b, err = a.check(ctx, &w, err).MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("encoding the check response: %w", err)
	}
	var resp authv3.CheckResponse
	if err := proto.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("decoding the check response: %w", err)
	}
	return &resp, nil
}

// check decides one decoded CheckRequest; a non-nil decodeErr answers 400
// without deciding.
func (a *Authorizer) check(ctx context.Context, req *wire.CheckRequest, decodeErr error) *wire.CheckResponse {
	t0 := time.Now()
	var out outcome
	if decodeErr != nil {
		out = badRequest("", decodeErr)
	} else {
		out = a.decideOrRecover(ctx, req)
	}
	took := time.Since(t0)
	if a.metrics != nil {
		a.metrics.ObserveDecision(out.status, out.reason, took)
	}
	a.logDecision(ctx, req, out, took)
	return out.resp
}

// decideOrRecover is decide on the current state, with a panic on the
// way (bbolt panics when it reads a corrupt file) answered as a 503 and
// logged with its stack, instead of ending the process and every Check
// with it.
func (a *Authorizer) decideOrRecover(ctx context.Context, req *wire.CheckRequest) (out outcome) {
	defer func() {
		if p := recover(); p != nil {
			a.logger.ErrorContext(ctx, "panic in the decision path; answered 503", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			out = unavailable(outcome{}, fmt.Errorf("panic in the decision path: %v", p))
		}
	}()
	return a.decide(ctx, a.state.Load(), req, a.now())
}

// outcome is a response with the facts the decision log records.
type outcome struct {
	resp   *wire.CheckResponse
	status int // 200 for allow
	reason string
	org    string
	user   string
	path   string
	err    error // the internal error behind a 503 or the input error behind a 400/401
}

func (a *Authorizer) decide(ctx context.Context, s *state, req *wire.CheckRequest, now time.Time) outcome {
	httpReq := req.GetAttributes().GetRequest().GetHttp()
	if httpReq == nil {
		return badRequest("", errors.New("check request has no attributes.request.http"))
	}
	if err := httpReq.ValidUTF8(); err != nil {
		return badRequest("", err)
	}
	h := newRequestHeaders(httpReq)
	rawPath := httpReq.GetPath()
	if rawPath == "" {
		rawPath = h.Get(":path")
	}
	if rawPath == "" {
		return badRequest("", errors.New("request has no path"))
	}
	path, err := route.Normalize(rawPath)
	if err != nil {
		return badRequest(rawPath, err)
	}
	rt := route.Resolve(path, s.orgs)
	o := outcome{path: path, org: rt.Org}
	org, isOrg := s.orgs.Get(rt.Org) // the entry Resolve just found: in the cache
	method := httpReq.GetMethod()
	if method == "" {
		method = h.Get(":method")
	}
	// Methods are case-sensitive (RFC 9110 section 9.1), but a server behind
	// the proxy may not be: "put" must need the same role as "PUT".
	method = upperASCII(method)

	var user *identity.User
	if isOrg && org.sso && rt.Kind != route.LoginFlow {
		claims, err := metadataClaims(req, s.mdNS, s.mdKey)
		if err != nil {
			o.resp, o.status, o.reason, o.err = deny(400, errorBody(errBadRequest)), 400, errBadRequest, err
			return o
		}
		user, err = s.auth.Authenticate(ctx, h, claims)
		switch {
		case errors.Is(err, identity.ErrAmbiguousIdentity):
			o.resp, o.status, o.reason, o.err = deny(400, errorBody(errAmbiguousIdentity)), 400, errAmbiguousIdentity, err
			return o
		case errors.Is(err, identity.ErrInvalidToken):
			o.resp, o.status, o.reason, o.err = invalidToken(), 401, errInvalidToken, err
			return o
		case err != nil:
			return unavailable(o, fmt.Errorf("identifying the platform user: %w", err))
		}
	}
	in := policyInput{now: now, method: method, browser: accept.HTML(h.Get("accept")), route: rt, org: org.policy.Name()}
	if user != nil {
		o.user = user.Sub
		in.user = user.Sub
	}
	// Orgs without SSO are allowed whatever the store holds (outcome 1), so
	// they do not read it: a store outage leaves them alone.
	if isOrg && org.sso {
		if err := a.load(ctx, &in); err != nil {
			return unavailable(o, err)
		}
	}
	d, err := s.policy.DecideOrg(ctx, in.value(), org.policy)
	if err != nil {
		return unavailable(o, err)
	}
	o.reason = d.Reason
	o.resp, o.status = a.respond(s, d, rt.Org, in.user, rawPath, h)
	return o
}

// load reads the membership, session and catalog entry the policy needs.
// Missing records are not errors; any other store error is. A session
// counts only with a membership. Through Records the session is asked for
// with the membership, so a non-member's is read too: one round trip with
// Redis either way; with bolt, one more read per cache miss.
func (a *Authorizer) load(ctx context.Context, in *policyInput) error {
	rt := in.route
	if rt.Org == "" || rt.Kind == route.LoginFlow {
		return nil
	}
	if a.records != nil {
		q := store.RecordsQuery{Org: rt.Org, User: in.user, Membership: in.user != "", Session: in.user != ""}
		if rt.Kind == route.Resource {
			q.Type, q.ID, q.Resource = rt.Type, rt.ID(), true
		}
		r, err := a.records.Records(ctx, q)
		if err != nil {
			return fmt.Errorf("loading the records of the Check: %w", err)
		}
		if err := checkRoles(r.Membership); err != nil {
			return err
		}
		in.resource, in.membership = r.Resource, r.Membership
		if r.Membership != nil {
			in.session = r.Session
		}
		return nil
	}
	if rt.Kind == route.Resource {
		r, err := a.store.Resource(ctx, rt.Type, rt.ID())
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("loading resource %s %s: %w", rt.Type, rt.ID(), err)
		}
		in.resource = r
	}
	if in.user == "" {
		return nil
	}
	m, err := a.store.Membership(ctx, rt.Org, in.user)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("loading membership of %s in %s: %w", in.user, rt.Org, err)
	}
	if err := checkRoles(m); err != nil {
		return err
	}
	in.membership = m
	sess, err := a.store.Session(ctx, rt.Org, in.user)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("loading SSO session of %s in %s: %w", in.user, rt.Org, err)
	}
	in.session = sess
	return nil
}

// checkRoles returns an error when a stored membership (nil: none) names a
// role that is not one (role.Valid): the policy would read an unknown
// role as the org's default_role, so a record written wrong, or altered
// in the store, fails closed (503) instead.
func checkRoles(m *store.Membership) error {
	if m == nil {
		return nil
	}
	if m.Role != "" && !role.Valid(m.Role) {
		return fmt.Errorf("membership of %s in %s: stored role %q is not a role", m.User, m.Org, m.Role)
	}
	for g, r := range m.ResourceGroups {
		if !role.Valid(r) {
			return fmt.Errorf("membership of %s in %s: stored role %q for resource group %q is not a role", m.User, m.Org, r, g)
		}
	}
	return nil
}

// respond turns a policy decision into a CheckResponse and its HTTP status.
func (a *Authorizer) respond(s *state, d policies.Decision, org, user, rawPath string, h requestHeaders) (*wire.CheckResponse, int) {
	if d.Allow {
		if !d.Identity || user == "" {
			return okResponse(h), 200
		}
		if d.Prompt {
			return okResponse(h, HeaderUser, user, HeaderOrg, org, HeaderRole, d.Role,
				HeaderPrompt, loginURL(s.publicURL, org, rawPath)), 200
		}
		return okResponse(h, HeaderUser, user, HeaderOrg, org, HeaderRole, d.Role), 200
	}
	switch {
	case d.Reason == "sso_session_missing" || d.Reason == "sso_session_expired":
		u := loginURL(s.publicURL, org, rawPath)
		if d.Status == 302 {
			return redirectToLogin(org, u), 302
		}
		return ssoRequired(org, u), d.Status
	case d.Status == 403 && d.Reason == errInsufficientRole:
		return deny(403, map[string]string{"error": errInsufficientRole, "required": d.Required, "role": d.Role}), 403
	case d.Status == 403 && d.Reason == errPolicyDenied:
		return deny(403, map[string]any{"error": errPolicyDenied, "messages": d.Messages}), 403
	case d.Status == 404:
		return deny(404, errorBody(errNotFound)), 404
	case d.Status == 401:
		return deny(401, errorBody(d.Reason)), 401
	case d.Status >= 400 && d.Status < 600:
		return deny(d.Status, errorBody(d.Reason)), d.Status
	}
	// A custom policy asked for a status this gateway cannot express: fail closed.
	return deny(503, errorBody(errUnavailable)), 503
}

// badRequest refuses a request whose path could not be normalised. The
// decision log gets the raw path without its query and fragment, which
// may carry secrets (an access_token parameter); the normalised path of
// every other decision has neither.
func badRequest(path string, err error) outcome {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	return outcome{resp: deny(400, errorBody(errBadRequest)), status: 400, reason: errBadRequest, path: path, err: err}
}

func unavailable(o outcome, err error) outcome {
	o.resp, o.status, o.reason, o.err = deny(503, errorBody(errUnavailable)), 503, errUnavailable, err
	return o
}

// metadataClaims returns the jwt_authn payload that Envoy forwarded in
// attributes.metadata_context.filter_metadata[ns].fields[key], or nil. The
// error names a filter_metadata[ns] that is not an encoded
// google.protobuf.Struct.
func metadataClaims(req *wire.CheckRequest, ns, key string) (*structpb.Struct, error) {
	if ns == "" || key == "" {
		return nil, nil
	}
	var entry *wire.MetadataEntry
	for _, e := range req.GetAttributes().GetMetadataContext().GetFilterMetadata() {
		if e.GetKey() == ns {
			entry = e // a map's last entry wins
		}
	}
	if entry == nil {
		return nil, nil
	}
	// The Struct's parts joined are their merge, as protobuf-go decodes a
	// message field sent more than once.
	var md structpb.Struct
	if err := proto.Unmarshal(bytes.Join(entry.GetValue(), nil), &md); err != nil {
		return nil, fmt.Errorf("attributes.metadata_context.filter_metadata[%q]: %w", ns, err)
	}
	return md.GetFields()[key].GetStructValue(), nil
}

func (a *Authorizer) logDecision(ctx context.Context, req *wire.CheckRequest, o outcome, took time.Duration) {
	level := slog.LevelInfo
	if o.status == 503 {
		level = slog.LevelError
	}
	if !a.decisions.Enabled(ctx, level) {
		return
	}
	a.decisions.LogDecision(ctx, level, DecisionRecord{
		RequestID: req.GetAttributes().GetRequest().GetHttp().GetId(),
		Status:    o.status,
		Reason:    o.reason,
		Path:      o.path,
		Org:       o.org,
		User:      o.user,
		Took:      took,
		Err:       o.err,
	})
}
