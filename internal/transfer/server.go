package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/satchelcm/satchel/internal/store"
)

// Cache-Control of the files served. Chunks and objects are named by their content's hash
// and never change: caches may keep them forever without asking again. A delta is named by
// its pair of roots, not by its bytes, and a store may rebuild it: caches must revalidate
// (a cheap 304 while it is unchanged), so that an index and a pack from two builds are
// never served together for long.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "public, no-cache"
)

// Handler serves a store's directory read-only (see the package documentation): GET and
// HEAD of chunks/ab/<id>.zst, objects/ab/<id>.zst and deltas/<FROM-TO>.idx.zst|.pack, and
// the aliases /v1/chunks/<id> and /v1/objects/<id>; everything else is 404, so the store's
// lock, quarantine and temporary files are never served, nor is any listing. Files are
// opened through an os.Root and must be regular files, so no symlink leads out of the
// store. Mount it below a prefix with http.StripPrefix.
type Handler struct {
	root *os.Root
}

// NewHandler returns a handler serving the store in dir. Close releases it.
func NewHandler(dir string) (*Handler, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("serve store: %w", err)
	}
	return &Handler{root: root}, nil
}

// Close closes the store's directory.
func (h *Handler) Close() error { return h.root.Close() }

// servedFile is what a request path names.
type servedFile struct {
	name      string // relative to the store's directory, with slashes
	etag      string // quoted; "" when it depends on the file's size and time
	immutable bool
}

// resolve maps a request path to a store file, refusing everything but the store's own
// names (so "..", encoded or not, never gets anywhere).
func resolve(urlPath string) (servedFile, bool) {
	p, ok := strings.CutPrefix(urlPath, "/")
	if !ok {
		return servedFile{}, false
	}
	parts := strings.Split(p, "/")
	stored := func(kind, hex string) (servedFile, bool) {
		id, err := store.ParseID(hex)
		if err != nil {
			return servedFile{}, false
		}
		s := id.String()
		return servedFile{name: kind + "/" + s[:2] + "/" + s + ".zst", etag: `"` + s + `"`, immutable: true}, true
	}
	switch {
	case len(parts) == 3 && (parts[0] == "chunks" || parts[0] == "objects"):
		hex, ok := strings.CutSuffix(parts[2], ".zst")
		if !ok || len(hex) < 2 || parts[1] != hex[:2] {
			return servedFile{}, false
		}
		return stored(parts[0], hex)
	case len(parts) == 3 && parts[0] == "v1" && (parts[1] == "chunks" || parts[1] == "objects"):
		return stored(parts[1], parts[2])
	case len(parts) == 2 && parts[0] == "deltas":
		if _, _, ok := store.ParseDeltaName(parts[1]); !ok {
			return servedFile{}, false
		}
		return servedFile{name: "deltas/" + parts[1]}, true
	}
	return servedFile{}, false
}

// ServeHTTP serves one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: the store is served read-only", http.StatusMethodNotAllowed)
		return
	}
	sf, ok := resolve(r.URL.Path)
	if !ok {
		http.Error(w, "not found: not a path of a store", http.StatusNotFound)
		return
	}
	// The name must be a regular file itself (not a symlink, not a directory), and the
	// file opened must be that one.
	linfo, err := h.root.Lstat(sf.name)
	if err != nil || !linfo.Mode().IsRegular() {
		notFound(w, sf.name, err)
		return
	}
	f, err := h.root.Open(sf.name)
	if err != nil {
		notFound(w, sf.name, err)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() || !os.SameFile(linfo, info) {
		notFound(w, sf.name, err)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if sf.immutable {
		hdr.Set("Cache-Control", cacheImmutable)
		hdr.Set("ETag", sf.etag)
	} else {
		hdr.Set("Cache-Control", cacheRevalidate)
		hdr.Set("ETag", `"`+strings.TrimSuffix(strings.TrimSuffix(sf.name[len("deltas/"):], ".pack"), ".idx.zst")+
			"-"+strconv.FormatInt(info.Size(), 16)+"-"+strconv.FormatInt(info.ModTime().UnixNano(), 16)+`"`)
	}
	http.ServeContent(w, r, "", info.ModTime(), f)
}

// notFound answers 404 for a file that is absent, is not a regular file or is outside the
// store (os.Root refuses it), and 500 for a file the server may not read.
func notFound(w http.ResponseWriter, name string, err error) {
	if errors.Is(err, fs.ErrPermission) {
		http.Error(w, "cannot read "+name, http.StatusInternalServerError)
		return
	}
	http.Error(w, "not found: "+name, http.StatusNotFound)
}

var _ http.Handler = (*Handler)(nil)
