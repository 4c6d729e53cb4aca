// Package policies holds ssogate's default Rego policy, embedded in the
// binary, and Engine, which prepares it once with OPA's rego package
// (github.com/open-policy-agent/opa/v1/rego) and evaluates it per request.
//
// The query is data.ssogate.authz.decision; its shape is documented in
// authz.rego and mirrored by Decision. An undefined result, several results
// or a result of the wrong shape is an error, which callers turn into a deny.
package policies

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

//go:embed authz.rego
var embedded embed.FS

// DefaultModuleName is the file name of the embedded default policy.
const DefaultModuleName = "authz.rego"

// Query is the decision the engine evaluates.
const Query = "data.ssogate.authz.decision"

// Module is one Rego source file.
type Module struct {
	Name   string // file name or path, used in compile errors
	Source string
}

// DefaultModules returns the embedded default policy.
func DefaultModules() []Module {
	b, err := embedded.ReadFile(DefaultModuleName)
	if err != nil {
		panic(err) // embedded at build time; cannot fail
	}
	return []Module{{Name: DefaultModuleName, Source: string(b)}}
}

// LoadDir reads every *.rego file of dir (not its subfolders), except
// *_test.rego, sorted by name; names are dir joined with the file's name.
// An empty dir returns no modules. Characters such as [ * ? in dir are
// taken as they are (the folder is listed, not globbed).
func LoadDir(dir string) ([]Module, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing policy_dir %s: %w", dir, err)
	}
	var names []string
	for _, ent := range entries {
		if n := ent.Name(); !ent.IsDir() && strings.HasSuffix(n, ".rego") && !strings.HasSuffix(n, "_test.rego") {
			names = append(names, filepath.Join(dir, n))
		}
	}
	sort.Strings(names)
	var out []Module
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("reading policy: %w", err)
		}
		out = append(out, Module{Name: n, Source: string(b)})
	}
	return out, nil
}

// Org is the per-organisation data the policy reads from
// data.ssogate.orgs[name].
type Org struct {
	SSOEnabled            bool
	Mode                  string // enforced | optional
	DefaultRole           string
	SessionTimeout        time.Duration
	ExternalCollaborators []string // platform user ids
}

// Decision is the policy's answer for one request.
type Decision struct {
	Allow    bool     `json:"allow"`
	Status   int      `json:"status,omitempty"`   // HTTP status of a deny: 302, 401, 403, 404
	Reason   string   `json:"reason"`             // stable reason code, e.g. sso_session_valid, not_found
	Identity bool     `json:"identity,omitempty"` // allow: set x-sso-user/org/role
	Role     string   `json:"role,omitempty"`     // the member's effective role
	Required string   `json:"required,omitempty"` // 403: the role the action needs
	Prompt   bool     `json:"prompt,omitempty"`   // allow in optional mode without a session
	Messages []string `json:"messages,omitempty"` // policy_denied: messages of data.ssogate.custom.deny
}

// CompileError is a Rego compile problem at a place in a module.
type CompileError struct {
	File string
	Line int
	Msg  string
}

func (e CompileError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Engine evaluates the prepared policy. It is safe for concurrent use.
type Engine struct {
	compiler *ast.Compiler
	qc       ast.QueryCompiler
	body     ast.Body // the compiled decision query
	result   ast.Var  // the query's variable that holds the decision
	store    storage.Store
	txn      storage.Transaction // read-only, shared by all evaluations
	orgs     ast.Value           // data.ssogate.orgs, read once
	// oneOrg is set when the modules read the org data only as
	// data.ssogate.orgs[input.org] (the default policy without extra
	// modules): an evaluation then sees that org's data alone (orgsFor).
	oneOrg bool
}

// orgsRef is the ref of the org data.
var orgsRef = ast.MustParseRef("data.ssogate.orgs")

// New compiles the default policy plus extra modules against the org data
// and prepares the decision query. Compile errors are returned as a joined
// list of CompileError, one per problem.
func New(ctx context.Context, orgs map[string]Org, extra []Module) (*Engine, error) {
	if err := checkExtra(extra); err != nil {
		return nil, err
	}
	mods := DefaultModules()
	if len(extra) == 0 {
		// Without extra modules data.ssogate.custom.deny is undefined, and
		// every "not data.ssogate.custom.deny" holds: the fast paths drop
		// them (a negation is about a tenth of a fast path's cost).
		var err error
		if mods[0].Source, err = dropFastPathGuards(mods[0].Source); err != nil {
			return nil, err
		}
	}
	mods = append(mods, extra...)
	// The org data is stored as AST values: a read then hands the evaluator
	// the stored object instead of converting a Go map on every request.
	store := inmem.NewFromObjectWithOpts(orgData(orgs),
		inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	// rego compiles and checks the modules (with the settings rego.New
	// gives its own compiler) into compiler; Decide then runs the compiled
	// query on topdown directly, which saves rego's per-evaluation set-up.
	compiler := ast.NewCompiler().WithUseTypeCheckAnnotations(true)
	opts := []func(*rego.Rego){
		rego.Query(Query),
		rego.Compiler(compiler),
		rego.StrictBuiltinErrors(true),
		rego.Store(store),
	}
	for _, m := range mods {
		opts = append(opts, rego.Module(m.Name, m.Source))
	}
	if _, err := rego.New(opts...).PrepareForEval(ctx); err != nil {
		return nil, compileErrors(err)
	}
	e := &Engine{compiler: compiler, store: store, result: ast.Var("decision")}
	e.qc = compiler.QueryCompiler().WithContext(ast.NewQueryContext()).WithStrict(false)
	body, err := e.qc.Compile(ast.MustParseBody(string(e.result) + " = " + Query))
	if err != nil {
		return nil, fmt.Errorf("compiling the decision query: %w", err)
	}
	e.body = body
	for rewritten, original := range e.qc.RewrittenVars() {
		if original == e.result {
			e.result = rewritten
		}
	}
	// Nothing writes to the store: one read transaction serves every
	// evaluation (inmem reads are safe for concurrent use).
	if e.txn, err = store.NewTransaction(ctx); err != nil {
		return nil, fmt.Errorf("opening the policy data: %w", err)
	}
	orgsData, err := store.Read(ctx, e.txn, storage.MustParsePath("/ssogate/orgs"))
	if err != nil {
		return nil, fmt.Errorf("reading the org data: %w", err)
	}
	var ok bool
	if e.orgs, ok = orgsData.(ast.Value); !ok {
		return nil, fmt.Errorf("reading the org data: got %T, want an AST value", orgsData)
	}
	_, isObject := e.orgs.(ast.Object)
	// The default policy reads the org data only as
	// data.ssogate.orgs[input.org].
	e.oneOrg = isObject && len(extra) == 0
	return e, nil
}

// OrgRef is an org's policy data, found once (Engine.Org) so that
// DecideOrg evaluates an input of that org without looking its data up
// among every org's: with thousands of orgs that lookup missed the CPU's
// caches on every request (docs/performance.md). The zero OrgRef refers to
// no org.
type OrgRef struct {
	e     *Engine
	name  *ast.Term // the org's name, as input.org
	value *ast.Term // data.ssogate.orgs[name]; nil when there is no such org
}

// Name returns the org's name as a term, for the input's org: DecideOrg
// recognises it without comparing strings. Nil for the zero OrgRef. The
// term is shared by every input that uses it: it must not be modified.
func (r OrgRef) Name() *ast.Term { return r.name }

// Org returns the reference of the org named name (as in
// data.ssogate.orgs), for DecideOrg. Call it at load time, once per org.
func (e *Engine) Org(name string) OrgRef {
	r := OrgRef{e: e, name: ast.StringTerm(name)}
	if obj, ok := e.orgs.(ast.Object); ok {
		r.value = obj.Get(r.name)
	}
	return r
}

// reservedPaths are the data paths that belong to ssogate: the default
// policy and the org data. An extra module may define no rule at, under or
// above them.
var reservedPaths = []ast.Ref{
	ast.MustParseRef("data.ssogate.authz"),
	ast.MustParseRef("data.ssogate.orgs"),
}

// checkExtra refuses extra modules that would redefine the default policy
// or its data instead of adding to data.ssogate.custom: no rule of an extra
// module may define anything at, under or above data.ssogate.authz or
// data.ssogate.orgs, whatever its package (package ssogate.authz, or
// package ssogate with a rule authz.x or orgs.acme.sso_enabled, would
// loosen the policy). A module that fails to parse is reported with its
// file and line.
func checkExtra(extra []Module) error {
	var errs []error
	seen := map[string]bool{DefaultModuleName: true}
	for _, m := range extra {
		// rego keeps one module per name: a second one would replace the
		// first, or the default policy, without a word.
		if seen[m.Name] {
			errs = append(errs, fmt.Errorf("%s: a policy module of that name is already loaded (the default policy is %s)", m.Name, DefaultModuleName))
			continue
		}
		seen[m.Name] = true
		mod, err := ast.ParseModule(m.Name, m.Source)
		if err != nil {
			errs = append(errs, compileErrors(err))
			continue
		}
		if mod == nil {
			continue
		}
		refuse := func(line int, path ast.Ref) {
			errs = append(errs, CompileError{File: m.Name, Line: line,
				Msg: fmt.Sprintf("%s is reserved for the default policy and its org data; add denials to package ssogate.custom (deny contains msg if ...)", path)})
		}
		if underReserved(mod.Package.Path) {
			refuse(mod.Package.Location.Row, mod.Package.Path)
			continue
		}
		for _, r := range mod.Rules {
			// The rule's path is its package's path and its head's ref; a
			// ref head with variables (orgs[x].y) may reach anything below
			// its ground prefix.
			path := mod.Package.Path.Extend(r.Head.Ref().GroundPrefix())
			switch {
			case underReserved(path) || aboveReserved(path):
				refuse(r.Location.Row, path)
			case (path.HasPrefix(denyRef) || denyRef.HasPrefix(path)) &&
				!(mod.Package.Path.Extend(r.Head.Ref()).Equal(denyRef) && r.Head.RuleKind() == ast.MultiValue):
				// The policy denies for each member of the set; a string,
				// a number or an object there would silently deny nothing.
				errs = append(errs, CompileError{File: m.Name, Line: r.Location.Row,
					Msg: fmt.Sprintf("%s: data.ssogate.custom.deny must be a set of messages: write deny contains msg if ... in package ssogate.custom", path)})
			}
		}
	}
	return errors.Join(errs...)
}

// denyRef is the set of messages extra modules add denials to.
var denyRef = ast.MustParseRef("data.ssogate.custom.deny")

// underReserved reports whether path is a reserved path or below one.
func underReserved(path ast.Ref) bool {
	for _, p := range reservedPaths {
		if path.HasPrefix(p) {
			return true
		}
	}
	return false
}

// aboveReserved reports whether path is a proper prefix of a reserved path
// (a rule there would define the reserved document as part of its value).
func aboveReserved(path ast.Ref) bool {
	for _, p := range reservedPaths {
		if len(path) < len(p) && p.HasPrefix(path) {
			return true
		}
	}
	return false
}

// fastPathGuard ends the lines of authz.rego that make a fast path step
// aside for custom denials; fastPathGuards is how many there are.
const (
	fastPathGuard  = "\tnot data.ssogate.custom.deny # fast path guard\n"
	fastPathGuards = 4
)

// dropFastPathGuards returns the default policy without its fast path
// guards, keeping line numbers (each guard becomes an empty line). It fails
// if the policy does not have exactly fastPathGuards of them, so that an
// edit of authz.rego cannot silently leave one in or take another line out.
func dropFastPathGuards(src string) (string, error) {
	if n := strings.Count(src, fastPathGuard); n != fastPathGuards {
		return "", fmt.Errorf("%s: %d fast path guards, want %d", DefaultModuleName, n, fastPathGuards)
	}
	return strings.ReplaceAll(src, fastPathGuard, "\n"), nil
}

// orgData is data.ssogate.orgs as authz.rego documents it. Each org is an
// AST object built here rather than converted from Go maps, so that what
// recurs across orgs is held once and shared: the keys, the role_of object
// of a default role, the empty collaborator set, modes, roles and
// timeouts, and the whole object of orgs whose settings are equal (most
// orgs keep the defaults). With thousands of orgs that leaves a few objects
// instead of a dozen per org to hold and for the garbage collector to mark
// (docs/performance.md: it saves memory; CPU per check measured the same
// with every org's object its own). Nothing writes to these values after
// this.
func orgData(orgs map[string]Org) map[string]any {
	strs := map[string]*ast.Term{}
	str := func(s string) *ast.Term {
		t, ok := strs[s]
		if !ok {
			t = ast.StringTerm(s)
			strs[s] = t
		}
		return t
	}
	nums := map[int64]*ast.Term{}
	num := func(n int64) *ast.Term {
		t, ok := nums[n]
		if !ok {
			t = ast.NumberTerm(json.Number(strconv.FormatInt(n, 10)))
			nums[n] = t
		}
		return t
	}
	noCollaborators := ast.ObjectTerm()
	roleOfs := map[string]*ast.Term{}
	roleOf := func(defaultRole string) *ast.Term {
		t, ok := roleOfs[defaultRole]
		if !ok {
			// role_of maps a membership's role field to the org role it
			// stands for: "" is the org's default_role (spec section 5,
			// "Roles"). The policy's fast path reads it with one lookup.
			items := [][2]*ast.Term{ast.Item(str(""), str(defaultRole))}
			for _, r := range roleNames {
				items = append(items, ast.Item(str(r), str(r)))
			}
			t = ast.ObjectTerm(items...)
			roleOfs[defaultRole] = t
		}
		return t
	}
	// Orgs without external collaborators and with equal settings share
	// one object; collaborators make an org's object its own.
	type settings struct {
		enabled           bool
		mode, defaultRole string
		timeout           time.Duration
	}
	shared := map[settings]ast.Value{}
	out := make(map[string]any, len(orgs))
	for name, o := range orgs {
		key := settings{o.SSOEnabled, o.Mode, o.DefaultRole, o.SessionTimeout}
		if len(o.ExternalCollaborators) == 0 {
			if v, ok := shared[key]; ok {
				out[name] = v
				continue
			}
		}
		ext := noCollaborators
		if len(o.ExternalCollaborators) > 0 {
			items := make([][2]*ast.Term, 0, len(o.ExternalCollaborators))
			for _, u := range o.ExternalCollaborators {
				items = append(items, ast.Item(ast.StringTerm(u), ast.InternedTerm(true)))
			}
			ext = ast.ObjectTerm(items...)
		}
		v := ast.NewObject(
			ast.Item(str("sso_enabled"), ast.InternedTerm(o.SSOEnabled)),
			ast.Item(str("mode"), str(o.Mode)),
			ast.Item(str("default_role"), str(o.DefaultRole)),
			ast.Item(str("session_timeout_ns"), num(o.SessionTimeout.Nanoseconds())),
			ast.Item(str("external_collaborators"), ext),
			// Lets the fast path skip a negation for orgs without any.
			ast.Item(str("has_external_collaborators"), ast.InternedTerm(ext != noCollaborators)),
			ast.Item(str("role_of"), roleOf(o.DefaultRole)),
		)
		if ext == noCollaborators {
			shared[key] = v
		}
		out[name] = v
	}
	return map[string]any{"ssogate": map[string]any{"orgs": out}}
}

var roleNames = []string{"no_access", "read", "contributor", "write", "admin"}

func compileErrors(err error) error {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		return fmt.Errorf("preparing policy: %w", err)
	}
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		ce := CompileError{Msg: e.Message}
		if e.Location != nil {
			ce.File, ce.Line = e.Location.File, e.Location.Row
		}
		out = append(out, ce)
	}
	return errors.Join(out...)
}
