package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/memory"
	"github.com/ssogate/ssogate/store/storetest"
)

func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		bus  func() Bus
	}{
		{"local", func() Bus { return nil }},
		{"with a live bus", func() Bus { return newFakeBus(true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, storetest.Backend{New: func(t *testing.T, now func() time.Time) store.Store {
				c := New(memory.New().WithClock(now), Options{TTL: time.Minute, Bus: tc.bus(), Now: now})
				waitLive(t, c)
				return c
			}})
		})
	}
}

// counting is a memory store that counts lookups and can fail them.
type counting struct {
	*memory.Store
	reads atomic.Int32
	fail  atomic.Bool
	block chan struct{} // when not nil, Membership waits for it to close after reading
}

var errDown = errors.New("store down")

func (s *counting) Membership(ctx context.Context, org, user string) (*store.Membership, error) {
	if s.fail.Load() {
		s.reads.Add(1)
		return nil, errDown
	}
	m, err := s.Store.Membership(ctx, org, user)
	s.reads.Add(1)
	if s.block != nil {
		<-s.block // the value read is now old
	}
	return m, err
}

func (s *counting) Session(ctx context.Context, org, user string) (*store.Session, error) {
	s.reads.Add(1)
	if s.fail.Load() {
		return nil, errDown
	}
	return s.Store.Session(ctx, org, user)
}

func (s *counting) Resource(ctx context.Context, typ, id string) (*store.Resource, error) {
	s.reads.Add(1)
	if s.fail.Load() {
		return nil, errDown
	}
	return s.Store.Resource(ctx, typ, id)
}

// fakeBus records publications and lets the test deliver keys and
// liveness changes as a Redis subscription would.
type fakeBus struct {
	mu        sync.Mutex
	published []string
	onKey     func(string)
	onLive    func(bool)
	startLive bool
	ready     chan struct{}
}

func newFakeBus(live bool) *fakeBus { return &fakeBus{startLive: live, ready: make(chan struct{})} }

func (b *fakeBus) Publish(_ context.Context, key string) error {
	b.mu.Lock()
	b.published = append(b.published, key)
	b.mu.Unlock()
	return nil
}

func (b *fakeBus) Listen(ctx context.Context, onKey func(string), onLive func(bool)) {
	b.onKey, b.onLive = onKey, onLive
	if b.startLive {
		onLive(true)
	}
	close(b.ready)
	<-ctx.Done()
	onLive(false)
}

func (b *fakeBus) keys() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.published...)
}

func waitLive(t *testing.T, c *Store) {
	t.Helper()
	if b, ok := c.bus.(*fakeBus); ok {
		<-b.ready
	}
}

func setup(t *testing.T, ttl time.Duration, live bool) (*Store, *counting, *fakeBus) {
	t.Helper()
	inner := &counting{Store: memory.New()}
	bus := newFakeBus(live)
	c := New(inner, Options{TTL: ttl, Bus: bus})
	<-bus.ready
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	must(t, inner.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", Role: "write", ResourceGroups: map[string]string{"vision": "read"}}))
	must(t, inner.PutSession(ctx, store.Session{Org: "acme", User: "u-a", AuthenticatedAt: time.Now()}))
	must(t, inner.PutResource(ctx, store.Resource{Type: "model", ID: "acme/m", Visibility: "private"}))
	return c, inner, bus
}

// lookups are the three cached reads, each returning "found".
var lookups = []struct {
	name string
	get  func(c store.Store, found bool) error
}{
	{"membership", func(c store.Store, found bool) error {
		u := map[bool]string{true: "u-a", false: "u-none"}[found]
		_, err := c.Membership(context.Background(), "ACME", u)
		return err
	}},
	{"session", func(c store.Store, found bool) error {
		u := map[bool]string{true: "u-a", false: "u-none"}[found]
		_, err := c.Session(context.Background(), "acme", u)
		return err
	}},
	{"resource", func(c store.Store, found bool) error {
		id := map[bool]string{true: "Acme/M", false: "acme/none"}[found]
		_, err := c.Resource(context.Background(), "model", id)
		return err
	}},
}

func TestHitsMissesAndErrors(t *testing.T) {
	for _, l := range lookups {
		t.Run(l.name, func(t *testing.T) {
			c, inner, _ := setup(t, time.Minute, true)
			for _, found := range []bool{true, false} {
				before := inner.reads.Load()
				for i := 0; i < 3; i++ {
					err := l.get(c, found)
					if found && err != nil || !found && !errors.Is(err, store.ErrNotFound) {
						t.Fatalf("found=%v: err = %v", found, err)
					}
				}
				if n := inner.reads.Load() - before; n != 1 {
					t.Errorf("found=%v: 3 lookups read the store %d times, want 1", found, n)
				}
			}
			// Errors are returned and never cached.
			c2, inner2, _ := setup(t, time.Minute, true)
			inner2.fail.Store(true)
			if err := l.get(c2, true); !errors.Is(err, errDown) {
				t.Fatalf("err = %v, want the store's error", err)
			}
			inner2.fail.Store(false)
			if err := l.get(c2, true); err != nil {
				t.Errorf("after the store recovered: %v (was the error cached?)", err)
			}
		})
	}
}

func TestResultsAreCopies(t *testing.T) {
	c, _, _ := setup(t, time.Minute, true)
	ctx := context.Background()
	m, err := c.Membership(ctx, "acme", "u-a")
	must(t, err)
	m.Role = "admin"
	m.ResourceGroups["vision"] = "admin"
	again, err := c.Membership(ctx, "acme", "u-a")
	must(t, err)
	if again.Role != "write" || again.ResourceGroups["vision"] != "read" {
		t.Errorf("a caller's change reached the cache: %+v", again)
	}
}

func TestWritesInvalidateAndPublish(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		write func(c store.Store) error
		read  func(c store.Store) error // must see the write
		key   string
	}{
		{"delete session", func(c store.Store) error { return c.DeleteSession(ctx, "Acme", "u-a") },
			func(c store.Store) error { return notFound(c.Session(ctx, "acme", "u-a")) }, "s:acme\x00u-a"},
		{"put membership", func(c store.Store) error {
			return c.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", Role: "read"})
		},
			func(c store.Store) error { return roleIs(c, "read") }, "m:acme\x00u-a"},
		{"delete membership", func(c store.Store) error { return c.DeleteMembership(ctx, "acme", "u-a") },
			func(c store.Store) error { return notFound(c.Membership(ctx, "acme", "u-a")) }, "m:acme\x00u-a"},
		{"put session", func(c store.Store) error {
			return c.PutSession(ctx, store.Session{Org: "acme", User: "u-a", ExpiresAt: time.Now().Add(-time.Second)})
		}, func(c store.Store) error { return notFound(c.Session(ctx, "acme", "u-a")) }, "s:acme\x00u-a"},
		{"put resource", func(c store.Store) error {
			return c.PutResource(ctx, store.Resource{Type: "model", ID: "acme/M", Visibility: "public"})
		},
			func(c store.Store) error { return publicIs(c, true) }, "r:model\x00acme/m"},
		{"delete resource", func(c store.Store) error { return c.DeleteResource(ctx, "model", "ACME/m") },
			func(c store.Store) error { return notFound(c.Resource(ctx, "model", "acme/m")) }, "r:model\x00acme/m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, bus := setup(t, time.Minute, true)
			for _, l := range lookups { // warm the cache
				_ = l.get(c, true)
			}
			must(t, tc.write(c))
			if err := tc.read(c); err != nil {
				t.Error(err)
			}
			if got := bus.keys(); len(got) != 1 || got[0] != tc.key {
				t.Errorf("published %q, want [%q]", got, tc.key)
			}
		})
	}
}

func TestRemoteInvalidation(t *testing.T) {
	ctx := context.Background()
	c, inner, bus := setup(t, time.Minute, true)
	_, err := c.Session(ctx, "acme", "u-a")
	must(t, err)
	// Another replica deletes the session: this one hears of it on the bus.
	must(t, inner.DeleteSession(ctx, "acme", "u-a"))
	if _, err := c.Session(ctx, "acme", "u-a"); err != nil {
		t.Fatalf("before the message the cached session should still be served: %v", err)
	}
	bus.onKey(sessionKey("ACME", "u-a"))
	if _, err := c.Session(ctx, "acme", "u-a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after the message: err = %v", err)
	}
	// FlushAll drops everything.
	must(t, inner.DeleteMembership(ctx, "acme", "u-a"))
	bus.onKey(FlushAll)
	if _, err := c.Membership(ctx, "acme", "u-a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after FlushAll: err = %v", err)
	}
}

func TestBypassedWhileBusIsDown(t *testing.T) {
	ctx := context.Background()
	c, inner, bus := setup(t, time.Minute, false)
	for i := 0; i < 3; i++ {
		_, _ = c.Membership(ctx, "acme", "u-a")
	}
	if n := inner.reads.Load(); n != 3 {
		t.Errorf("before the bus is live: %d store reads for 3 lookups, want 3", n)
	}
	bus.onLive(true)
	_, _ = c.Membership(ctx, "acme", "u-a")
	_, _ = c.Membership(ctx, "acme", "u-a")
	if n := inner.reads.Load(); n != 4 {
		t.Errorf("live: %d store reads, want 4", n)
	}
	// The subscription drops: whatever was cached may be stale.
	must(t, inner.DeleteMembership(ctx, "acme", "u-a"))
	bus.onLive(false)
	if _, err := c.Membership(ctx, "acme", "u-a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after losing the bus a stale entry was served: err = %v", err)
	}
	if c.Live() {
		t.Error("Live() after onLive(false)")
	}
}

func TestEntriesExpire(t *testing.T) {
	ctx := context.Background()
	c, inner, _ := setup(t, 50*time.Millisecond, true)
	_, _ = c.Membership(ctx, "acme", "u-a")
	must(t, inner.DeleteMembership(ctx, "acme", "u-a"))
	time.Sleep(100 * time.Millisecond)
	if _, err := c.Membership(ctx, "acme", "u-a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after the TTL: err = %v", err)
	}
}

// A lookup that read the old value before a write must not cache it
// after the write's invalidation.
func TestReadRacingAWriteIsNotCached(t *testing.T) {
	ctx := context.Background()
	inner := &counting{Store: memory.New(), block: make(chan struct{})}
	c := New(inner, Options{TTL: time.Minute})
	defer c.Close()
	must(t, inner.Store.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", Role: "admin"}))
	got := make(chan *store.Membership)
	go func() {
		m, _ := c.Membership(ctx, "acme", "u-a") // blocks inside the store
		got <- m
	}()
	for inner.reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	must(t, inner.Store.DeleteMembership(ctx, "acme", "u-a"))
	c.invalidateKey(memberKey("acme", "u-a")) // what DeleteMembership through c does
	close(inner.block)
	if m := <-got; m == nil {
		t.Fatal("the racing read should return what it read")
	}
	if _, err := c.Membership(ctx, "acme", "u-a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the racing read was cached after the invalidation: err = %v", err)
	}
}

func notFound[T any](_ T, err error) error {
	if !errors.Is(err, store.ErrNotFound) {
		return errors.Join(errors.New("want ErrNotFound"), err)
	}
	return nil
}

func roleIs(c store.Store, role string) error {
	m, err := c.Membership(context.Background(), "acme", "u-a")
	if err != nil || m.Role != role {
		return errors.Join(errors.New("role not updated"), err)
	}
	return nil
}

func publicIs(c store.Store, public bool) error {
	r, err := c.Resource(context.Background(), "model", "acme/m")
	if err != nil || r.Public() != public {
		return errors.Join(errors.New("visibility not updated"), err)
	}
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// recording is a store with Records that keeps every query it was asked.
type recording struct {
	*memory.Store
	mu      sync.Mutex
	queries []store.RecordsQuery
}

func (s *recording) Records(ctx context.Context, q store.RecordsQuery) (store.Records, error) {
	s.mu.Lock()
	s.queries = append(s.queries, q)
	s.mu.Unlock()
	return store.ReadRecords(ctx, s.Store, q)
}

// A Check's records that the cache lacks are read from a RecordsLookup in
// one call that asks for those only; the others come from the cache.
func TestRecordsAsksTheInnerStoreOnceForWhatItLacks(t *testing.T) {
	inner := &recording{Store: memory.New()}
	c := New(inner, Options{TTL: time.Minute})
	defer c.Close()
	ctx := context.Background()
	must(t, inner.PutMembership(ctx, store.Membership{Org: "acme", User: "u-a", Role: "write"}))
	must(t, inner.PutSession(ctx, store.Session{Org: "acme", User: "u-a", AuthenticatedAt: time.Now()}))
	must(t, inner.PutResource(ctx, store.Resource{Type: "model", ID: "acme/m", Visibility: "private"}))

	if _, err := c.Membership(ctx, "acme", "u-a"); err != nil {
		t.Fatal(err)
	}
	all := store.RecordsQuery{Org: "acme", User: "u-a", Membership: true, Session: true, Type: "model", ID: "acme/m", Resource: true}
	for range 3 {
		r, err := c.Records(ctx, all)
		if err != nil || r.Membership == nil || r.Membership.Role != "write" || r.Session == nil || r.Resource == nil {
			t.Fatalf("Records = %+v, %v", r, err)
		}
	}
	want := []store.RecordsQuery{
		{Org: "acme", User: "u-a", Membership: true},                                           // Membership's miss
		{Org: "acme", User: "u-a", Session: true, Type: "model", ID: "acme/m", Resource: true}, // what the cache lacked
	}
	if len(inner.queries) != len(want) {
		t.Fatalf("inner store asked %+v, want %+v", inner.queries, want)
	}
	for i := range want {
		if inner.queries[i] != want[i] {
			t.Errorf("query %d = %+v, want %+v", i, inner.queries[i], want[i])
		}
	}
}

// Without Records, the inner store is read one lookup at a time, and an
// error fails the whole read and is not cached.
func TestRecordsFromLookupsFailsWhole(t *testing.T) {
	c, inner, _ := setup(t, time.Minute, true)
	ctx := context.Background()
	all := store.RecordsQuery{Org: "acme", User: "u-a", Membership: true, Session: true, Type: "model", ID: "acme/m", Resource: true}
	inner.fail.Store(true)
	if r, err := c.Records(ctx, all); !errors.Is(err, errDown) || r != (store.Records{}) {
		t.Fatalf("Records = %+v, %v; want nothing and the store's error", r, err)
	}
	inner.fail.Store(false)
	before := inner.reads.Load()
	r, err := c.Records(ctx, all)
	if err != nil || r.Membership == nil || r.Session == nil || r.Resource == nil {
		t.Fatalf("after the store recovered: %+v, %v", r, err)
	}
	if n := inner.reads.Load() - before; n != 3 {
		t.Errorf("%d reads, want 3 (one per record)", n)
	}
}

// When the inner store fails for what the cache lacks, the records the
// cache held are not returned either.
func TestRecordsErrorReturnsNoHits(t *testing.T) {
	c, inner, _ := setup(t, time.Minute, true)
	ctx := context.Background()
	if _, err := c.Resource(ctx, "model", "acme/m"); err != nil {
		t.Fatal(err)
	}
	inner.fail.Store(true)
	all := store.RecordsQuery{Org: "acme", User: "u-a", Membership: true, Session: true, Type: "model", ID: "acme/m", Resource: true}
	if r, err := c.Records(ctx, all); !errors.Is(err, errDown) || r != (store.Records{}) {
		t.Errorf("Records = %+v, %v; want nothing and the store's error", r, err)
	}
}
