package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/store"
	"github.com/ssogate/ssogate/store/cache"
	redisstore "github.com/ssogate/ssogate/store/redis"
	"github.com/ssogate/ssogate/store/snapshot"
)

// importCmd loads a state snapshot (spec section 4) into the configured
// persistent store. It validates the whole snapshot first (roles, types,
// and that every org and resource namespace has an org file) and writes
// nothing when anything is wrong: exit 2. It then writes the records in
// batches (see importRecords). A store failure part way exits 1: the
// batches before it are written, the failed one is not (bolt) or may be
// in part (redis); every write replaces, so importing again is safe. Sessions without expires_at expire at authenticated_at +
// store.MaxSessionTimeout.
func importCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "gateway file (ssogate.yaml)")
	statePath := fs.String("state", "", "store snapshot to load (spec section 4)")
	logLevel := fs.String("log-level", "warn", "stderr log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" || *statePath == "" {
		fmt.Fprintln(stderr, "ssogate import: --config and --state are required")
		return 2
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "ssogate import: %v\n", err)
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	t0 := time.Now()
	snap, err := snapshot.Read(*statePath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if problems := resolveOrgs(cfg, snap, *statePath); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, p)
		}
		return 2
	}
	if cfg.Gateway.Store.Backend == config.BackendMemory {
		fmt.Fprintf(stderr, "%s: store.backend is memory, which keeps nothing after import exits: use bolt or redis, or serve --state\n", *cfgPath)
		return 2
	}
	snap.SetSessionExpiry()
	// Import writes to the backend itself, not through the read cache:
	// this process reads nothing, and the other replicas are told to drop
	// their caches after every batch (importRecords).
	sc := cfg.Gateway.Store
	sc.CacheTTL = 0
	st, err := openStore(sc, logger)
	if err != nil {
		fmt.Fprintf(stderr, "ssogate import: %v\n", err)
		return 1
	}
	defer st.Close()
	logger.Info("import: snapshot read and validated", "path", *statePath, "took", time.Since(t0).Round(time.Millisecond).String())
	t1 := time.Now()
	if err := importRecords(context.Background(), st, snap, importBatch); err != nil {
		fmt.Fprintf(stderr, "ssogate import: %s: %v (the batches before it were written; importing again is safe)\n", *statePath, err)
		return 1
	}
	logger.Info("import: records written", "backend", cfg.Gateway.Store.Backend, "took", time.Since(t1).Round(time.Millisecond).String())
	fmt.Fprintf(stdout, "imported %d memberships, %d sessions and %d catalog entries into the %s store\n",
		len(snap.Memberships), len(snap.Sessions), len(snap.Resources), cfg.Gateway.Store.Backend)
	return 0
}

// resolveOrgs checks that every membership and session names an org with
// an org file, and every resource id starts with one, and rewrites them in
// the org file's spelling. It returns one problem per bad record.
func resolveOrgs(cfg *config.Config, s *snapshot.Snapshot, name string) []string {
	var out []string
	bad := func(section string, i int, field, org string) {
		out = append(out, fmt.Sprintf("%s: %s[%d].%s: org %s has no org file in %s", name, section, i, field, snapshot.Quote(org), cfg.Gateway.OrgsDir))
	}
	for i := range s.Memberships {
		if o := cfg.Org(s.Memberships[i].Org); o != nil {
			s.Memberships[i].Org = o.Name
		} else {
			bad("memberships", i, "org", s.Memberships[i].Org)
		}
	}
	for i := range s.Sessions {
		if o := cfg.Org(s.Sessions[i].Org); o != nil {
			s.Sessions[i].Org = o.Name
		} else {
			bad("sessions", i, "org", s.Sessions[i].Org)
		}
	}
	for i := range s.Resources {
		ns, n, _ := strings.Cut(s.Resources[i].ID, "/")
		if o := cfg.Org(ns); o != nil {
			s.Resources[i].ID = o.Name + "/" + n
		} else {
			bad("resources", i, "id", ns)
		}
	}
	return out
}

// importBatch is how many records import writes per batch: one bolt
// transaction, synced once, or a few Redis round trips.
const importBatch = 10_000

// batchWriter is a store that writes many records at once: bolt in one
// transaction, redis in MULTI/EXEC transactions of up to a thousand
// records. When it returns an error, bolt has stored none of the batch;
// redis has stored its transactions before the failing one (on Cluster,
// its records before the failing one).
type batchWriter interface {
	PutBatch(ctx context.Context, ms []store.Membership, ss []store.Session, rs []store.Resource) error
}

// busOwner is a store whose writes other replicas must hear of (redis):
// import drops every replica's read cache after each batch.
type busOwner interface {
	Bus() *redisstore.Bus
}

// importRecords writes the records of snap to st. Each kind is sorted by
// the key the stores use (org ignoring case then user; type then id
// ignoring case), stably, so that a record repeated in the snapshot still
// ends up with its last version, and then written in batches of at most
// batch records: with bolt, a batch then touches neighbouring keys, which
// keeps the pages it rewrites few and full. A store without PutBatch gets
// one write per record (snapshot.Apply). With redis, every replica is told
// to drop its whole read cache (cache.FlushAll) after each batch.
//
// It stops at the first error, which names the kind of record and the
// snapshot index of the first record of the failed batch.
func importRecords(ctx context.Context, st store.Store, snap *snapshot.Snapshot, batch int) error {
	var flush func() error
	if b, ok := st.(busOwner); ok {
		bus := b.Bus()
		flush = func() error {
			if err := bus.Publish(ctx, cache.FlushAll); err != nil {
				return fmt.Errorf("telling the replicas to drop their caches: %w", err)
			}
			return nil
		}
	}
	bw, ok := st.(batchWriter)
	if !ok {
		if err := snap.Apply(ctx, st); err != nil {
			return err
		}
		if flush != nil {
			return flush()
		}
		return nil
	}
	write := func(kind string, n int, put func(idx []int) error, order []int) error {
		for lo := 0; lo < n; lo += batch {
			hi := min(lo+batch, n)
			if err := put(order[lo:hi]); err != nil {
				return fmt.Errorf("%s: the batch of %d from %s[%d] (in key order): %w", kind, hi-lo, kind, order[lo], err)
			}
			if flush != nil {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	ms, ss, rs := snap.Memberships, snap.Sessions, snap.Resources
	order := sortedOrder(len(ms), func(i int) string { return orgUserSortKey(ms[i].Org, ms[i].User) })
	buf := make([]store.Membership, 0, min(batch, len(ms)))
	err := write("memberships", len(ms), func(idx []int) error {
		buf = buf[:0]
		for _, i := range idx {
			buf = append(buf, ms[i])
		}
		return bw.PutBatch(ctx, buf, nil, nil)
	}, order)
	if err != nil {
		return err
	}
	order = sortedOrder(len(ss), func(i int) string { return orgUserSortKey(ss[i].Org, ss[i].User) })
	sbuf := make([]store.Session, 0, min(batch, len(ss)))
	err = write("sessions", len(ss), func(idx []int) error {
		sbuf = sbuf[:0]
		for _, i := range idx {
			sbuf = append(sbuf, ss[i])
		}
		return bw.PutBatch(ctx, nil, sbuf, nil)
	}, order)
	if err != nil {
		return err
	}
	order = sortedOrder(len(rs), func(i int) string { return rs[i].Type + "\x00" + store.Fold(rs[i].ID) })
	rbuf := make([]store.Resource, 0, min(batch, len(rs)))
	return write("resources", len(rs), func(idx []int) error {
		rbuf = rbuf[:0]
		for _, i := range idx {
			rbuf = append(rbuf, rs[i])
		}
		return bw.PutBatch(ctx, nil, nil, rbuf)
	}, order)
}

// orgUserSortKey orders memberships and sessions as the stores key them:
// by org ignoring case, then user.
func orgUserSortKey(org, user string) string { return store.Fold(org) + "\x00" + user }

// sortedOrder returns the indexes 0..n-1 sorted by key(i), and by index
// among equal keys (a stable sort, at the speed of an unstable one).
func sortedOrder(n int, key func(i int) string) []int {
	type keyed struct {
		key string
		i   int
	}
	ks := make([]keyed, n)
	for i := range ks {
		ks[i] = keyed{key(i), i}
	}
	slices.SortFunc(ks, func(a, b keyed) int { return cmp.Or(strings.Compare(a.key, b.key), cmp.Compare(a.i, b.i)) })
	order := make([]int, n)
	for j, k := range ks {
		order[j] = k.i
	}
	return order
}
