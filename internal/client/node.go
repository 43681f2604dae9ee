package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/pki"
)

// EnrollRequest is what a node tells the server about itself when it enrolls.
type EnrollRequest struct {
	Server        string // https://…
	CAFingerprint string // the server's CA, as the server printed it
	Name          string
	Token         string // a bootstrap token, or ""
	MachineID     string
	Facts         json.RawMessage
}

// EnrollResult is the server's answer: the node is approved (its certificate is saved
// in the identity) or waits for an operator.
type EnrollResult struct {
	Approved bool
	// Fingerprint is the short fingerprint the server has for the node's key.
	Fingerprint string
	// Trust is the release repository's root.json (with an approval).
	Trust []byte
}

// Enroll asks the server for a certificate. It records the server in the identity, and
// with an approval it keeps the certificate. Call it again to poll while the node is pending: the
// same key is presented each time.
func (id *Identity) Enroll(ctx context.Context, req EnrollRequest) (EnrollResult, error) {
	if len(req.CAFingerprint) != 64 {
		return EnrollResult{}, fmt.Errorf("CA fingerprint %q: want the 64 hex digits satchel server prints", req.CAFingerprint)
	}
	fp := strings.ToLower(req.CAFingerprint)
	c, err := newConn(req.Server, id.tlsConfig(fp), "")
	if err != nil {
		return EnrollResult{}, err
	}
	// One request on its own connection: closing it at once spares the server an idle
	// connection per enrolling or polling node (10,000 in a warehouse's day).
	defer c.http.CloseIdleConnections()
	csr, err := pki.NewCSR(id.key, req.Name)
	if err != nil {
		return EnrollResult{}, err
	}
	var resp api.EnrollResponse
	_, err = c.do(ctx, http.MethodPost, api.PathEnroll, api.EnrollRequest{
		Name: req.Name, CSR: csr, Recipient: id.Recipient(), MachineID: req.MachineID, Facts: req.Facts, Token: req.Token,
	}, &resp)
	if err != nil {
		return EnrollResult{}, fmt.Errorf("enroll %s with %s: %w", req.Name, req.Server, err)
	}
	if resp.Fingerprint != id.ShortFingerprint() {
		return EnrollResult{}, fmt.Errorf("enroll %s: the server has fingerprint %s for this node's key, which is %s", req.Name, resp.Fingerprint, id.ShortFingerprint())
	}
	res := EnrollResult{Approved: resp.State == api.StateApproved, Fingerprint: resp.Fingerprint, Trust: resp.Trust}
	// The server is recorded before the approval too, so that the agent asks again.
	if err := id.saveServer(ServerInfo{Server: req.Server, CAFingerprint: fp, Name: req.Name}); err != nil {
		return EnrollResult{}, err
	}
	if !res.Approved {
		return res, nil
	}
	if len(resp.Certificate) == 0 {
		return EnrollResult{}, fmt.Errorf("enroll %s: approved, but the server sent no certificate", req.Name)
	}
	if err := id.saveCertificate(resp.Certificate, resp.CA); err != nil {
		return EnrollResult{}, err
	}
	return res, nil
}

// ReadMachineID returns /etc/machine-id, or "" if the machine has none.
func ReadMachineID() string {
	data, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// Node is an enrolled node's connection to its server.
type Node struct {
	id   *Identity
	conn *conn
}

// NewNode returns the connection of an enrolled identity.
func NewNode(id *Identity) (*Node, error) {
	if !id.Enrolled() {
		return nil, ErrNoIdentity
	}
	info := id.Server()
	c, err := newConn(info.Server, id.tlsConfig(info.CAFingerprint), "")
	if err != nil {
		return nil, err
	}
	return &Node{id: id, conn: c}, nil
}

// RepoURL is the URL of the release repository the server serves to this node.
func (n *Node) RepoURL() string { return n.conn.base + api.PathRepo }

// HTTPClient sends requests as this node (mutual TLS): for the release repository and
// its content store.
func (n *Node) HTTPClient() *http.Client { return n.conn.http }

// PutFacts sends the node's facts (a JSON object).
func (n *Node) PutFacts(ctx context.Context, facts []byte, seq uint64) error {
	p := api.PathFacts
	if seq > 0 {
		p += "?seq=" + strconv.FormatUint(seq, 10)
	}
	_, err := n.conn.send(ctx, http.MethodPut, p, facts, nil)
	if err != nil {
		return fmt.Errorf("send facts: %w", err)
	}
	return nil
}

// PutReport uploads a report; stored is false if the server had it already.
func (n *Node) PutReport(ctx context.Context, r api.ReportUpload) (stored bool, err error) {
	var receipt api.ReportReceipt
	if _, err := n.conn.send(ctx, http.MethodPost, r.Path(), r.Body, &receipt); err != nil {
		return false, fmt.Errorf("upload report %s: %w", r.ID, err)
	}
	return receipt.Stored, nil
}

// Renew asks for a new certificate for the node's key and keeps it.
func (n *Node) Renew(ctx context.Context) error {
	csr, err := pki.NewCSR(n.id.key, n.id.Server().Name)
	if err != nil {
		return err
	}
	var resp api.EnrollResponse
	if _, err := n.conn.do(ctx, http.MethodPost, api.PathRenew, api.RenewRequest{CSR: csr}, &resp); err != nil {
		return fmt.Errorf("renew the node's certificate: %w", err)
	}
	if len(resp.Certificate) == 0 {
		return errors.New("renew the node's certificate: the server sent none")
	}
	return n.id.saveCertificate(resp.Certificate, resp.CA)
}
