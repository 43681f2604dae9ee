// Command dist makes Satchel's Debian packages, one per architecture, from the static
// binaries make dist built, with nfpm (used as a library): the binary, the systemd units
// of the agent and the server, the server's system user (sysusers.d), bash completion,
// the man pages (satchel man, gzipped) and the docs. It is a module of its own so that nfpm's dependencies stay out of
// Satchel's.
//
//	go run . -version 0.9.0 -dir ../../dist -repo ../..
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

// mtime is the time of every file in the packages, and the date of the man pages, so that
// the same sources make the same packages. internal/cli's manDate is the same date.
var mtime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	version := flag.String("version", "", "the packages' `version` (semver: 0.9.0)")
	dir := flag.String("dir", "dist", "the `directory` holding satchel-linux-ARCH, and the packages made")
	repo := flag.String("repo", ".", "Satchel's source `directory` (packaging/, README.md, docs/)")
	archs := flag.String("arch", "amd64,arm64", "the `architectures` to package, comma-separated")
	flag.Parse()
	if *version == "" {
		fmt.Fprintln(os.Stderr, "dist: -version is required")
		os.Exit(64)
	}
	if err := run(*version, *dir, *repo, strings.Split(*archs, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "dist:", err)
		os.Exit(1)
	}
}

func run(version, dir, repo string, archs []string) error {
	// Bash completion and man pages, from the binary of this machine's architecture.
	bin := filepath.Join(dir, "satchel-linux-"+runtime.GOARCH)
	completion := filepath.Join(dir, "satchel.bash")
	out, err := exec.Command(bin, "completion", "bash").Output()
	if err != nil {
		return fmt.Errorf("bash completion: %w", err)
	}
	if err := os.WriteFile(completion, out, 0o644); err != nil {
		return err
	}
	pages, err := manPages(bin, filepath.Join(dir, "man1"))
	if err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	for _, arch := range archs {
		p, err := pack(version, arch, dir, repo, completion, pages)
		if err != nil {
			return fmt.Errorf("%s: %w", arch, err)
		}
		fmt.Println(p)
	}
	return nil
}

// manPages writes the binary's man pages (satchel man) into dir, each gzipped at the best
// compression with neither name nor time in its header (as Debian's gzip -9n), and returns
// their paths. The pages carry mtime's date: SOURCE_DATE_EPOCH is set for the binary.
func manPages(bin, dir string) ([]string, error) {
	raw, err := os.MkdirTemp("", "satchel-man-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(raw) }()
	cmd := exec.Command(bin, "man", raw)
	cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", mtime.Unix()))
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s man: %w\n%s", bin, err, out)
	}
	names, err := filepath.Glob(filepath.Join(raw, "*.1"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s man wrote no pages", bin)
	}
	if err := os.RemoveAll(dir); err != nil { // no page of an earlier run stays
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var pages []string
	for _, name := range names {
		page := filepath.Join(dir, filepath.Base(name)+".gz")
		if err := gzipFile(name, page); err != nil {
			return nil, fmt.Errorf("compress %s: %w", filepath.Base(name), err)
		}
		pages = append(pages, page)
	}
	return pages, nil
}

// gzipFile writes src, gzipped at the best compression, to dst.
func gzipFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}

func pack(version, arch, dir, repo, completion string, pages []string) (string, error) {
	pkg := filepath.Join(repo, "packaging")
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode}}
	}
	contents := files.Contents{
		file(filepath.Join(dir, "satchel-linux-"+arch), "/usr/bin/satchel", 0o755),
		file(filepath.Join(pkg, "satchel-agent.service"), "/lib/systemd/system/satchel-agent.service", 0o644),
		file(filepath.Join(pkg, "satchel-server.service"), "/lib/systemd/system/satchel-server.service", 0o644),
		file(filepath.Join(pkg, "satchel-server.sysusers"), "/usr/lib/sysusers.d/satchel-server.conf", 0o644),
		file(completion, "/usr/share/bash-completion/completions/satchel", 0o644),
		file(filepath.Join(repo, "README.md"), "/usr/share/doc/satchel/README.md", 0o644),
		{Source: filepath.Join(repo, "docs"), Destination: "/usr/share/doc/satchel/docs", Type: files.TypeTree},
	}
	for _, page := range pages {
		contents = append(contents, file(page, "/usr/share/man/man1/"+filepath.Base(page), 0o644))
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name: "satchel", Arch: arch, Platform: "linux", Version: version, Section: "admin", Priority: "optional",
		Maintainer: "Satchel developers <satchel@example.org>",
		Homepage:   "https://github.com/satchelcm/satchel",
		License:    "Apache-2.0",
		Description: "Configuration management for fleets of servers at the far end of bad links\n" +
			"One static binary: the agent that keeps a school server converged to its office's signed\n" +
			"releases (over the network or from a USB stick), and the office's server with its\n" +
			"dashboard. Neither service starts until it is set up.",
		MTime: mtime, // reproducible packages
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(pkg, "postinst.sh"),
				PreRemove:   filepath.Join(pkg, "prerm.sh"),
				PostRemove:  filepath.Join(pkg, "postrm.sh"),
			},
		},
	})
	packager, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", err
	}
	target := filepath.Join(dir, packager.ConventionalFileName(info))
	f, err := os.Create(target)
	if err != nil {
		return "", err
	}
	if err := packager.Package(info, f); err != nil {
		f.Close()
		os.Remove(target)
		return "", err
	}
	return target, f.Close()
}
