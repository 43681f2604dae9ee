package transfer

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/satchelcm/satchel/internal/store"
)

// rawGet sends a request line as it is (no client-side cleaning of the path) and returns
// the status code and body.
func rawGet(t *testing.T, addr, method, target string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := method + " " + target + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestHandler(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("some content of a chunk\n"), 100)
	id, err := s.PutChunk(data)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := os.ReadFile(s.ChunkPath(id))
	if err != nil {
		t.Fatal(err)
	}
	hex := id.String()
	// A symlink planted in the store, named as a chunk, pointing outside; another to the
	// lock file inside.
	evil := strings.Repeat("ab", 32)
	if err := os.MkdirAll(filepath.Join(dir, "chunks", "ab"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "chunks", "ab", evil+".zst")); err != nil {
		t.Fatal(err)
	}
	inside := strings.Repeat("cd", 32)
	if err := os.MkdirAll(filepath.Join(dir, "objects", "cd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../lock", filepath.Join(dir, "objects", "cd", inside+".zst")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "quarantine", "chunks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "quarantine", "chunks", hex+".zst"), []byte("bad"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	chunkPath := "/chunks/" + hex[:2] + "/" + hex + ".zst"
	for _, target := range []string{chunkPath, "/v1/chunks/" + hex} {
		code, hdr, body := rawGet(t, addr, "GET", target)
		if code != 200 || !bytes.Equal(body, stored) {
			t.Errorf("GET %s: %d, %d bytes; want 200 and the stored file", target, code, len(body))
		}
		if got := hdr.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: Cache-Control %q", target, got)
		}
		if got := hdr.Get("ETag"); got != `"`+hex+`"` {
			t.Errorf("GET %s: ETag %q", target, got)
		}
		if got := hdr.Get("Content-Type"); got != "application/octet-stream" {
			t.Errorf("GET %s: Content-Type %q", target, got)
		}
	}

	// One range.
	code, hdr, body := rawGet(t, addr, "GET", chunkPath, "Range: bytes=5-14")
	if code != 206 || !bytes.Equal(body, stored[5:15]) {
		t.Errorf("range: %d %q, want 206 %q", code, body, stored[5:15])
	}
	if want := "bytes 5-14/" + strconv.Itoa(len(stored)); hdr.Get("Content-Range") != want {
		t.Errorf("range: Content-Range %q, want %q", hdr.Get("Content-Range"), want)
	}
	// If-None-Match: 304.
	if code, _, _ := rawGet(t, addr, "GET", chunkPath, `If-None-Match: "`+hex+`"`); code != 304 {
		t.Errorf("If-None-Match: %d, want 304", code)
	}
	// HEAD.
	if code, hdr, body := rawGet(t, addr, "HEAD", chunkPath); code != 200 || len(body) != 0 || hdr.Get("Content-Length") != strconv.Itoa(len(stored)) {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %q", code, len(body), hdr.Get("Content-Length"))
	}
	// Read-only.
	if code, hdr, _ := rawGet(t, addr, "PUT", chunkPath, "Content-Length: 0"); code != 405 || hdr.Get("Allow") != "GET, HEAD" {
		t.Errorf("PUT: %d, Allow %q", code, hdr.Get("Allow"))
	}

	for _, target := range []string{
		"/",
		"/lock",
		"/chunks/",
		"/chunks/" + hex[:2] + "/",
		"/chunks/" + hex[:2] + "/../../lock",
		"/chunks/%2e%2e/lock",
		"/chunks/" + hex[:2] + "/%2e%2e%2f%2e%2e%2flock",
		"/chunks/ff/" + hex + ".zst",                               // the wrong shard
		"/chunks/" + hex[:2] + "/" + strings.ToUpper(hex) + ".zst", // not the canonical name
		"/chunks/ab/" + evil + ".zst",                              // a symlink out of the store
		"/objects/cd/" + inside + ".zst",                           // a symlink to the lock file
		"/v1/chunks/" + evil,
		"/quarantine/chunks/" + hex + ".zst",
		"/v1/quarantine/" + hex,
		"/deltas/",
		"/deltas/../lock",
		"/%2e%2e/" + filepath.Base(outside) + "/secret",
		"/objects/" + hex[:2] + "/" + hex + ".zst", // a chunk is not an object
	} {
		code, _, body := rawGet(t, addr, "GET", target)
		if code != 404 {
			t.Errorf("GET %s: %d, want 404", target, code)
		}
		if bytes.Contains(body, []byte("secret")) {
			t.Errorf("GET %s: served the file outside the store", target)
		}
	}
}
