// Package cli is the satchel command: one binary, one subcommand per role (see DESIGN.md).
//
// Each subcommand is a file that parses flags, wires the layers together (language, engine,
// resources, facts) and turns their results into output and an exit code. Exit codes and
// messages are part of the contract and are tested by the testscript scripts in
// cmd/satchel/testdata.
//
// Exit codes:
//
//	0   success (with --detailed-exitcode: success and nothing changed)
//	1   failure: a configuration error, a lock held by another run, a failed resource
//	    (with --detailed-exitcode, a run that could not start at all)
//	2   with --detailed-exitcode: changes were made (or would be, under --noop)
//	4   with --detailed-exitcode: some resources failed
//	6   with --detailed-exitcode: changes and failures
//	64  usage error: unknown command or flag, wrong number of arguments
package cli
