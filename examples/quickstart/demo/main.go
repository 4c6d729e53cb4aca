// Command demo generates the ssogate quickstart's data. Run it from the
// repository root:
//
//	go run ./examples/quickstart/demo state [--now RFC3339]
//	    print a store snapshot whose SSO sessions are relative to now
//	go run ./examples/quickstart/demo token --sub u-alice [--email ADDR]
//	    print a platform token signed with the demo key
//	go run ./examples/quickstart/demo request --path /acme/secret-model [--user u-dave] [--bearer] [--method GET] [--accept TYPES]
//	    print a CheckRequest of your own (pipe it to `ssogate check --request -`)
//	go run ./examples/quickstart/demo requests
//	    re-sign examples/quickstart/requests/*.json with the committed demo key
//	go run ./examples/quickstart/demo keys
//	    generate a NEW demo key, its JWK set, and re-sign the requests
//
// The demo key is public: it exists only so that the quickstart works
// offline. Never trust it anywhere else.
package main

import (
	"crypto/ecdsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

const usage = `usage: go run ./examples/quickstart/demo <command> [flags]

commands:
  state     print a store snapshot (sessions relative to --now, default: the current time)
  token     print a platform token: --sub USER [--email ADDR]
  request   print a CheckRequest: --path P [--user U] [--bearer] [--method M] [--accept A]
  requests  re-sign requests/*.json with the committed demo key
  keys      generate a new demo key and JWK set, then re-sign requests/*.json

Every command takes --dir (default examples/quickstart): the quickstart folder.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", filepath.Join("examples", "quickstart"), "the quickstart folder (holds ssogate.yaml)")
	now := fs.String("now", "", "state: the snapshot's clock, RFC 3339 (default: the current time)")
	sub := fs.String("sub", "", "token: the user id (claim sub)")
	user := fs.String("user", "", "request: the platform user (empty: anonymous)")
	email := fs.String("email", "", "token: the email claim (default: the demo user's)")
	bearer := fs.Bool("bearer", false, "request: send the token as a bearer token instead of the cookie")
	method := fs.String("method", "GET", "request: the HTTP method")
	path := fs.String("path", "", "request: the path (and query)")
	accept := fs.String("accept", browserAccept, "request: the accept header")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	err := func() error {
		switch cmd {
		case "state":
			t := time.Now()
			if *now != "" {
				var err error
				if t, err = time.Parse(time.RFC3339, *now); err != nil {
					return fmt.Errorf("--now %q: want an RFC 3339 time such as %s", *now, ReferenceNow)
				}
			}
			_, err := stdout.Write(State(t))
			return err
		case "token":
			if *sub == "" {
				return errors.New("--sub is required")
			}
			key, err := readDemoKey(*dir)
			if err != nil {
				return err
			}
			tok, err := Token(key, *sub, *email)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, tok)
			return err
		case "request":
			if *path == "" {
				return errors.New("--path is required")
			}
			key, err := readDemoKey(*dir)
			if err != nil {
				return err
			}
			r := Request{Name: "custom", User: *user, Bearer: *bearer, Method: *method, Path: *path, Accept: *accept}
			req, err := CheckRequest(key, r, 999)
			if err != nil {
				return err
			}
			b, err := MarshalRequest(req)
			if err != nil {
				return err
			}
			_, err = stdout.Write(b)
			return err
		case "requests":
			key, err := readDemoKey(*dir)
			if err != nil {
				return err
			}
			if err := WriteRequests(*dir, key); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "wrote %d requests into %s\n", len(Requests), filepath.Join(*dir, RequestsDir))
			return nil
		case "keys":
			if err := checkDir(*dir); err != nil {
				return err
			}
			if err := WriteKeys(*dir); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "wrote %s, %s and %d requests into %s\n", KeyFile, JWKSFile, len(Requests), *dir)
			return nil
		}
		return fmt.Errorf("unknown command (want state, token, request, requests or keys)\n\n%s", usage)
	}()
	if err != nil {
		fmt.Fprintf(stderr, "demo %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// checkDir makes sure dir is the quickstart folder, so that keys never
// writes files somewhere unexpected.
func checkDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "ssogate.yaml")); err != nil {
		return fmt.Errorf("%s is not the quickstart folder (no ssogate.yaml): run from the repository root or pass --dir", dir)
	}
	return nil
}

func readDemoKey(dir string) (*ecdsa.PrivateKey, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	return ReadKey(filepath.Join(dir, KeyFile))
}
