// Command ssogate is the SSO access layer for Envoy and Istio meshes
// (spec section 1): serve runs the ext_authz gRPC server and the HTTP
// listener; eval decides one CheckRequest offline; check sends one to a
// running server; validate checks the configuration.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: ssogate <command> [flags]

commands:
  serve     --config FILE [--state FILE]            run the gRPC ext_authz and HTTP listeners
  eval      --config FILE --state FILE --request FILE [--now RFC3339]
                                                    decide one CheckRequest (protojson; - = stdin)
  check     [--addr HOST:PORT] --request FILE       send one CheckRequest to a running server
                                                    (default address 127.0.0.1:9191)
  validate  --config FILE                           check the gateway file, org files and policies
  import    --config FILE --state FILE              load a state snapshot into the bolt or redis store

Run "ssogate <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches to a command and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serveCmd(rest, stderr)
	case "eval":
		return evalCmd(rest, stdin, stdout, stderr)
	case "check":
		return checkCmd(rest, stdin, stdout, stderr)
	case "validate":
		return validateCmd(rest, stdout, stderr)
	case "import":
		return importCmd(rest, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "ssogate: unknown command %q\n\n%s", cmd, usage)
	return 2
}
