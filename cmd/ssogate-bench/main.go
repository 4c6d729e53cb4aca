// Command ssogate-bench measures ssogate's decision path against a
// reference ext_authz server that answers OK without looking at anything,
// in the same run on the same machine, so that every figure can be read as
// a ratio to it (docs/performance.md).
//
//	gen         writes benchmark state: a gateway folder with N org files, a
//	            platform key set, a state snapshot and request mixes with
//	            platform tokens signed by a benchmark key
//	ref-server  runs the reference "always OK" ext_authz server
//	load        a closed-loop gRPC load generator against one server
//	run         starts the reference server and ssogate as separate
//	            processes, loads each in turn and prints the side-by-side table
//	scale       starts the reference server and one ssogate per state
//	            folder at once, loads each in turn in short slices for many
//	            rounds and prints CPU per check, its growth over the first
//	            state and the ratios to the reference, paired by round
//	mem         measures the memory store's bytes per SSO session
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: ssogate-bench <command> [flags]

commands:
  gen         --out DIR [--orgs N --members M --sessions S --resources R --pool K]
              [--distinct-settings]
  ref-server  [--addr HOST:PORT]
  load        --addr HOST:PORT --requests DIR [--mix session=1,...] [--concurrency C]
              [--duration D] [--warmup D] [--pid PID]
  run         --dir DIR --ssogate BIN [--backend memory|bolt|redis] [--concurrency 1,16,64]
              [--duration D] [--warmup D] [--rounds N] [--mix ...] [--ssogate-env K=V]
  scale       --dirs DIR1,DIR2[@BIN2],... --ssogate BIN [--concurrency 16,64] [--slice D]
              [--warmup D] [--rounds N] [--mix ...] [--ssogate-env K=V]
  mem         [--orgs N --sessions S --members M]   bytes per session in the memory store

Run "ssogate-bench <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "gen":
		return genCmd(rest, stdout, stderr)
	case "ref-server":
		return refServerCmd(rest, stderr)
	case "load":
		return loadCmd(rest, stdout, stderr)
	case "run":
		return runCmd(rest, stdout, stderr)
	case "scale":
		return scaleCmd(rest, stdout, stderr)
	case "mem":
		return memCmd(rest, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ssogate-bench: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
