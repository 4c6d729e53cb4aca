package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/store/snapshot"
)

// importCmd loads a state snapshot (spec section 4) into the configured
// persistent store. It validates the whole snapshot first (roles, types,
// and that every org and resource namespace has an org file) and writes
// nothing when anything is wrong: exit 2. A store failure part way exits 1;
// every write replaces, so importing again is safe. Sessions without
// expires_at expire at authenticated_at + store.MaxSessionTimeout.
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
	st, err := openStore(cfg.Gateway.Store, logger)
	if err != nil {
		fmt.Fprintf(stderr, "ssogate import: %v\n", err)
		return 1
	}
	defer st.Close()
	if err := snap.Apply(context.Background(), st); err != nil {
		fmt.Fprintf(stderr, "ssogate import: %s: %v (the records before it were written; importing again is safe)\n", *statePath, err)
		return 1
	}
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
		out = append(out, fmt.Sprintf("%s: %s[%d].%s: org %q has no org file in %s", name, section, i, field, org, cfg.Gateway.OrgsDir))
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
