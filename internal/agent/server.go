// A node enrolled with satchel server (package client) pulls its releases from the server
// over mutual TLS, sends its facts when they change, and uploads the reports in its spool,
// oldest first, removing each once the server has it.

package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/client"
	"github.com/satchelcm/satchel/internal/release"
)

// IdentityDirName is the node's identity (package client) in the state directory.
const IdentityDirName = "identity"

// factsSentName records the hash of the facts the server last accepted.
const factsSentName = "facts.sent"

// openIdentity loads the node's identity, if it has one, and its server connection if it
// is enrolled.
func (a *Agent) openIdentity() error {
	id, err := client.LoadIdentity(filepath.Join(a.state, IdentityDirName))
	if errors.Is(err, client.ErrNoIdentity) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.identity = id
	if id.Enrolled() {
		if a.node, err = client.NewNode(id); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	return nil
}

// awaitingApproval reports whether the node asked a server to enroll it and has no
// certificate yet.
func (a *Agent) awaitingApproval() bool {
	return a.identity != nil && a.node == nil && a.identity.Server().Server != ""
}

// repositories are the repositories of a cycle, in order: the server's first, if the node
// is enrolled, then the configured ones.
func (a *Agent) repositories() []string {
	if a.only != nil {
		return a.only
	}
	if a.node == nil {
		return a.opts.Repositories
	}
	return append([]string{a.node.RepoURL()}, a.opts.Repositories...)
}

// httpFor is the HTTP client for a repository: the node's mutual-TLS client for its
// server's, the shared one otherwise.
func (a *Agent) httpFor(remote string) *http.Client {
	if a.node != nil && remote == a.node.RepoURL() {
		return a.node.HTTPClient()
	}
	return a.http
}

// ensureCertificate makes sure the node can talk to its server: a pending node asks
// whether it is approved; a node whose certificate expired while it could not reach the
// server (a school offline for months, reached by USB meanwhile) asks for a new one by
// enrolling again with its key, which the server grants to an approved node.
func (a *Agent) ensureCertificate(ctx context.Context, facts map[string]any) error {
	switch {
	case a.only != nil:
		return nil // a bundle's import: the server is not contacted
	case a.awaitingApproval():
		return a.pollEnrollment(ctx, facts)
	case a.node != nil && !a.opts.Now().Before(a.identity.Certificate().NotAfter):
		a.logf("the node's certificate expired on %s: enrolling again with its key", a.identity.Certificate().NotAfter.Format("2006-01-02"))
		a.node = nil
		return a.pollEnrollment(ctx, facts)
	}
	return nil
}

// pollEnrollment asks the server again whether the node is approved. Approved, the node
// trusts the repository root the server sent (if it trusts none yet) and pulls from the
// server from now on. Still pending is an error that says what to do.
func (a *Agent) pollEnrollment(ctx context.Context, facts map[string]any) error {
	info := a.identity.Server()
	factsJSON, err := json.Marshal(facts)
	if err != nil {
		return err
	}
	res, err := a.identity.Enroll(ctx, client.EnrollRequest{
		Server: info.Server, CAFingerprint: info.CAFingerprint, Name: info.Name,
		MachineID: a.machineID(), Facts: factsJSON,
	})
	if err != nil {
		return err
	}
	if !res.Approved {
		return fmt.Errorf("node %s waits for an operator's approval on %s (key fingerprint %s: compare it, then satchel nodes approve %s)",
			info.Name, info.Server, res.Fingerprint, info.Name)
	}
	if err := InitServerTrust(a.state, res.Trust); err != nil {
		return err
	}
	if a.node, err = client.NewNode(a.identity); err != nil {
		return err
	}
	a.logf("node %s holds a certificate from %s, valid until %s: pulling releases from it", info.Name, info.Server, a.identity.Certificate().NotAfter.Format("2006-01-02"))
	return nil
}

// InitServerTrust makes root, the repository root a server sent with its approval, the
// trust of the node whose state directory is state, unless it trusts a root already.
func InitServerTrust(state string, root []byte) error {
	trust := filepath.Join(state, trustDirName)
	if _, err := os.Stat(filepath.Join(trust, release.TrustMetadataDir, "root.json")); err == nil {
		return nil
	}
	if len(root) == 0 {
		return errors.New("the server sent no repository root to trust")
	}
	if err := release.TrustInit(trust, root); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// machineID is the machine ID of the machine converged: ROOT/etc/machine-id.
func (a *Agent) machineID() string {
	data, err := os.ReadFile(filepath.Join(a.rootDir, "etc", "machine-id"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// syncServer does the node's business with its server after a cycle: renew the
// certificate when a third of its life is left, send the facts if they changed, and upload
// the spooled reports. Failures are logged; everything is tried again next cycle.
func (a *Agent) syncServer(ctx context.Context, facts map[string]any) {
	if a.node == nil || a.only != nil || ctx.Err() != nil {
		return
	}
	if a.identity.NeedsRenewal(a.opts.Now()) {
		if err := a.node.Renew(ctx); err != nil {
			a.logf("warning: %v", err)
		} else {
			a.logf("certificate renewed, valid until %s", a.identity.Certificate().NotAfter.Format("2006-01-02"))
		}
	}
	if facts != nil {
		if err := a.sendFacts(ctx, facts); err != nil {
			a.logf("warning: %v", err)
		}
	}
	if n, err := a.uploadReports(ctx); err != nil {
		a.logf("warning: %v (%d uploaded; the rest wait in the spool)", err, n)
	}
	// Nothing more until the next cycle: free the server's side of the connection now
	// (the TLS session is kept, so the next cycle resumes it).
	a.node.HTTPClient().CloseIdleConnections()
}

// sendFacts sends the facts unless the server has these already.
func (a *Agent) sendFacts(ctx context.Context, facts map[string]any) error {
	data, err := json.Marshal(facts)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	sentPath := filepath.Join(a.state, factsSentName)
	if sent, err := os.ReadFile(sentPath); err == nil && strings.TrimSpace(string(sent)) == hash {
		return nil
	}
	// Numbered, with the facts written onto sticks: the server keeps the newest.
	st, err := ReadState(a.state)
	if err != nil {
		return err
	}
	st.FactsSeq++
	if err := writeState(a.state, st); err != nil {
		return err
	}
	if err := a.node.PutFacts(ctx, data, st.FactsSeq); err != nil {
		return err
	}
	return os.WriteFile(sentPath, []byte(hash+"\n"), 0o600)
}

// uploadReports uploads the spooled reports, oldest first, removing each the server has
// (stored now or before: an upload is idempotent). It stops at the first failure, so the
// order is kept, and returns how many were uploaded.
func (a *Agent) uploadReports(ctx context.Context) (int, error) {
	entries, err := a.spool.List()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if e.Kind != "report" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		data, err := a.spool.Read(e.Name)
		if err != nil {
			return n, err
		}
		var head struct {
			Outcome string `json:"outcome"`
			Release uint64 `json:"release"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			// A damaged entry would block the spool for ever: it goes, and the log says so.
			a.logf("warning: spooled report %s is damaged (%v): removed", e.Name, err)
			_ = a.spool.Remove(e.Name)
			continue
		}
		_, err = a.node.PutReport(ctx, api.ReportUpload{ID: e.Name, Outcome: head.Outcome, Release: head.Release, Body: data})
		if code := client.Code(err); code == api.CodeTooLarge || code == api.CodeBadRequest {
			// The server will never take it; keeping it would block the spool for ever.
			a.logf("warning: the server refuses spooled report %s (%v): removed", e.Name, err)
			_ = a.spool.Remove(e.Name)
			continue
		}
		if err != nil {
			return n, err
		}
		if err := a.spool.Remove(e.Name); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
