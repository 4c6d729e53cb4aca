package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ssogate/ssogate/config"
	"github.com/ssogate/ssogate/extauthz"
	"github.com/ssogate/ssogate/policies"
)

// validateCmd checks the gateway file, every org file and the policies and
// prints each problem as "file:line: message"; exit 1 if any.
func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "gateway file (ssogate.yaml)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "ssogate validate: --config is required")
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stdout, err)
		return 1
	}
	if err := checkPolicies(context.Background(), cfg); err != nil {
		fmt.Fprintln(stdout, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d orgs)\n", *cfgPath, len(cfg.Orgs))
	return 0
}

// checkPolicies compiles the default policy and policy_dir's modules.
func checkPolicies(ctx context.Context, cfg *config.Config) error {
	extra, err := policies.LoadDir(cfg.Gateway.PolicyDir)
	if err != nil {
		return err
	}
	// With the org data, as serve compiles it: a module's rule may
	// conflict with it.
	if _, err := policies.New(ctx, extauthz.PolicyOrgs(cfg), extra); err != nil {
		var lines []string
		for _, e := range unwrapAll(err) {
			lines = append(lines, e.Error())
		}
		return errors.New(strings.Join(lines, "\n"))
	}
	return nil
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
