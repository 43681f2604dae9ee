package server

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/registry"
)

// adminOnly wraps an admin endpoint: the request must carry the admin token as a bearer
// credential.
func (s *Server) adminOnly(h handlerFunc) http.Handler {
	return s.serve(func(w http.ResponseWriter, r *http.Request) error {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return errorf(http.StatusUnauthorized, api.CodeUnauthorized, "the admin credential is required (satchel … --credential FILE, the server's admin.json)")
		}
		if !s.isAdmin(token) {
			return errorf(http.StatusUnauthorized, api.CodeUnauthorized, "the admin credential was refused: it is not this server's (satchel … --credential FILE, the server's admin.json)")
		}
		return h(w, r)
	})
}

// nodeView is a node as package api shows it.
func nodeView(n registry.Node) api.Node {
	return api.Node{
		Name: n.Name, State: string(n.State), Fingerprint: pki.Shorten(n.KeyFingerprint), KeyFingerprint: n.KeyFingerprint,
		MachineID: n.MachineID, Enrolled: n.Enrolled, LastSeen: n.LastSeen, TokenLabel: n.TokenLabel,
		CertSerial: n.CertSerial, Recipient: n.Recipient, Facts: n.Facts, LastReturns: n.LastReturns,
	}
}

// notFound turns the store's ErrNotFound into a 404 naming what was missing.
func notFound(err error, what string) error {
	if errors.Is(err, registry.ErrNotFound) {
		return errorf(http.StatusNotFound, api.CodeNotFound, "%s: not found", what)
	}
	return err
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) error {
	nodes, err := s.store.ListNodes(r.Context())
	if err != nil {
		return err
	}
	out := make([]api.Node, 0, len(nodes))
	for _, n := range nodes {
		v := nodeView(n)
		v.Facts = nil // the list is a summary; show NAME has them
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	n, err := s.store.GetNode(r.Context(), name)
	if err != nil {
		return notFound(err, "node "+name)
	}
	writeJSON(w, http.StatusOK, nodeView(n))
	return nil
}

func (s *Server) forgetNode(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := s.store.ForgetNode(r.Context(), name); err != nil {
		return notFound(err, "node "+name)
	}
	s.log.Info("node forgotten", "node", name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// approveNode approves a pending (or revoked) node; it gets its certificate on its next
// enrollment request.
func (s *Server) approveNode(w http.ResponseWriter, r *http.Request) error {
	return s.setState(w, r, registry.Approved)
}

// revokeNode revokes a node: its next request is refused.
func (s *Server) revokeNode(w http.ResponseWriter, r *http.Request) error {
	return s.setState(w, r, registry.Revoked)
}

func (s *Server) setState(w http.ResponseWriter, r *http.Request, state registry.NodeState) error {
	name := r.PathValue("name")
	if err := s.store.SetNodeState(r.Context(), name, state, ""); err != nil {
		return notFound(err, "node "+name)
	}
	n, err := s.store.GetNode(r.Context(), name)
	if err != nil {
		return notFound(err, "node "+name)
	}
	s.log.Info("node "+string(state), "node", name, "fingerprint", pki.Shorten(n.KeyFingerprint))
	writeJSON(w, http.StatusOK, nodeView(n))
	return nil
}

func (s *Server) listReports(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, "limit %q: want a whole number", v)
		}
		limit = n
	}
	reports, err := s.store.ListReports(r.Context(), name, limit)
	if err != nil {
		return notFound(err, "node "+name)
	}
	out := make([]api.Report, 0, len(reports))
	for _, rep := range reports {
		out = append(out, api.Report{ID: rep.ID, Received: rep.Received, Outcome: rep.Outcome, Release: rep.Release, Body: rep.Body})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func tokenView(t registry.Token) api.Token {
	return api.Token{ID: t.ID, Hash: t.Hash, Label: t.Label, UsesLeft: t.UsesLeft, Expires: t.Expires, Created: t.Created, Revoked: t.Revoked}
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	tokens, err := s.store.ListTokens(r.Context())
	if err != nil {
		return err
	}
	out := make([]api.Token, 0, len(tokens))
	for _, t := range tokens {
		out = append(out, tokenView(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// createToken makes a bootstrap token; its ID is in this answer only.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req api.TokenRequest
	if err := readJSON(w, r, api.MaxAdminBytes, &req); err != nil {
		return err
	}
	now := s.cfg.Now()
	if !req.Expires.IsZero() && !req.Expires.After(now) {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "the token would expire at %s, which is past", req.Expires.UTC().Format(time.RFC3339))
	}
	t := registry.Token{ID: "st-" + randomID(20), Label: req.Label, UsesLeft: req.Uses, Expires: req.Expires, Created: now}
	if err := t.Check(); err != nil {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	if err := s.store.CreateToken(r.Context(), t); err != nil {
		return err
	}
	t.Hash = registry.TokenHash(t.ID)
	s.log.Info("token created", "label", t.Label, "uses", t.UsesLeft, "expires", t.Expires, "hash", t.Hash[:12])
	writeJSON(w, http.StatusCreated, tokenView(t))
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	hash := r.PathValue("hash")
	if err := s.store.RevokeToken(r.Context(), hash); err != nil {
		return notFound(err, "token "+hash)
	}
	s.log.Info("token revoked", "hash", hash)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
