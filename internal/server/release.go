package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/atomicfile"
	"github.com/satchelcm/satchel/internal/dirtar"
	"github.com/satchelcm/satchel/internal/preview"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/release"
)

// SecretsDirName is where, in the data directory, the operator keeps the secrets the
// config reads (secret(NAME) is the file SecretsDirName/NAME), in plain text: the server
// encrypts each to its node at release time.
const SecretsDirName = "secrets"

// postRelease previews a config sent by an operator against every approved node's last
// facts and, unless asked only for the preview, publishes it as the next release, signed
// with the keys in the data directory and with the nodes' secrets encrypted to them. A
// release that fails to evaluate for a node is refused (409, with the preview) unless
// forced.
func (s *Server) postRelease(w http.ResponseWriter, r *http.Request) error {
	var req api.ReleaseRequest
	if err := readJSON(w, r, api.MaxReleaseBytes, &req); err != nil {
		return err
	}
	checks, err := healthChecks(req.HealthChecks)
	if err != nil {
		return err
	}
	work, cleanup, err := s.workDir("release-")
	if err != nil {
		return err
	}
	defer cleanup()
	newDir := filepath.Join(work, "config")
	if err := os.Mkdir(newDir, 0o700); err != nil {
		return err
	}
	if err := dirtar.Unpack(bytes.NewReader(req.Config), newDir, dirtar.DefaultLimits); err != nil {
		if errors.Is(err, dirtar.ErrRefused) {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, "config: %v", err)
		}
		return err
	}
	ctx := r.Context()
	res, nodes, err := s.preview(r, work, newDir)
	if err != nil {
		return err
	}
	out := api.ReleaseResult{Preview: previewView(res)}
	if req.Preview {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	if failed := res.Failed(); len(failed) > 0 && !req.Force {
		out.Code = api.CodeReleaseFails
		out.Message = fmt.Sprintf("not published: the release fails to evaluate for %d of %d nodes (%s); fix the config, or publish anyway with --force",
			len(failed), len(res.Nodes), strings.Join(failed, ", "))
		writeJSON(w, http.StatusConflict, out)
		return nil
	}
	opts := release.Options{Notes: req.Notes, HealthChecks: checks, Now: s.cfg.Now}
	secretsDir := filepath.Join(s.dir, SecretsDirName)
	if _, err := os.Stat(secretsDir); err == nil {
		opts.Secrets = &release.SecretsOptions{Dir: secretsDir, Recipients: map[string]string{}}
		for _, n := range nodes {
			if n.State == registry.Approved && n.Recipient != "" {
				opts.Secrets.Recipients[n.Name] = n.Recipient
			}
		}
	}
	pub, err := release.Publish(ctx, s.RepoDir(), s.KeysDir(), newDir, opts)
	var ce *release.CheckError
	if errors.As(err, &ce) {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "%s", strings.ReplaceAll(checkMessage(ce), newDir+string(filepath.Separator), ""))
	}
	if err != nil {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "%s", strings.ReplaceAll(err.Error(), newDir, "the config"))
	}
	out.Version, out.Config, out.Checked, out.Warnings = pub.Manifest.Version, pub.Manifest.Config.String(), pub.Nodes, pub.Warnings
	if err := s.savePreview(out.Version, out.Preview); err != nil {
		s.log.Warn("keep the release's preview", "version", out.Version, "err", err) // the release stands
	}
	s.log.Info("release published", "version", out.Version, "config", out.Config, "nodes_checked", len(pub.Nodes),
		"nodes_failing", len(res.Failed()), "forced", req.Force, "warnings", len(pub.Warnings))
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// previewNode is a node as package preview evaluates it: its facts, nil if it never
// reported any (or they cannot be read: checked as if never reported).
func previewNode(n registry.Node) preview.Node {
	pn := preview.Node{Name: n.Name}
	if len(n.Facts) > 0 {
		if err := json.Unmarshal(n.Facts, &pn.Facts); err != nil {
			pn.Facts = nil
		}
	}
	return pn
}

// workDir makes a new directory under DATA/tmp for a request's work, and a function to
// remove it (a leftover in DATA/tmp is harmless).
func (s *Server) workDir(prefix string) (string, func(), error) {
	tmp := filepath.Join(s.dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", nil, err
	}
	work, err := os.MkdirTemp(tmp, prefix)
	if err != nil {
		return "", nil, err
	}
	return work, func() { _ = os.RemoveAll(work) }, nil
}

// preview runs the preview of the config in newDir against the current release for the
// approved nodes, checking the current release out under work. It returns the nodes too.
func (s *Server) preview(r *http.Request, work, newDir string) (*preview.Result, []registry.Node, error) {
	ctx := r.Context()
	cur, err := release.Latest(s.RepoDir())
	if err != nil {
		return nil, nil, err
	}
	oldDir, from := "", uint64(0)
	if cur != nil {
		oldDir, from = filepath.Join(work, "current"), cur.Version
		if err := release.CheckoutConfig(ctx, s.RepoDir(), cur, oldDir); err != nil {
			return nil, nil, err
		}
	}
	all, err := s.store.ListNodes(ctx)
	if err != nil {
		return nil, nil, err
	}
	var nodes []preview.Node
	for _, n := range all {
		if n.State != registry.Approved {
			continue
		}
		nodes = append(nodes, previewNode(n))
	}
	res, err := preview.Run(ctx, oldDir, newDir, from, nodes)
	if err != nil {
		return nil, nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "%s", strings.ReplaceAll(err.Error(), newDir+string(filepath.Separator), ""))
	}
	return res, all, nil
}

func previewView(res *preview.Result) api.Preview {
	out := api.Preview{From: res.From, Nodes: make([]api.PreviewNode, 0, len(res.Nodes))}
	for _, n := range res.Nodes {
		pn := api.PreviewNode{Node: n.Node, Error: n.Error, NoFacts: n.NoFacts}
		for _, c := range n.Changes {
			pn.Changes = append(pn.Changes, api.PreviewChange{Address: c.Address, Kind: string(c.Kind), Fields: c.Fields})
		}
		out.Nodes = append(out.Nodes, pn)
	}
	return out
}

// healthChecks converts a request's health checks, checked as a manifest checks them.
func healthChecks(in []api.HealthCheck) ([]release.HealthCheck, error) {
	var out []release.HealthCheck
	for _, h := range in {
		d, err := time.ParseDuration(h.Timeout)
		if err != nil {
			return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "health check %q: timeout: %v", h.Name, err)
		}
		out = append(out, release.HealthCheck{Name: h.Name, Command: h.Command, Timeout: d})
	}
	return out, nil
}

// checkMessage is a failed check's error with its first problems.
func checkMessage(ce *release.CheckError) string {
	var b strings.Builder
	b.WriteString(ce.Error())
	for i, d := range ce.Diags {
		if i == 5 {
			fmt.Fprintf(&b, "\n(and %d more)", len(ce.Diags)-5)
			break
		}
		fmt.Fprintf(&b, "\n%s: %s", d.Summary, d.Detail)
	}
	return b.String()
}

// previewsDir keeps, by release, the preview made before publishing it (DATA/previews).
const previewsDir = "previews"

func (s *Server) savePreview(version uint64, p api.Preview) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.dir, previewsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, fmt.Sprintf("%d.json", version)), 0o600, data)
}

// releases lists the published releases, newest first, with how many nodes run each
// (from the fleet's last reports) and the previews kept.
func (s *Server) releases(ctx context.Context) ([]api.ReleaseInfo, error) {
	versions, err := release.Versions(s.RepoDir())
	if err != nil {
		return nil, err
	}
	fleet, err := s.store.FleetStatus(ctx)
	if err != nil {
		return nil, err
	}
	applied := map[uint64]int{}
	for _, n := range fleet {
		if n.Last != nil {
			applied[n.Last.Release]++
		}
	}
	out := make([]api.ReleaseInfo, 0, len(versions))
	for _, v := range slices.Backward(versions) {
		m, err := release.ReadManifest(s.RepoDir(), v)
		if err != nil {
			return nil, err
		}
		info := api.ReleaseInfo{Version: v, Created: m.Created, Notes: m.Notes, Config: m.Config.String(), Applied: applied[v]}
		if data, err := os.ReadFile(filepath.Join(s.dir, previewsDir, fmt.Sprintf("%d.json", v))); err == nil {
			var p api.Preview
			if json.Unmarshal(data, &p) == nil {
				info.Preview = &p
			}
		}
		out = append(out, info)
	}
	return out, nil
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request) error {
	out, err := s.releases(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
