package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdWaitAddr waits for a server started in the background to write its address to a
// file (satchel store serve --addr-file), then sets an environment variable to it:
// waitaddr FILE VAR.
func cmdWaitAddr(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitaddr FILE VAR")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(ts.MkAbs(args[0]))
		if addr := strings.TrimSpace(string(b)); err == nil && addr != "" {
			ts.Setenv(args[1], addr)
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitaddr: no address in %s after 10s", args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdWaitGrep waits (up to 30 s) until FILE exists and matches REGEXP: waitgrep FILE REGEXP.
// It lets a script act once a background command has got somewhere.
func cmdWaitGrep(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitgrep FILE REGEXP")
	}
	re, err := regexp.Compile(args[1])
	if err != nil {
		ts.Fatalf("waitgrep: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && re.Match(b) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitgrep: %s does not match %q after 30s", args[0], args[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cmdJSONGet sets an environment variable to a string field of a JSON object in a file
// (stdout, a credential file): jsonget FILE KEY VAR.
func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: jsonget FILE KEY VAR")
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(ts.ReadFile(args[0])), &m); err != nil {
		ts.Fatalf("jsonget: %s: %v", args[0], err)
	}
	v, ok := m[args[1]].(string)
	if !ok {
		ts.Fatalf("jsonget: %s has no string %q", args[0], args[1])
	}
	ts.Setenv(args[2], v)
}
