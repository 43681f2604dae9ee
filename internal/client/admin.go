package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/pki"
)

// Admin is an operator's connection to a server, with the admin credential.
type Admin struct {
	conn          *conn
	caFingerprint string
}

// NewAdmin returns an admin connection to server, whose CA has fingerprint
// caFingerprint, authenticated by token.
func NewAdmin(server, caFingerprint, token string) (*Admin, error) {
	c, err := newConn(server, pki.PinnedServerConfig(strings.ToLower(caFingerprint)), token)
	if err != nil {
		return nil, err
	}
	return &Admin{conn: c, caFingerprint: strings.ToLower(caFingerprint)}, nil
}

// CAFingerprint is the fingerprint of the server's CA, as pinned.
func (a *Admin) CAFingerprint() string { return a.caFingerprint }

func nodePath(name string, rest ...string) string {
	return api.PathAdminNodes + "/" + url.PathEscape(name) + strings.Join(rest, "")
}

// Nodes lists every node, without facts.
func (a *Admin) Nodes(ctx context.Context) ([]api.Node, error) {
	var out []api.Node
	_, err := a.conn.do(ctx, http.MethodGet, api.PathAdminNodes, nil, &out)
	return out, err
}

// Node returns one node, with its facts.
func (a *Admin) Node(ctx context.Context, name string) (api.Node, error) {
	var out api.Node
	_, err := a.conn.do(ctx, http.MethodGet, nodePath(name), nil, &out)
	return out, err
}

// Approve approves a pending or revoked node.
func (a *Admin) Approve(ctx context.Context, name string) (api.Node, error) {
	var out api.Node
	_, err := a.conn.do(ctx, http.MethodPost, nodePath(name, "/approve"), nil, &out)
	return out, err
}

// Revoke revokes a node: its next request is refused.
func (a *Admin) Revoke(ctx context.Context, name string) (api.Node, error) {
	var out api.Node
	_, err := a.conn.do(ctx, http.MethodPost, nodePath(name, "/revoke"), nil, &out)
	return out, err
}

// Forget removes a node and its reports, so that its name can enroll with a new key.
func (a *Admin) Forget(ctx context.Context, name string) error {
	_, err := a.conn.do(ctx, http.MethodDelete, nodePath(name), nil, nil)
	return err
}

// Reports returns a node's newest reports first, at most limit (0: the server's default).
func (a *Admin) Reports(ctx context.Context, name string, limit int) ([]api.Report, error) {
	var out []api.Report
	path := nodePath(name, "/reports")
	if limit > 0 {
		path += fmt.Sprintf("?limit=%d", limit)
	}
	_, err := a.conn.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// CreateToken makes a bootstrap token; the answer's ID is shown this once.
func (a *Admin) CreateToken(ctx context.Context, req api.TokenRequest) (api.Token, error) {
	var out api.Token
	_, err := a.conn.do(ctx, http.MethodPost, api.PathAdminTokens, req, &out)
	return out, err
}

// Tokens lists every token (without IDs).
func (a *Admin) Tokens(ctx context.Context) ([]api.Token, error) {
	var out []api.Token
	_, err := a.conn.do(ctx, http.MethodGet, api.PathAdminTokens, nil, &out)
	return out, err
}

// RevokeToken revokes the token with that hash.
func (a *Admin) RevokeToken(ctx context.Context, hash string) error {
	_, err := a.conn.do(ctx, http.MethodPost, api.PathAdminTokens+"/"+url.PathEscape(hash)+"/revoke", nil, nil)
	return err
}

// Release sends a config (a gzipped tar, dirtar.Pack) to be previewed and, unless
// req.Preview, published. A release refused because nodes fail to evaluate is not an
// error: refused is true and the result holds the preview.
func (a *Admin) Release(ctx context.Context, req api.ReleaseRequest) (res api.ReleaseResult, refused bool, err error) {
	status, err := a.conn.do(ctx, http.MethodPost, api.PathAdminReleases, req, &res)
	var e *api.Error
	if status == http.StatusConflict && errors.As(err, &e) && e.Code == api.CodeReleaseFails {
		if jerr := json.Unmarshal(e.Body, &res); jerr != nil {
			return res, false, fmt.Errorf("the server's answer: %w", jerr)
		}
		return res, true, nil
	}
	return res, false, err
}

// Bundle asks the server for a USB bundle's plan (its signed index); the files it lists
// are read with RepoFile.
func (a *Admin) Bundle(ctx context.Context, req api.BundleRequest) (api.BundlePlan, error) {
	var plan api.BundlePlan
	_, err := a.conn.do(ctx, http.MethodPost, api.PathAdminBundles, req, &plan)
	return plan, err
}

// RepoFile reads length bytes of the repository's file p (slash-separated) from offset.
func (a *Admin) RepoFile(ctx context.Context, p string, offset, length int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.conn.base+api.PathAdminRepo+p, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.conn.bearer)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	if length == 0 {
		req.Header.Del("Range")
	}
	resp, err := a.conn.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", p, err)
	}
	want := http.StatusPartialContent
	if length == 0 {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e api.Error
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = resp.Status
		}
		return nil, fmt.Errorf("GET %s: %s", p, e.Message)
	}
	return resp.Body, nil
}

// Returns hands a node's returns from a stick to the server.
func (a *Admin) Returns(ctx context.Context, up api.ReturnsUpload) (api.ReturnsReceipt, error) {
	var receipt api.ReturnsReceipt
	_, err := a.conn.do(ctx, http.MethodPost, api.PathAdminReturns, up, &receipt)
	return receipt, err
}

// Fleet returns every node's status, as the dashboard's fleet page shows it.
func (a *Admin) Fleet(ctx context.Context) (api.Fleet, error) {
	var f api.Fleet
	_, err := a.conn.do(ctx, http.MethodGet, api.PathAdminFleet, nil, &f)
	return f, err
}
