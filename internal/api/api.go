// Package api is the wire contract between satchel server and its clients: the agents
// (enrollment, node endpoints) and the operator's commands (admin endpoints). It holds the
// paths, the JSON bodies and the error codes, and nothing else, so that the server and
// every client are compiled against one definition.
//
// # Three kinds of caller
//
// The server listens on one HTTPS port, its certificate issued by its own CA, which
// clients pin by fingerprint:
//
//   - Enrollment (PathEnroll) needs no client certificate: a machine that has none yet
//     sends a certificate request, proving it holds the key, and a bootstrap token if it
//     has one.
//   - Node endpoints (under PathNode) need a client certificate issued by the server's CA,
//     for a node that is approved now, with the key on record: revocation is a look-up on
//     every request, not a list that can expire.
//   - Admin endpoints (under PathAdmin) need the admin credential as a bearer token.
//
// Errors are an Error body with a stable Code, so that clients branch on codes, not on
// messages, and show the message to the user.
package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Paths of the server's endpoints.
const (
	// PathEnroll: POST EnrollRequest → EnrollResponse. 200 with a certificate when the node
	// is approved (by a token or an operator), 202 while it waits for an operator.
	PathEnroll = "/v1/enroll"

	// PathNode prefixes the node endpoints (mutual TLS).
	PathNode = "/v1/node/"
	// PathRepo: GET, the release repository exactly as a static mirror serves it
	// (metadata/, targets/, store/), with Range and conditional requests.
	PathRepo = "/v1/node/repo/"
	// PathFacts: PUT the node's facts (a JSON object) → 204. With "?seq=N", facts the node
	// numbered: not stored if facts numbered as high are (a stick's, collected first).
	PathFacts = "/v1/node/facts"
	// PathReports: POST a ReportUpload (ReportUpload.Path, the report as the body) →
	// ReportReceipt. Idempotent by (node, ID).
	PathReports = "/v1/node/reports"
	// PathRenew: POST RenewRequest → EnrollResponse with a new certificate for the same key.
	PathRenew = "/v1/node/renew"

	// PathAdmin prefixes the admin endpoints (bearer admin credential).
	PathAdmin = "/v1/admin/"
	// PathAdminNodes: GET → []Node. PathAdminNodes + "/NAME": GET → Node, DELETE (forget).
	// + "/NAME/approve", "/NAME/revoke": POST → Node. + "/NAME/reports?limit=N": GET →
	// []Report, newest first.
	PathAdminNodes = "/v1/admin/nodes"
	// PathAdminReleases: GET → []ReleaseInfo, newest first. POST ReleaseRequest →
	// ReleaseResult: preview a config against
	// every enrolled node and, unless only previewing, publish it as the next release. 409
	// with the result when nodes fail to evaluate and the request does not force it.
	PathAdminReleases = "/v1/admin/releases"
	// PathAdminBundles: POST BundleRequest → BundlePlan: a USB bundle for the nodes asked
	// for, as its signed index; the static deltas it needs are built first. The files it
	// lists are read from PathAdminRepo.
	PathAdminBundles = "/v1/admin/bundles"
	// PathAdminRepo: GET, a file of the release repository (metadata/, targets/, store/,
	// secrets/), with Range: what a bundle export copies onto a stick.
	PathAdminRepo = "/v1/admin/repo/"
	// PathAdminReturns: POST ReturnsUpload → ReturnsReceipt: what a node wrote back on a
	// stick, ingested as if it had come over the network. Idempotent.
	PathAdminReturns = "/v1/admin/returns"
	// PathAdminFleet: GET → Fleet: every node's status, as the dashboard shows it.
	PathAdminFleet = "/v1/admin/fleet"
	// PathAdminTokens: GET → []Token, POST TokenRequest → Token (with its ID, shown once).
	// + "/HASH/revoke": POST → 204.
	PathAdminTokens = "/v1/admin/tokens"
)

// Limits on request bodies; a larger body is refused with 413 and CodeTooLarge.
const (
	MaxEnrollBytes = 1 << 20
	MaxFactsBytes  = 1 << 20
	MaxReportBytes = 16 << 20
	MaxAdminBytes  = 64 << 10
	// MaxReleaseBytes bounds a release request (its config, a gzipped tar, in base64).
	MaxReleaseBytes = 64 << 20
	// MaxReturnsBytes bounds one node's returns (its spool, 64 MiB by default, in base64).
	MaxReturnsBytes = 96 << 20
)

// Error codes.
const (
	CodeBadRequest   = "bad_request"
	CodeTooLarge     = "too_large"
	CodeUnauthorized = "unauthorized" // no or a wrong credential or certificate
	CodeRevoked      = "revoked"      // the node's certificate is no longer accepted
	CodeNotFound     = "not_found"
	CodeTokenInvalid = "token_invalid"
	CodeNameTaken    = "name_taken" // the name is enrolled with another key
	CodeClone        = "clone"      // the machine ID or key is another node's
	CodeInternal     = "internal"
	// CodeReleaseFails: a release that fails to evaluate for some nodes, not forced; the
	// body is a ReleaseResult with its preview.
	CodeReleaseFails = "release_fails"
)

// Error is the body of every error response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
	// Body is the whole response, for errors that carry more (CodeReleaseFails).
	Body []byte `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// Node states, as the registry keeps them.
const (
	StatePending  = "pending"
	StateApproved = "approved"
	StateRevoked  = "revoked"
)

// EnrollRequest asks for a certificate for a node.
type EnrollRequest struct {
	Name string `json:"name"`
	// CSR is a PKCS#10 certificate request (DER) signed by the node's TLS key.
	CSR []byte `json:"csr"`
	// Recipient is the node's age X25519 recipient, to which its secrets are encrypted.
	Recipient string `json:"recipient"`
	// MachineID is /etc/machine-id: two machines with one ID are clones of an image.
	MachineID string          `json:"machine_id,omitempty"`
	Facts     json.RawMessage `json:"facts,omitempty"`
	// Token is a bootstrap token; without one the node waits for an operator.
	Token string `json:"token,omitempty"`
}

// EnrollResponse answers an enrollment or a renewal.
type EnrollResponse struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Fingerprint is the short fingerprint of the node's key, which the operator compares
	// with the one the node prints before approving it.
	Fingerprint string `json:"fingerprint"`
	// Certificate is the node's certificate (DER), once it is approved; CA is the
	// certificate of the CA that issued it (DER): a node signs what it relays to its
	// neighbours with both (package bundle).
	Certificate []byte `json:"certificate,omitempty"`
	CA          []byte `json:"ca,omitempty"`
	// Trust is the release repository's root.json, for a node that has no trust yet.
	Trust json.RawMessage `json:"trust,omitempty"`
}

// RenewRequest asks for a new certificate before the current one expires.
type RenewRequest struct {
	// CSR is signed by the same key the current certificate is for.
	CSR []byte `json:"csr"`
}

// ReportUpload is one run report from a node's spool. It travels as the request body
// (the report's JSON as the spool holds it, gzipped), its other fields in the query
// (Path): the server checks the report in one scan instead of decoding an envelope around
// it, which is most of the cost of taking a report of a thousand resources.
type ReportUpload struct {
	// ID is the report's spool entry name, unique per node: a retry carries the same ID.
	ID      string
	Outcome string
	Release uint64
	Body    json.RawMessage
}

// Path is the path and query to POST the upload's Body to.
func (u ReportUpload) Path() string {
	q := url.Values{"id": {u.ID}, "outcome": {u.Outcome}, "release": {strconv.FormatUint(u.Release, 10)}}
	return PathReports + "?" + q.Encode()
}

// MaxReportIDLen is the longest report ID.
const MaxReportIDLen = 128

// ValidReportID reports whether id may name a report: 1 to MaxReportIDLen letters, digits,
// dots, dashes and underscores, starting with a letter or a digit (a spool entry name is
// one). Such a name is also a safe file name on any file system a USB stick has, so that
// returns on a stick are named by it.
func ValidReportID(id string) bool {
	if id == "" || len(id) > MaxReportIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '-' || c == '_'):
		default:
			return false
		}
	}
	return true
}

// ParseReportQuery reads an upload's fields but Body from the query Path made.
func ParseReportQuery(q url.Values) (ReportUpload, error) {
	u := ReportUpload{ID: q.Get("id"), Outcome: q.Get("outcome")}
	if v := q.Get("release"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return ReportUpload{}, fmt.Errorf("release %q: want a release number", v)
		}
		u.Release = n
	}
	return u, nil
}

// ReportReceipt says whether the upload stored the report (false: it had been stored
// before, by an earlier attempt whose answer was lost).
type ReportReceipt struct {
	Stored bool `json:"stored"`
}

// Node is a node as an operator sees it.
type Node struct {
	Name           string    `json:"name"`
	State          string    `json:"state"`
	Fingerprint    string    `json:"fingerprint"` // short, to compare
	KeyFingerprint string    `json:"key_fingerprint"`
	MachineID      string    `json:"machine_id,omitempty"`
	Enrolled       time.Time `json:"enrolled"`
	LastSeen       time.Time `json:"last_seen"`
	// LastReturns is when returns from the node were last collected from a stick.
	LastReturns time.Time       `json:"last_returns,omitzero"`
	TokenLabel  string          `json:"token_label,omitempty"`
	CertSerial  string          `json:"cert_serial,omitempty"`
	Recipient   string          `json:"recipient,omitempty"`
	Facts       json.RawMessage `json:"facts,omitempty"`
}

// TokenRequest creates a bootstrap token.
type TokenRequest struct {
	Label string `json:"label"`
	Uses  int    `json:"uses"`
	// Expires is when the token stops working; the zero time: never.
	Expires time.Time `json:"expires,omitzero"`
}

// Token is a bootstrap token. ID is set only in the answer that created it.
type Token struct {
	ID       string    `json:"id,omitempty"`
	Hash     string    `json:"hash"`
	Label    string    `json:"label"`
	UsesLeft int       `json:"uses_left"`
	Expires  time.Time `json:"expires,omitzero"`
	Created  time.Time `json:"created"`
	Revoked  bool      `json:"revoked"`
}

// Report is a stored run report.
type Report struct {
	ID       string          `json:"id"`
	Received time.Time       `json:"received"`
	Outcome  string          `json:"outcome"`
	Release  uint64          `json:"release"`
	Body     json.RawMessage `json:"body"`
}

// ReleaseRequest sends a config repository to the server to preview and publish.
type ReleaseRequest struct {
	// Config is the config repository as a gzipped tar of directories and regular files.
	Config       []byte        `json:"config"`
	Notes        string        `json:"notes,omitempty"`
	HealthChecks []HealthCheck `json:"health_checks,omitempty"`
	// Preview only: nothing is published.
	Preview bool `json:"preview,omitempty"`
	// Force publishes even if the release fails to evaluate for some nodes.
	Force bool `json:"force,omitempty"`
}

// HealthCheck is a command the agent runs after applying a release.
type HealthCheck struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Timeout string   `json:"timeout"` // a Go duration: "60s"
}

// ReleaseResult is what a release request did.
type ReleaseResult struct {
	// Version is the release published (0: none, a preview or a refusal).
	Version  uint64   `json:"version,omitempty"`
	Config   string   `json:"config,omitempty"` // its config tree's ID
	Checked  []string `json:"checked,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Preview  Preview  `json:"preview"`
	// Code and Message are set when the release was refused (CodeReleaseFails).
	Code    string `json:"code,omitempty"`
	Message string `json:"error,omitempty"`
}

// Preview is what a release would change on each enrolled node, compared with the
// release the fleet has now (From; 0: none).
type Preview struct {
	From  uint64        `json:"from"`
	Nodes []PreviewNode `json:"nodes"`
}

// PreviewNode is one node's preview: its changes, or why the release fails for it.
type PreviewNode struct {
	Node    string          `json:"node"`
	Changes []PreviewChange `json:"changes,omitempty"`
	Error   string          `json:"error,omitempty"`
	NoFacts bool            `json:"no_facts,omitempty"`
}

// PreviewChange is one resource added, removed or changed (with the fields that differ).
type PreviewChange struct {
	Address string   `json:"address"`
	Kind    string   `json:"kind"`
	Fields  []string `json:"fields,omitempty"`
}

// BundleRequest asks for a USB bundle.
type BundleRequest struct {
	Nodes []string `json:"nodes,omitempty"` // approved nodes by name
	All   bool     `json:"all,omitempty"`   // every approved node
	// Column and Value: the approved nodes whose row of the release's inventory has Value
	// in Column (a site's schools: "Department" = "La Rioja").
	Column string `json:"column,omitempty"`
	Value  string `json:"value,omitempty"`
	// Full: everything the release's trees need, as for nodes never seen, instead of
	// what the nodes lack according to their last reports.
	Full bool `json:"full,omitempty"`
}

// BundlePlan is a bundle to write: its signed index (package bundle), and what each node
// gets.
type BundlePlan struct {
	Index []byte       `json:"index"`
	Nodes []BundleNode `json:"nodes"`
	// Skipped are the nodes an inventory selection named that are not approved (not
	// enrolled, pending or revoked): not on the stick.
	Skipped []string `json:"skipped,omitempty"`
}

// BundleNode is what a bundle carries for one node.
type BundleNode struct {
	Name  string       `json:"name"`
	Trees []BundleTree `json:"trees"`
}

// BundleTree is one tree a node needs: Root, reached by a delta From a tree it holds
// ("": from nothing), or nothing if it holds it already (Held).
type BundleTree struct {
	Address string `json:"address"` // "config", or the tree resource's
	Root    string `json:"root"`
	From    string `json:"from,omitempty"`
	Held    bool   `json:"held,omitempty"`
}

// ReturnsUpload is one node's returns from a stick: the signed returns file and the
// reports it lists, by ID, byte for byte.
type ReturnsUpload struct {
	Returns []byte            `json:"returns"`
	Reports map[string][]byte `json:"reports"`
}

// ReturnsReceipt says what collecting returns did.
type ReturnsReceipt struct {
	Node string `json:"node"`
	Seq  uint64 `json:"seq"`
	// Recorded: the returns were newer than any collected before (their facts taken);
	// false: collected before, nothing recorded but reports not seen yet.
	Recorded bool `json:"recorded"`
	Reports  int  `json:"reports"` // listed
	Stored   int  `json:"stored"`  // new to the server
}

// Fleet is the whole fleet at a glance, as the dashboard's fleet page shows it.
type Fleet struct {
	Latest     uint64         `json:"latest"`      // the newest release (0: none)
	SiteColumn string         `json:"site_column"` // the inventory column of Site
	Counts     map[string]int `json:"counts"`      // nodes by status
	Nodes      []FleetNode    `json:"nodes"`       // by name
}

// FleetNode is one node's status. Status is one of "in sync", "behind", "failing",
// "rolled back", "pending approval", "silent", "revoked"; Via "network", "USB stick" or
// "never".
type FleetNode struct {
	Name        string    `json:"name"`
	Site        string    `json:"site,omitempty"`
	Status      string    `json:"status"`
	Release     uint64    `json:"release"`          // in place at its last run (0: none reported)
	Result      string    `json:"result,omitempty"` // its last run's outcome
	LastContact time.Time `json:"last_contact,omitzero"`
	Via         string    `json:"via"`
}

// ReleaseInfo is a published release: its manifest's notes, how many nodes run it (their
// last run had it in place), and the preview the server made of it before publishing
// (nil for a release published elsewhere, with satchel release --repo).
type ReleaseInfo struct {
	Version uint64    `json:"version"`
	Created time.Time `json:"created"`
	Notes   string    `json:"notes,omitempty"`
	Config  string    `json:"config"`
	Applied int       `json:"applied"`
	Preview *Preview  `json:"preview,omitempty"`
}
