package policies

import (
	"fmt"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func ref(s string) ast.Ref { return ast.MustParseRef(s) }

func TestVirtualCache(t *testing.T) {
	c := newVirtualCache()
	for round := 0; round < 2; round++ { // the second round runs after reset
		if v, undef := c.Get(ref("data.a.b")); v != nil || undef {
			t.Fatalf("round %d: empty cache returned %v, %v", round, v, undef)
		}
		c.Put(ref("data.a.b"), ast.StringTerm("x"))
		c.Put(ref("data.a.u"), nil)
		if v, undef := c.Get(ref("data.a.b")); v == nil || undef || v.Value.Compare(ast.String("x")) != 0 {
			t.Errorf("round %d: data.a.b = %v, %v", round, v, undef)
		}
		if v, undef := c.Get(ref("data.a.u")); v != nil || !undef {
			t.Errorf("round %d: data.a.u = %v, %v, want undefined", round, v, undef)
		}
		if v, undef := c.Get(ref("data.a")); v != nil || undef {
			t.Errorf("round %d: prefix data.a = %v, %v, want not cached", round, v, undef)
		}
		// "undefined" sticks, as in topdown's implementation.
		c.Put(ref("data.a.u"), ast.StringTerm("y"))
		if _, undef := c.Get(ref("data.a.u")); !undef {
			t.Errorf("round %d: undefined did not stick", round)
		}
		// A pushed frame (a with modifier) starts empty and is dropped by Pop.
		c.Push()
		if v, _ := c.Get(ref("data.a.b")); v != nil {
			t.Errorf("round %d: new frame sees the outer frame", round)
		}
		c.Put(ref("data.a.b"), ast.StringTerm("inner"))
		if keys := c.Keys(); len(keys) != 1 || !keys[0].Equal(ref("data.a.b")) {
			t.Errorf("round %d: inner keys %v", round, keys)
		}
		c.Pop()
		if v, _ := c.Get(ref("data.a.b")); v.Value.Compare(ast.String("x")) != 0 {
			t.Errorf("round %d: outer value after Pop = %v", round, v)
		}
		c.Push() // the reused frame must be empty
		if v, _ := c.Get(ref("data.a.b")); v != nil {
			t.Errorf("round %d: reused frame kept %v", round, v)
		}
		c.Pop()
		if keys := c.Keys(); len(keys) != 2 { // data.a.b and data.a.u (which holds a term)
			t.Errorf("round %d: keys %v", round, keys)
		}
		c.reset()
	}
}

// The cache copies refs: topdown reuses the memory of the refs it passes.
func TestVirtualCacheCopiesRefs(t *testing.T) {
	c := newVirtualCache()
	r := ref("data.a.b")
	c.Put(r, ast.StringTerm("x"))
	r[2] = ast.StringTerm("c")
	if v, _ := c.Get(ref("data.a.b")); v == nil {
		t.Error("changing the caller's ref changed the cache")
	}
}

func TestBaseCache(t *testing.T) {
	c := &baseCache{}
	orgs := ast.MustParseTerm(`{"acme": {"mode": "enforced"}, "globex": {"mode": "optional"}}`).Value
	c.Put(ref("data.ssogate.orgs"), orgs)
	if v := c.Get(ref("data.ssogate.orgs.acme.mode")); v == nil || v.Compare(ast.String("enforced")) != 0 {
		t.Errorf("a ref below a cached document = %v", v)
	}
	if v := c.Get(ref("data.ssogate.orgs.nope")); v != nil {
		t.Errorf("a missing key = %v", v)
	}
	if v := c.Get(ref("data.ssogate")); v != nil {
		t.Errorf("a ref above the cached document = %v", v)
	}
	// Caching a document forgets the ones below it; the shortest cached
	// prefix answers.
	c.Put(ref("data.ssogate.orgs.acme"), ast.MustParseTerm(`{"mode": "other"}`).Value)
	if v := c.Get(ref("data.ssogate.orgs.acme.mode")); v.Compare(ast.String("enforced")) != 0 {
		t.Errorf("shortest prefix should answer, got %v", v)
	}
	c.Put(ref("data.ssogate"), ast.MustParseTerm(`{"orgs": {}}`).Value)
	if len(c.entries) != 1 {
		t.Errorf("entries below data.ssogate kept: %v", c.entries)
	}
	c.reset()
	if v := c.Get(ref("data.ssogate.orgs")); v != nil {
		t.Errorf("after reset: %v", v)
	}
}

// reset forgets every entry, however many evaluations filled the cache
// before: buckets kept from earlier evaluations (up to maxBuckets) come back
// empty, and Keys lists only what was cached since.
func TestVirtualCacheResetAfterManyEvaluations(t *testing.T) {
	c := newVirtualCache()
	for eval := 0; eval < 3*maxBuckets; eval++ {
		r := ref(fmt.Sprintf("data.a.r%d", eval%(maxBuckets/2)))
		if v, undef := c.Get(r); v != nil || undef {
			t.Fatalf("evaluation %d: %v cached from an earlier evaluation: %v, %v", eval, r, v, undef)
		}
		c.Put(r, ast.IntNumberTerm(eval))
		c.Put(ref("data.a.always"), ast.IntNumberTerm(eval))
		if v, _ := c.Get(ref("data.a.always")); v.Value.Compare(ast.Number(fmt.Sprint(eval))) != 0 {
			t.Fatalf("evaluation %d: data.a.always = %v", eval, v)
		}
		if keys := c.Keys(); len(keys) != 2 {
			t.Fatalf("evaluation %d: keys %v, want 2", eval, keys)
		}
		c.reset()
	}
}
