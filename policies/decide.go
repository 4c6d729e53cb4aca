package policies

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// noCancel is the cancellation of an evaluation whose ctx can never be
// done. noMetrics stands in for a metrics registry per evaluation that
// nothing reads.
var (
	noCancel  = topdown.NewCancel() // never cancelled
	noMetrics = metrics.NoOp()
)

// Decide evaluates the decision for one policy input (see authz.rego for its
// shape). It returns an error when ctx is done, when the input holds a
// variable (it must be a value, as extauthz builds it), when evaluation
// fails or when the result is undefined, not unique, or not a decision
// object.
//
// The evaluation runs on one of a few long-lived goroutines (see workers),
// not on the caller's.
func (e *Engine) Decide(ctx context.Context, input ast.Value) (Decision, error) {
	return e.DecideOrg(ctx, input, OrgRef{})
}

// DecideOrg is Decide for an input whose org is org's, as a caller that
// resolved the org at load time knows (Engine.Org): it saves looking the
// org's data up. When org is not this engine's, or input.org is not org's
// name, it decides as Decide does. Errors are Decide's.
func (e *Engine) DecideOrg(ctx context.Context, input ast.Value, org OrgRef) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("evaluating %s: %w", Query, err)
	}
	if !input.IsGround() {
		// A variable in the input would be bound by the evaluation, and
		// the engine's shortcuts (indexes, orgsFor) assume values.
		return Decision{}, fmt.Errorf("evaluating %s: the input holds variables; it must be a value", Query)
	}
	startWorkers.Do(func() {
		for range evalWorkers() {
			go work()
		}
	})
	j := jobs.Get().(*job)
	j.e, j.ctx, j.input, j.org = e, ctx, input, org
	select {
	case queue <- j:
	case <-ctx.Done():
		j.e, j.ctx, j.input, j.org = nil, nil, nil, OrgRef{}
		jobs.Put(j)
		return Decision{}, fmt.Errorf("evaluating %s: %w", Query, ctx.Err())
	}
	<-j.done
	d, err := j.d, j.err
	*j = job{done: j.done}
	jobs.Put(j)
	return d, err
}

// Policy evaluation recurses deeply, and grpc-go serves each Check on a new
// goroutine whose stack starts small: growing it by doubling while the
// evaluation is deep copies every frame at each step (runtime.copystack was
// a quarter of the server's CPU time). Evaluations therefore run on a few
// long-lived workers whose stacks stay grown. They are CPU-bound, so a
// bounded number of them loses no throughput; callers queue for a worker.
var (
	startWorkers sync.Once
	queue        = make(chan *job)
	jobs         = sync.Pool{New: func() any { return &job{done: make(chan struct{}, 1)} }}
)

// evalWorkers is the number of evaluation workers: a few per CPU, so that
// a worker descheduled mid-evaluation does not leave a CPU idle.
func evalWorkers() int { return 4 * runtime.GOMAXPROCS(0) }

// job is one Decide handed to a worker.
type job struct {
	e     *Engine
	ctx   context.Context
	input ast.Value
	org   OrgRef
	d     Decision
	err   error
	done  chan struct{}
}

// work runs evaluations until the process exits. Its frame holds
// workerFloor bytes of padding below every evaluation: the garbage
// collector shrinks the stack of a goroutine that uses less than a quarter
// of it, and an idle worker would otherwise lose the stack it grew at every
// collection, and copy it again on its next evaluation.
//
//go:noinline
func work() {
	var floor [workerFloor]byte
	touchFloor(&floor)
	c := newEvalCaches()
	for j := range queue {
		j.d, j.err = j.e.evaluate(j.ctx, j.input, j.org, c)
		j.done <- struct{}{}
	}
}

// workerFloor is the stack a worker keeps in use while idle.
const workerFloor = 64 << 10

// touchFloor writes to the floor, so that the compiler keeps it in work's
// frame; the pointer does not escape, so the floor stays on the stack.
//
//go:noinline
func touchFloor(b *[workerFloor]byte) { b[0] = 1 }

// evalCaches are the caches one evaluation needs, reused by a worker.
type evalCaches struct {
	virtual *virtualCache
	base    *baseCache
}

func newEvalCaches() *evalCaches {
	return &evalCaches{virtual: newVirtualCache(), base: &baseCache{}}
}

func (e *Engine) evaluate(ctx context.Context, input ast.Value, org OrgRef, c *evalCaches) (Decision, error) {
	c.virtual.reset()
	c.base.reset()
	// Every evaluation reads an org: it finds the org data in the cache
	// instead of walking the store for it.
	c.base.seed(orgsRef, e.orgsFor(input, org))
	q := topdown.NewQuery(e.body).
		WithQueryCompiler(e.qc).
		WithCompiler(e.compiler).
		WithStore(e.store).
		WithTransaction(e.txn).
		WithInput(ast.NewTerm(input)).
		// A builtin error (1/0, a bad regex) in any module must deny, not
		// leave a rule undefined: undefined deny rules would fail open.
		WithStrictBuiltinErrors(true).
		WithCancel(noCancel).
		WithMetrics(noMetrics).
		WithVirtualCache(c.virtual).
		WithBaseCache(c.base).
		WithIndexing(indexes(input))
	if ctx.Done() != nil {
		// Stop the evaluation when ctx is done (a custom module can loop
		// for seconds): rego watches ctx with a goroutine per evaluation;
		// context.AfterFunc registers a callback instead.
		cancel := topdown.NewCancel()
		q = q.WithCancel(cancel)
		defer context.AfterFunc(ctx, cancel.Cancel)()
	}
	var result *ast.Term
	n := 0
	err := q.Iter(ctx, func(qr topdown.QueryResult) error {
		n++
		result = qr[e.result]
		return nil
	})
	if err != nil {
		return Decision{}, fmt.Errorf("evaluating %s: %w", Query, err)
	}
	if n != 1 || result == nil {
		return Decision{}, fmt.Errorf("evaluating %s: want exactly one result, got %d", Query, n)
	}
	return parseDecision(result.Value)
}

// orgsFor returns the value of data.ssogate.orgs to evaluate input with.
// Where the modules read the org data only as data.ssogate.orgs[input.org]
// (e.oneOrg: the default policy without extra modules) and input.org is a
// string, that is an object of that org alone, built for this evaluation,
// or an empty one for a name that is no configured org: each such read
// gives what it gives on the whole data. The org's data comes from org
// when it is this engine's reference for input.org, from a lookup among
// every org's otherwise. A one-key object built here stays in the CPU's
// caches where thousands of objects held per org did not
// (docs/performance.md). Any other input (no object, no org, an org that
// is not a string, such as a variable a caller of Decide might pass, over
// which OPA would iterate every org) gets the whole data.
func (e *Engine) orgsFor(input ast.Value, org OrgRef) ast.Value {
	if !e.oneOrg {
		return e.orgs
	}
	obj, ok := input.(ast.Object)
	if !ok {
		return e.orgs
	}
	t := obj.Get(keyOrg)
	if t == nil {
		return e.orgs
	}
	if _, ok := t.Value.(ast.String); !ok {
		return e.orgs
	}
	var v *ast.Term
	if org.e == e && (t == org.name || t.Value.Compare(org.name.Value) == 0) {
		v = org.value
	} else {
		v = e.orgs.(ast.Object).Get(t) // oneOrg: the data is an object
	}
	if v == nil {
		return noOrgs
	}
	return ast.NewObject(ast.Item(t, v))
}

// noOrgs is data.ssogate.orgs for an input without a configured org.
var noOrgs ast.Value = ast.NewObject()

// Input keys and values orgsFor and indexes read.
var (
	keyOrg               = ast.StringTerm("org")
	keySession           = ast.StringTerm("session")
	keyMethod            = ast.StringTerm("method")
	methodGET  ast.Value = ast.String("GET") // boxed once, not per call
)

// indexes reports whether an evaluation of input should use OPA's rule
// index (topdown.Query.WithIndexing), an optimisation that never changes a
// result for an input without variables (Decide refuses others). The index picks, by the input values that rule bodies compare
// with constants, which bodies can match; it saves work when it excludes
// bodies that would otherwise be entered and fail late (a public read, a
// request for no org), and costs a lookup of every compared value otherwise.
// A GET with a session is a member's read that the first fast path of
// decision answers at once: there the lookup is a sixth of the evaluation's
// cost and saves nothing, so it is skipped (docs/performance.md). Other
// requests with a session go on to full_decision, where the index pays.
func indexes(input ast.Value) bool {
	if skipIndexWithSession {
		if obj, ok := input.(ast.Object); ok && obj.Get(keySession) != nil {
			if m := obj.Get(keyMethod); m != nil && m.Value.Compare(methodGET) == 0 {
				return false
			}
		}
	}
	return true
}

// skipIndexWithSession turns indexes' exception on; tests turn it off to
// compare results with and without it.
var skipIndexWithSession = true

// Decision keys.
var (
	keyAllow    = ast.StringTerm("allow")
	keyStatus   = ast.StringTerm("status")
	keyReason   = ast.StringTerm("reason")
	keyIdentity = ast.StringTerm("identity")
	keyRole     = ast.StringTerm("role")
	keyRequired = ast.StringTerm("required")
	keyPrompt   = ast.StringTerm("prompt")
	keyMessages = ast.StringTerm("messages")
)

// parseDecision reads a decision object (see Decision) from the policy's
// result.
func parseDecision(v ast.Value) (Decision, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return Decision{}, fmt.Errorf("decision is %s, want an object", ast.ValueName(v))
	}
	var d Decision
	var err error
	if d.Allow, err = boolField(obj, keyAllow, true); err != nil {
		return d, err
	}
	if d.Reason, err = stringField(obj, keyReason, true); err != nil {
		return d, err
	}
	if d.Identity, err = boolField(obj, keyIdentity, false); err != nil {
		return d, err
	}
	if d.Role, err = stringField(obj, keyRole, false); err != nil {
		return d, err
	}
	if d.Required, err = stringField(obj, keyRequired, false); err != nil {
		return d, err
	}
	if d.Prompt, err = boolField(obj, keyPrompt, false); err != nil {
		return d, err
	}
	if t := obj.Get(keyStatus); t != nil {
		n, ok := t.Value.(ast.Number)
		if !ok {
			return d, fmt.Errorf("decision.status is %s, want a number", ast.ValueName(t.Value))
		}
		s, ok := n.Int()
		if !ok || s < 200 || s > 599 {
			return d, fmt.Errorf("decision.status %s is not an HTTP status", n)
		}
		d.Status = s
	}
	if t := obj.Get(keyMessages); t != nil {
		list, ok := t.Value.(*ast.Array)
		if !ok {
			return d, fmt.Errorf("decision.messages is %s, want an array", ast.ValueName(t.Value))
		}
		for i := range list.Len() {
			x := list.Elem(i).Value
			if s, ok := x.(ast.String); ok {
				d.Messages = append(d.Messages, string(s))
			} else {
				d.Messages = append(d.Messages, x.String())
			}
		}
	}
	if !d.Allow && d.Status == 0 {
		return d, errors.New("decision denies without a status")
	}
	return d, nil
}

func boolField(obj ast.Object, key *ast.Term, required bool) (bool, error) {
	t := obj.Get(key)
	if t == nil {
		if required {
			return false, fmt.Errorf("decision.%s is missing", key.Value.(ast.String))
		}
		return false, nil
	}
	b, ok := t.Value.(ast.Boolean)
	if !ok {
		return false, fmt.Errorf("decision.%s is %s, want a boolean", key.Value.(ast.String), ast.ValueName(t.Value))
	}
	return bool(b), nil
}

func stringField(obj ast.Object, key *ast.Term, required bool) (string, error) {
	t := obj.Get(key)
	if t == nil {
		if required {
			return "", fmt.Errorf("decision.%s is missing", key.Value.(ast.String))
		}
		return "", nil
	}
	s, ok := t.Value.(ast.String)
	if !ok {
		return "", fmt.Errorf("decision.%s is %s, want a string", key.Value.(ast.String), ast.ValueName(t.Value))
	}
	return string(s), nil
}
