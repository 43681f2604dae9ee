package server

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"filippo.io/age"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/release"
)

// maxMachineID bounds a machine ID (systemd's are 32 hex digits).
const maxMachineID = 128

// enroll answers an enrollment request (see the package documentation).
func (s *Server) enroll(w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if err != nil {
			s.metrics.enrollments.WithLabelValues("refused").Inc()
		}
	}()
	var req api.EnrollRequest
	if err := readJSON(w, r, api.MaxEnrollBytes, &req); err != nil {
		return err
	}
	csr, keyFP, err := checkEnrollRequest(req)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	node, err := s.store.Enroll(r.Context(), registry.Enrollment{
		Node: registry.Node{Name: req.Name, KeyFingerprint: keyFP, MachineID: req.MachineID, Enrolled: now, LastSeen: now,
			Facts: req.Facts, Recipient: req.Recipient},
		Token: req.Token,
	})
	var clone *registry.CloneError
	var te *registry.TokenError
	switch {
	case errors.As(err, &clone):
		what := "machine ID " + req.MachineID
		if clone.Key {
			what = "key"
		}
		s.log.Warn("clone refused", "node", req.Name, "same_as", clone.Other, "what", what, "remote", r.RemoteAddr)
		return errorf(http.StatusConflict, api.CodeClone,
			"this machine's %s is node %s's: it was cloned from an image that held an identity. Give it its own: regenerate /etc/machine-id (rm /etc/machine-id && systemd-machine-id-setup) and run `satchel enroll --new-identity`", what, clone.Other)
	case errors.Is(err, registry.ErrExists):
		return errorf(http.StatusConflict, api.CodeNameTaken,
			"node %s is enrolled with another key: if this machine replaces it, an operator must first run `satchel nodes forget %s`", req.Name, req.Name)
	case errors.As(err, &te):
		return errorf(http.StatusForbidden, api.CodeTokenInvalid, "bootstrap token refused: %s", te.Reason)
	case err != nil:
		return err
	case node.State == registry.Revoked:
		return errorf(http.StatusForbidden, api.CodeRevoked, "node %s is revoked: an operator may approve it again, or forget it so that it enrolls anew", req.Name)
	}
	if node.State == registry.Pending {
		s.log.Info("enrollment request", "node", req.Name, "fingerprint", pki.Shorten(keyFP), "remote", r.RemoteAddr)
	}
	state := node.State
	resp := api.EnrollResponse{Name: req.Name, State: string(state), Fingerprint: pki.Shorten(keyFP)}
	if state != registry.Approved {
		s.metrics.enrollments.WithLabelValues("pending").Inc()
		writeJSON(w, http.StatusAccepted, resp)
		return nil
	}
	if resp.Certificate, err = s.issue(r, csr, req.Name); err != nil {
		return err
	}
	resp.CA = s.ca.Certificate().Raw
	if resp.Trust, err = os.ReadFile(filepath.Join(s.RepoDir(), release.MetadataDir, "root.json")); err != nil {
		return fmt.Errorf("read the repository's root: %w", err)
	}
	s.metrics.enrollments.WithLabelValues("approved").Inc()
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// checkEnrollRequest checks what a request says on its own, and returns its certificate
// request and the fingerprint of its key.
func checkEnrollRequest(req api.EnrollRequest) (csrDER []byte, keyFP string, err error) {
	if err := pki.CheckNodeName(req.Name); err != nil {
		return nil, "", errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	csr, err := x509.ParseCertificateRequest(req.CSR)
	if err != nil {
		return nil, "", errorf(http.StatusBadRequest, api.CodeBadRequest, "certificate request: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, "", errorf(http.StatusBadRequest, api.CodeBadRequest, "certificate request: the signature does not verify: %v", err)
	}
	if _, err := age.ParseX25519Recipient(req.Recipient); err != nil {
		return nil, "", errorf(http.StatusBadRequest, api.CodeBadRequest, "recipient: %v", err)
	}
	if len(req.MachineID) > maxMachineID {
		return nil, "", errorf(http.StatusBadRequest, api.CodeBadRequest, "machine ID over %d characters", maxMachineID)
	}
	if req.Facts != nil && !decodedObject(req.Facts) {
		return nil, "", errorf(http.StatusBadRequest, api.CodeBadRequest, "facts: want a JSON object")
	}
	return req.CSR, pki.Fingerprint(csr.RawSubjectPublicKeyInfo), nil
}

// issue signs a certificate for node, which must be approved, and records its serial. A
// node revoked while the certificate was made gets nothing: recording checks the state.
func (s *Server) issue(r *http.Request, csr []byte, node string) ([]byte, error) {
	der, err := s.ca.SignNode(csr, node, s.cfg.NodeCertValidity)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	err = s.store.RecordCertificate(r.Context(), node, cert.SerialNumber.Text(16))
	if errors.Is(err, registry.ErrNotApproved) {
		return nil, errorf(http.StatusForbidden, api.CodeRevoked, "node %s is no longer approved", node)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("certificate issued", "node", node, "serial", cert.SerialNumber.Text(16), "expires", cert.NotAfter)
	return der, nil
}
