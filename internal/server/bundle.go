package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/bundle"
	"github.com/satchelcm/satchel/internal/preview"
	"github.com/satchelcm/satchel/internal/registry"
	"github.com/satchelcm/satchel/internal/release"
	"github.com/satchelcm/satchel/internal/resource"
	"github.com/satchelcm/satchel/internal/store"
)

// holdings are the trees a node's store holds whole, as its newest report says
// (agent.CycleReport.Holds; read here without package agent).
type holdings struct {
	Config string            `json:"config"`
	Trees  map[string]string `json:"trees"`
}

// holdingsOf reads what node holds from its newest reports (none if it never reported),
// and the IDs of its newest reports (bundle.ReceivedListed of them).
func (s *Server) holdingsOf(r *http.Request, node string) (holdings, []string, error) {
	heads, err := s.store.ListReportHeads(r.Context(), node, bundle.ReceivedListed)
	if err != nil || len(heads) == 0 {
		return holdings{}, nil, err
	}
	ids := make([]string, len(heads))
	for i, h := range heads {
		ids[i] = h.ID
	}
	// From the report of the highest release among the newest few, the newest received
	// among equals: a stick that came back late brings older reports after newer ones.
	reports, err := s.store.ListReports(r.Context(), node, holdingsFrom)
	if err != nil || len(reports) == 0 { // none: pruned meanwhile
		return holdings{}, ids, err
	}
	newest := reports[0]
	for _, rep := range reports[1:] {
		if rep.Release > newest.Release {
			newest = rep
		}
	}
	var body struct {
		Holds *holdings `json:"holds"`
	}
	if json.Unmarshal(newest.Body, &body) != nil || body.Holds == nil {
		return holdings{}, ids, nil // an older agent's, or unreadable: as if it held nothing
	}
	return *body.Holds, ids, nil
}

// holdingsFrom is how many of a node's newest reports holdingsOf reads whole.
const holdingsFrom = 10

// postBundle plans a USB bundle of the latest release for the nodes asked for: for each
// node, a static delta to each tree the release needs on it (its config, the content its
// tree resources mirror) from the tree it holds at the same place, or from nothing; the
// deltas missing from the repository's store are built. It answers the bundle's signed
// index; the CLI copies the files it lists onto the stick.
func (s *Server) postBundle(w http.ResponseWriter, r *http.Request) error {
	var req api.BundleRequest
	if err := readJSON(w, r, api.MaxAdminBytes, &req); err != nil {
		return err
	}
	ctx := r.Context()
	m, err := release.Latest(s.RepoDir())
	if err != nil {
		return err
	}
	if m == nil {
		return errorf(http.StatusConflict, api.CodeBadRequest, "no release has been published yet: publish one first (satchel release DIR --server)")
	}
	work, cleanup, err := s.workDir("bundle-")
	if err != nil {
		return err
	}
	defer cleanup()
	configDir := filepath.Join(work, "config")
	if err := release.CheckoutConfig(ctx, s.RepoDir(), m, configDir); err != nil {
		return err
	}
	nodes, skipped, err := s.bundleNodes(r, req, configDir)
	if err != nil {
		return err
	}
	pnodes := make([]preview.Node, len(nodes))
	for i, n := range nodes {
		pnodes[i] = previewNode(n)
	}
	evaluated, err := preview.Evaluate(ctx, configDir, pnodes)
	if err != nil {
		return errorf(http.StatusConflict, api.CodeReleaseFails, "release %d: %v", m.Version, err)
	}
	repo, err := store.Open(filepath.Join(s.RepoDir(), release.StoreDir))
	if err != nil {
		return err
	}
	ix := &bundle.Index{Format: bundle.Format, ID: bundleID(s.cfg.Now()), Created: s.cfg.Now().UTC().Truncate(1e9),
		Release: m.Version, Received: map[string][]string{}}
	plan := api.BundlePlan{Skipped: skipped}
	deltas := map[[2]store.ID]bool{}
	usable := map[store.ID]bool{} // usableBase's answers: a large tree is walked once
	roots := map[string]bool{}
	var files []string
	for _, ev := range evaluated {
		if ev.Error != "" {
			return errorf(http.StatusConflict, api.CodeReleaseFails, "release %d does not evaluate for %s: %s", m.Version, ev.Node, ev.Error)
		}
		held, received, err := s.holdingsOf(r, ev.Node)
		if err != nil {
			return err
		}
		if len(received) > 0 {
			ix.Received[ev.Node] = received
		}
		if req.Full {
			held = holdings{}
		}
		trees, err := resource.TreeRoots(ev.Catalog)
		if err != nil {
			return err
		}
		need := append([]resource.TreeRoot{{Address: "config", ID: m.Config}}, trees...)
		bn := api.BundleNode{Name: ev.Node}
		for _, t := range need {
			roots[t.ID.String()] = true
			bt := planTree(t, held, func(id store.ID) bool {
				ok, known := usable[id]
				if !known {
					ok = usableBase(ctx, repo, id)
					usable[id] = ok
				}
				return ok
			})
			if !bt.Held {
				from, _ := store.ParseID(bt.From) // "": the zero ID, from nothing
				deltas[[2]store.ID{from, t.ID}] = true
			}
			bn.Trees = append(bn.Trees, bt)
		}
		plan.Nodes = append(plan.Nodes, bn)
		ix.Nodes = append(ix.Nodes, ev.Node)
		secrets, err := release.NodeSecretFiles(s.RepoDir(), m.Version, ev.Node)
		if err != nil {
			return err
		}
		files = append(files, secrets...)
	}
	for pair := range deltas {
		if _, err := repo.DeltaIndex(pair[0], pair[1]); err != nil {
			s.log.Info("building a delta for a bundle", "from", pair[0].String(), "to", pair[1].String())
			if _, err := repo.BuildDelta(ctx, pair[0], pair[1], nil); err != nil {
				return fmt.Errorf("build the delta %s → %s: %w", pair[0], pair[1], err)
			}
		}
		files = append(files, path.Join(release.StoreDir, store.DeltaIndexPath(pair[0], pair[1])),
			path.Join(release.StoreDir, store.DeltaPackPath(pair[0], pair[1])))
	}
	common, err := release.ReleaseFiles(s.RepoDir(), m)
	if err != nil {
		return err
	}
	files = append(files, common...)
	slices.Sort(files)
	for _, f := range slices.Compact(files) {
		d, err := s.describeRepoFile(f)
		if err != nil {
			return err
		}
		ix.Files = append(ix.Files, d)
	}
	for root := range roots {
		ix.Roots = append(ix.Roots, root)
	}
	slices.Sort(ix.Roots)
	signer, ok := s.cert.PrivateKey.(crypto.Signer)
	if !ok {
		return errors.New("the server's key cannot sign")
	}
	if plan.Index, err = bundle.SignIndex(ix, signer, s.cert.Certificate); err != nil {
		return err
	}
	s.log.Info("bundle planned", "id", ix.ID, "release", m.Version, "nodes", len(ix.Nodes), "files", len(ix.Files), "bytes", ix.Size())
	writeJSON(w, http.StatusOK, plan)
	return nil
}

// planTree says how tree t reaches a node that holds held: nothing if it holds it,
// else a delta from the tree it holds at the same address if the office can start one
// from there (usable), else from nothing.
func planTree(t resource.TreeRoot, held holdings, usable func(store.ID) bool) api.BundleTree {
	bt := api.BundleTree{Address: t.Address, Root: t.ID.String()}
	if held.holds(t.ID) {
		bt.Held = true
		return bt
	}
	from := held.Trees[t.Address]
	if t.Address == "config" {
		from = held.Config
	}
	if id, err := store.ParseID(from); err == nil && !id.IsZero() && usable(id) {
		bt.From = id.String()
	}
	return bt
}

func (h holdings) holds(id store.ID) bool {
	s := id.String()
	if h.Config == s {
		return true
	}
	for _, t := range h.Trees {
		if t == s {
			return true
		}
	}
	return false
}

// usableBase reports whether a delta can start from id: the repository's store has all
// of it (a tree a node holds may have been collected from the office's store since).
func usableBase(ctx context.Context, repo *store.Store, id store.ID) bool {
	if id.IsZero() {
		return false
	}
	objs, chunks, err := repo.Missing(ctx, id)
	return err == nil && len(objs)+len(chunks) == 0
}

// bundleNodes are the approved nodes a bundle request names: by name, all of them, or by
// a column of the release's inventory (checked out in configDir); an inventory selection
// skips, and returns, the nodes it names that are not approved.
func (s *Server) bundleNodes(r *http.Request, req api.BundleRequest, configDir string) (nodes []registry.Node, skipped []string, err error) {
	ways := 0
	for _, given := range []bool{len(req.Nodes) > 0, req.All, req.Column != ""} {
		if given {
			ways++
		}
	}
	if ways != 1 {
		return nil, nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "name the nodes, ask for all of them, or give an inventory column and value: one of the three")
	}
	all, err := s.store.ListNodes(r.Context())
	if err != nil {
		return nil, nil, err
	}
	byName := map[string]registry.Node{}
	for _, n := range all {
		byName[n.Name] = n
		if req.All && n.State == registry.Approved {
			nodes = append(nodes, n)
		}
	}
	names := req.Nodes
	if req.Column != "" {
		if names, err = preview.InventoryNodes(configDir, req.Column, req.Value); err != nil {
			return nil, nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
		}
		if len(names) == 0 {
			return nil, nil, errorf(http.StatusConflict, api.CodeBadRequest, "no node of the inventory has %q in its column %q", req.Value, req.Column)
		}
	}
	for _, name := range names {
		n, ok := byName[name]
		switch {
		case req.Column != "" && (!ok || n.State != registry.Approved):
			skipped = append(skipped, name)
			continue
		case !ok:
			return nil, nil, errorf(http.StatusNotFound, api.CodeNotFound, "node %s: not found", name)
		case n.State != registry.Approved:
			return nil, nil, errorf(http.StatusConflict, api.CodeBadRequest, "node %s is %s: only approved nodes get bundles", name, n.State)
		}
		if !slices.ContainsFunc(nodes, func(o registry.Node) bool { return o.Name == name }) {
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 0 {
		return nil, nil, errorf(http.StatusConflict, api.CodeBadRequest, "no approved node to make a bundle for")
	}
	return nodes, skipped, nil
}

// describeRepoFile hashes a repository file for a bundle's index.
func (s *Server) describeRepoFile(p string) (bundle.File, error) {
	f, err := s.repo.Open(p)
	if err != nil {
		return bundle.File{}, fmt.Errorf("bundle file %s: %w", p, err)
	}
	defer f.Close()
	return bundle.Describe(p, f)
}

// bundleID names a bundle: when it was made, and 32 random bits.
func bundleID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
