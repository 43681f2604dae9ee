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
func (s *Server) enroll(w http.ResponseWriter, r *http.Request) error {
	var req api.EnrollRequest
	if err := readJSON(w, r, api.MaxEnrollBytes, &req); err != nil {
		return err
	}
	csr, keyFP, err := checkEnrollRequest(req)
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := s.cfg.Now()
	if err := s.checkClone(r, req.Name, req.MachineID, keyFP); err != nil {
		return err
	}
	node, err := s.store.GetNode(ctx, req.Name)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		node = registry.Node{}
	case err != nil:
		return err
	case node.KeyFingerprint != keyFP:
		return errorf(http.StatusConflict, api.CodeNameTaken,
			"node %s is enrolled with another key: if this machine replaces it, an operator must first run `satchel nodes forget %s`", req.Name, req.Name)
	case node.State == registry.Revoked:
		return errorf(http.StatusForbidden, api.CodeRevoked, "node %s is revoked: an operator may approve it again, or forget it so that it enrolls anew", req.Name)
	}

	// A token admits a new or pending node; an approved one (an agent retrying after a
	// lost answer) spends nothing.
	var token registry.Token
	useToken := req.Token != "" && node.State != registry.Approved
	if useToken {
		if token, err = s.store.UseToken(ctx, req.Token, now); err != nil {
			var te *registry.TokenError
			if errors.As(err, &te) {
				return errorf(http.StatusForbidden, api.CodeTokenInvalid, "bootstrap token refused: %s", te.Reason)
			}
			return err
		}
	}
	err = s.store.PutPendingNode(ctx, registry.Node{
		Name: req.Name, KeyFingerprint: keyFP, MachineID: req.MachineID, Enrolled: now, LastSeen: now,
		Facts: req.Facts, TokenLabel: token.Label, Recipient: req.Recipient,
	})
	if errors.Is(err, registry.ErrExists) { // another key won a race for the name
		return errorf(http.StatusConflict, api.CodeNameTaken, "node %s is enrolled with another key", req.Name)
	}
	if err != nil {
		return err
	}
	state := node.State
	if state == "" {
		state = registry.Pending
		s.log.Info("enrollment request", "node", req.Name, "fingerprint", pki.Shorten(keyFP), "token", token.Label, "remote", r.RemoteAddr)
	}
	if useToken {
		state = registry.Approved
	}
	resp := api.EnrollResponse{Name: req.Name, State: string(state), Fingerprint: pki.Shorten(keyFP)}
	if state != registry.Approved {
		writeJSON(w, http.StatusAccepted, resp)
		return nil
	}
	if resp.Certificate, err = s.issue(r, csr, req.Name); err != nil {
		return err
	}
	if resp.Trust, err = os.ReadFile(filepath.Join(s.RepoDir(), release.MetadataDir, "root.json")); err != nil {
		return fmt.Errorf("read the repository's root: %w", err)
	}
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
	if req.Facts != nil && !jsonObject(req.Facts) {
		return nil, "", errorf(http.StatusBadRequest, api.CodeBadRequest, "facts: want a JSON object")
	}
	return req.CSR, pki.Fingerprint(csr.RawSubjectPublicKeyInfo), nil
}

// checkClone refuses a machine ID or key that a node of another name has: the machine was
// cloned from an image that held an identity, and merging the two would let one
// impersonate the other.
func (s *Server) checkClone(r *http.Request, name, machineID, keyFP string) error {
	ctx := r.Context()
	byID, err := s.store.FindByMachineID(ctx, machineID)
	if err != nil {
		return err
	}
	byKey, err := s.store.FindByKeyFingerprint(ctx, keyFP)
	if err != nil {
		return err
	}
	for _, n := range append(byID, byKey...) {
		if n.Name == name {
			continue
		}
		what := "machine ID " + machineID
		if n.KeyFingerprint == keyFP {
			what = "key"
		}
		s.log.Warn("clone refused", "node", name, "same_as", n.Name, "what", what, "remote", r.RemoteAddr)
		return errorf(http.StatusConflict, api.CodeClone,
			"this machine's %s is node %s's: it was cloned from an image that held an identity. Give it its own: regenerate /etc/machine-id (rm /etc/machine-id && systemd-machine-id-setup) and run `satchel enroll --new-identity`", what, n.Name)
	}
	return nil
}

// issue signs a certificate for node and records its serial.
func (s *Server) issue(r *http.Request, csr []byte, node string) ([]byte, error) {
	der, err := s.ca.SignNode(csr, node, s.cfg.NodeCertValidity)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := s.store.SetNodeState(r.Context(), node, registry.Approved, cert.SerialNumber.Text(16)); err != nil {
		return nil, err
	}
	s.log.Info("certificate issued", "node", node, "serial", cert.SerialNumber.Text(16), "expires", cert.NotAfter)
	return der, nil
}
