// Command runstat runs a command and records what it cost: wall time (from just before
// the start to the end of the wait, monotonic clock), user and system CPU time, and the
// peak resident set size (getrusage's ru_maxrss of the child, in KiB; for a command that
// starts others, the largest single process, as GNU time reports it). It needs no GNU
// time and resolves the wall time to the microsecond.
//
// usage: runstat -o FILE -- COMMAND [ARG...]
//
// The command's stdin, stdout and stderr are runstat's. FILE gets one line:
//
//	wall_s user_s sys_s maxrss_kib exit_status
//
// runstat exits with the command's exit status (1 if it could not be started or was
// killed by a signal, the line then records 255).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	out := flag.String("o", "", "write the measurements to this `file`")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: runstat -o FILE -- COMMAND [ARG...]")
		os.Exit(2)
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		fmt.Fprintln(os.Stderr, "runstat:", err)
		os.Exit(1)
	}
	st := cmd.ProcessState
	code := st.ExitCode()
	if code < 0 {
		code = 255
	}
	ru, _ := st.SysUsage().(*syscall.Rusage)
	var maxrss int64
	if ru != nil {
		maxrss = ru.Maxrss
	}
	line := fmt.Sprintf("%.6f %.6f %.6f %d %d\n", wall.Seconds(), st.UserTime().Seconds(), st.SystemTime().Seconds(), maxrss, code)
	if err := os.WriteFile(*out, []byte(line), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "runstat:", err)
		os.Exit(1)
	}
	if code == 255 {
		os.Exit(1)
	}
	os.Exit(code)
}
