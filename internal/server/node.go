package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/release"
)

type nodeKey struct{}

// node wraps a node endpoint: the client must present a certificate from the CA (checked
// by TLS), for a node that is approved now, with the key on record. The node is in the
// request's context (requestNode).
func (s *Server) node(h handlerFunc) http.Handler {
	return s.serve(func(w http.ResponseWriter, r *http.Request) error {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			return errorf(http.StatusUnauthorized, api.CodeUnauthorized, "a client certificate from this server's CA is required: enroll first (satchel enroll)")
		}
		cert := r.TLS.VerifiedChains[0][0]
		// TLS checked the validity at the handshake; a kept-alive connection may outlive it.
		if now := s.cfg.Now(); now.After(cert.NotAfter) {
			return errorf(http.StatusUnauthorized, api.CodeUnauthorized, "the node's certificate expired at %s: enroll again", cert.NotAfter.UTC().Format(time.RFC3339))
		}
		name, err := pki.NodeName(cert)
		if err != nil {
			return errorf(http.StatusUnauthorized, api.CodeUnauthorized, "%v", err)
		}
		n, err := s.store.GetNode(r.Context(), name)
		if errors.Is(err, registry.ErrNotFound) {
			return errorf(http.StatusUnauthorized, api.CodeUnauthorized, "node %s is not enrolled (it was forgotten): enroll again", name)
		}
		if err != nil {
			return err
		}
		switch {
		case n.State == registry.Revoked:
			return errorf(http.StatusForbidden, api.CodeRevoked, "node %s is revoked", name)
		case n.State != registry.Approved:
			return errorf(http.StatusUnauthorized, api.CodeUnauthorized, "node %s is not approved", name)
		case pki.Fingerprint(cert.RawSubjectPublicKeyInfo) != n.KeyFingerprint:
			return errorf(http.StatusUnauthorized, api.CodeUnauthorized, "node %s's certificate is for a key it no longer has: enroll again", name)
		}
		now := s.cfg.Now()
		if now.Sub(n.LastSeen) >= touchEvery {
			if err := s.store.TouchNode(r.Context(), name, now, nil); err != nil {
				s.log.Warn("record a node's contact", "node", name, "err", err)
			}
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), nodeKey{}, n)))
	})
}

// requestNode is the node a node endpoint serves.
func requestNode(r *http.Request) registry.Node {
	n, _ := r.Context().Value(nodeKey{}).(registry.Node)
	return n
}

// repoTops are the repository's parts a node may read.
var repoTops = map[string]bool{release.MetadataDir: true, release.TargetsDir: true, release.StoreDir: true}

// repoFile serves a node a file of the release repository, as a static mirror would:
// Range and If-Modified-Since are honoured. In secrets/N/, a node gets the index files and
// its own directory only; otherwise as serveRepoFile.
func (s *Server) repoFile(w http.ResponseWriter, r *http.Request) error {
	rel := strings.TrimPrefix(r.URL.Path, api.PathRepo)
	parts := strings.Split(rel, "/")
	if len(parts) > 0 && parts[0] == release.SecretsDir {
		// secrets/N/index-B.json, or secrets/N/NODE/HASH.age of the node asking.
		own := len(parts) == 4 && parts[2] == requestNode(r).Name
		index := len(parts) == 3 && strings.HasPrefix(parts[2], "index-")
		if !own && !index {
			return errorf(http.StatusNotFound, api.CodeNotFound, "%s: not found", r.URL.Path)
		}
	}
	return s.serveRepoFile(w, r, rel)
}

// adminRepoFile serves the operator any file of the release repository (a bundle's).
func (s *Server) adminRepoFile(w http.ResponseWriter, r *http.Request) error {
	return s.serveRepoFile(w, r, strings.TrimPrefix(r.URL.Path, api.PathAdminRepo))
}

// serveRepoFile serves the repository's file rel. Directories, dot files and anything
// outside metadata/, targets/, store/ and secrets/ are not found. The repository is opened
// as an os.Root, so no symbolic link leads out of it.
func (s *Server) serveRepoFile(w http.ResponseWriter, r *http.Request, rel string) error {
	notFound := errorf(http.StatusNotFound, api.CodeNotFound, "%s: not found", r.URL.Path)
	if rel == "" || path.Clean(rel) != rel || !fs.ValidPath(rel) {
		return notFound
	}
	parts := strings.Split(rel, "/")
	if len(parts) < 2 || !repoTops[parts[0]] && parts[0] != release.SecretsDir {
		return notFound
	}
	for _, p := range parts {
		if strings.HasPrefix(p, ".") {
			return notFound
		}
	}
	f, err := s.repo.Open(rel)
	if err != nil && serverFault(err) {
		return fmt.Errorf("open repository file %s: %w", rel, err)
	}
	if err != nil {
		return notFound // missing, or a link out of the repository
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat repository file %s: %w", rel, err)
	}
	if !info.Mode().IsRegular() {
		return notFound
	}
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", info.ModTime(), f)
	s.metrics.repoBytes.Add(float64(cw.n))
	return nil
}

// serverFault reports whether an error opening a repository file is the server's trouble
// (permissions, the disk, file descriptors) rather than a path the repository does not
// hold. The agent retries a 500 later but gives up a file answered 404, so a server short
// of descriptors must not tell it that a release's files do not exist.
func serverFault(err error) bool {
	for _, e := range []error{fs.ErrPermission, syscall.EIO, syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// putFacts stores the node's facts.
func (s *Server) putFacts(w http.ResponseWriter, r *http.Request) error {
	data, err := readBody(w, r, api.MaxFactsBytes)
	if err != nil {
		return err
	}
	if !jsonObject(data) {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "facts: want a JSON object")
	}
	var seq uint64
	if v := r.URL.Query().Get("seq"); v != "" {
		if seq, err = strconv.ParseUint(v, 10, 63); err != nil {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, "facts: seq %q: want a number", v)
		}
	}
	if _, err := s.store.PutFacts(r.Context(), requestNode(r).Name, s.cfg.Now(), data, seq); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// putReport stores a run report, once: a retry with the same ID stores nothing.
func (s *Server) putReport(w http.ResponseWriter, r *http.Request) error {
	up, err := api.ParseReportQuery(r.URL.Query())
	if err != nil {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "report: %v", err)
	}
	if !api.ValidReportID(up.ID) {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "report ID %q: want 1 to 128 letters, digits, dots, dashes and underscores", up.ID)
	}
	if len(up.Outcome) > 64 {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "report %s: outcome over 64 characters", up.ID)
	}
	if up.Body, err = readBody(w, r, api.MaxReportBytes); err != nil {
		return err
	}
	if !jsonObject(up.Body) {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "report %s: the body is not a JSON object", up.ID)
	}
	node := requestNode(r).Name
	stored, err := s.store.PutReport(r.Context(), registry.Report{
		Node: node, ID: up.ID, Received: s.cfg.Now(), Outcome: up.Outcome, Release: up.Release, Body: up.Body,
	})
	if err != nil {
		return err
	}
	s.metrics.countReport(stored)
	s.log.Debug("report", "node", node, "id", up.ID, "outcome", up.Outcome, "stored", stored)
	if stored {
		s.pruneReports(r.Context(), node)
	}
	writeJSON(w, http.StatusOK, api.ReportReceipt{Stored: stored})
	return nil
}

// renew issues a new certificate for the node's key.
func (s *Server) renew(w http.ResponseWriter, r *http.Request) error {
	var req api.RenewRequest
	if err := readJSON(w, r, api.MaxEnrollBytes, &req); err != nil {
		return err
	}
	n := requestNode(r)
	csr, err := x509.ParseCertificateRequest(req.CSR)
	if err != nil {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "certificate request: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "certificate request: the signature does not verify: %v", err)
	}
	if pki.Fingerprint(csr.RawSubjectPublicKeyInfo) != n.KeyFingerprint {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "renewal is for the node's key on record; a new key is enrolled anew")
	}
	der, err := s.issue(r, req.CSR, n.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.EnrollResponse{Name: n.Name, State: string(registry.Approved), Fingerprint: pki.Shorten(n.KeyFingerprint), Certificate: der, CA: s.ca.Certificate().Raw})
	return nil
}
