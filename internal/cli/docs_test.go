package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/satchelcm/satchel/internal/resource"
)

// commandLine finds "satchel …" in prose and code: the command up to the end of the
// line, a closing backtick or a comment.
var commandLine = regexp.MustCompile("satchel ([a-z][a-z-]*(?: [^`#\\n|;]*)?)")

// flagRE finds the flags a command line gives.
var flagRE = regexp.MustCompile(`(?:^|\s)--([a-z][a-z0-9-]*)`)

// The docs describe no command or flag the program does not have: every "satchel …"
// written in README.md and docs/*.md names a command that exists, and every --flag it
// gives is one of that command's.
func TestDocsNameRealCommandsAndFlags(t *testing.T) {
	root := newRoot(&streams{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard})
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	checked := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			problems, n := checkCommandLine(root, line)
			checked += n
			for _, p := range problems {
				t.Errorf("%s:%d: %s", filepath.Base(file), i+1, p)
			}
		}
	}
	// The check itself finds what it is for.
	for _, bad := range []string{"`satchel bundle export --to DIR --nope`", "satchel nodes lists --status failing", "satchel agent --repo URL --trusts x"} {
		if problems, _ := checkCommandLine(root, bad); len(problems) == 0 {
			t.Errorf("%q passes the check", bad)
		}
	}
	if checked < 50 {
		t.Errorf("only %d flags checked: the docs are not read as they should be", checked)
	}
	t.Logf("%d flags checked in %d files", checked, len(files))
}

// checkCommandLine checks the "satchel …" commands of one line of the docs, and returns
// what is wrong and how many flags it checked.
func checkCommandLine(root *cobra.Command, line string) (problems []string, checked int) {
	for _, m := range commandLine.FindAllStringSubmatch(line, -1) {
		var words []string
		for _, a := range strings.Fields(m[1]) {
			if strings.HasPrefix(a, "-") || strings.ContainsAny(a, "/.=:$<>[]()…'\"") || strings.ToUpper(a) == a {
				break
			}
			words = append(words, a)
		}
		cmd, rest, err := root.Find(words)
		if err != nil || cmd == root {
			continue // prose: "satchel keeps…"
		}
		if len(rest) > 0 && cmd.HasSubCommands() {
			problems = append(problems, fmt.Sprintf("satchel %s: %q is not a command of %q", m[1], rest[0], cmd.CommandPath()))
		}
		for _, f := range flagRE.FindAllStringSubmatch(m[1], -1) {
			if !hasFlag(cmd, f[1]) {
				problems = append(problems, fmt.Sprintf("%s has no flag --%s (in %q)", cmd.CommandPath(), f[1], strings.TrimSpace(m[0])))
			}
			checked++
		}
	}
	return problems, checked
}

func hasFlag(cmd *cobra.Command, name string) bool {
	if name == "help" {
		return true
	}
	return cmd.Flags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil || cmd.PersistentFlags().Lookup(name) != nil
}

// blockRE finds the labelled blocks of HCL in the docs: TYPE "name" {.
var blockRE = regexp.MustCompile(`^\s*([a-z_]+) "[^"]*" \{`)

// languageBlocks are the blocks of the language itself, not resources.
var languageBlocks = map[string]bool{"node": true, "role": true, "variable": true, "param": true, "inventory": true, "locals": true}

// The docs show no resource type the program does not have: every labelled block of their
// HCL is a block of the language or a resource type of resource.Schemas.
func TestDocsNameRealResourceTypes(t *testing.T) {
	types := resource.Schemas()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	seen := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			m := blockRE.FindStringSubmatch(line)
			if m == nil || languageBlocks[m[1]] {
				continue
			}
			seen++
			if types[m[1]] == nil {
				t.Errorf("%s:%d: %q is not a resource type (satchel types lists them)", filepath.Base(file), i+1, m[1])
			}
		}
	}
	if seen < 5 {
		t.Errorf("only %d resource blocks seen in the docs: they are not read as they should be", seen)
	}
}

// docs/resources.md is the reference satchel types --markdown writes: it cannot drift
// from the resource types' schema.
func TestResourceReferenceIsCurrent(t *testing.T) {
	var out strings.Builder
	s := &streams{stdin: strings.NewReader(""), stdout: &out, stderr: io.Discard}
	root := newRoot(s)
	root.SetArgs([]string{"types", "--markdown"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../docs/resources.md")
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Error("docs/resources.md differs from satchel types --markdown: run make docs")
	}
}
