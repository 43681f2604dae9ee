package dirtar_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/dirtar"
)

func TestPackUnpackRoundTrip(t *testing.T) {
	src := t.TempDir()
	for name, content := range map[string]string{"main.hcl": "node \"*\" {}\n", "files/a/b.conf": "b\n", "templates/t.tpl": ""} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "files/a/b.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dirtar.Pack(&buf, src); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := dirtar.Unpack(&buf, dst, dirtar.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"main.hcl": "node \"*\" {}\n", "files/a/b.conf": "b\n", "templates/t.tpl": ""} {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(got) != content {
			t.Errorf("%s = %q, %v; want %q", name, got, err, content)
		}
	}
	if info, err := os.Stat(filepath.Join(dst, "files/a/b.conf")); err != nil || info.Mode().Perm()&0o100 == 0 {
		t.Errorf("the executable bit was lost: %v %v", info.Mode(), err)
	}
	if info, err := os.Stat(filepath.Join(dst, "empty")); err != nil || !info.IsDir() {
		t.Errorf("the empty directory was lost: %v", err)
	}
}

func TestPackRefusesSymlinks(t *testing.T) {
	src := t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "link")); err != nil {
		t.Skip(err)
	}
	err := dirtar.Pack(&bytes.Buffer{}, src)
	if err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("Pack of a symlink: %v", err)
	}
}

// tarOf builds a gzipped tar of the given headers (a regular file's content is "x"s of
// its size).
func tarOf(t *testing.T, headers ...*tar.Header) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range headers {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			_, _ = tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	_ = tw.Close()
	_ = zw.Close()
	return &buf
}

func TestUnpackRefusesHostileArchives(t *testing.T) {
	reg := func(name string, size int64) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size}
	}
	for name, headers := range map[string][]*tar.Header{
		"dotdot":           {reg("../escape", 1)},
		"dotdot inside":    {reg("a/../../escape", 1)},
		"absolute":         {reg("/tmp/escape", 1)},
		"symlink":          {{Typeflag: tar.TypeSymlink, Name: "link", Linkname: "/etc"}, reg("link/passwd", 1)},
		"hard link":        {{Typeflag: tar.TypeLink, Name: "link", Linkname: "/etc/passwd"}},
		"device":           {{Typeflag: tar.TypeChar, Name: "dev"}},
		"too large":        {reg("big", 2048)},
		"too many":         {reg("a", 1), reg("b", 1), reg("c", 1), reg("d", 1), reg("e", 1)},
		"twice":            {reg("a", 1), reg("a", 1)},
		"backslash":        {reg(`a\..\..\x`, 1)},
		"dot":              {{Typeflag: tar.TypeDir, Name: "./"}},
		"file then subdir": {reg("a", 1), reg("a/b", 1)},
	} {
		t.Run(name, func(t *testing.T) {
			top := t.TempDir()
			dst := filepath.Join(top, "dst")
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			err := dirtar.Unpack(tarOf(t, headers...), dst, dirtar.Limits{MaxBytes: 1024, MaxEntries: 4})
			if err == nil {
				t.Fatal("unpacked")
			}
			if _, err := os.Stat(filepath.Join(top, "escape")); err == nil {
				t.Error("a file was written outside the destination")
			}
		})
	}
	if err := dirtar.Unpack(strings.NewReader("not gzip"), t.TempDir(), dirtar.DefaultLimits); !errors.Is(err, dirtar.ErrRefused) {
		t.Errorf("not gzip: %v, want ErrRefused", err)
	}
}
