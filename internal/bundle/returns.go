package bundle

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"time"

	"github.com/satchelcm/satchel/internal/api"
)

// ReturnsFormat names the returns format and its version.
const ReturnsFormat = "satchel.returns/v1"

// ReturnsFile is the signed returns' name in returns/NODE/; the reports it lists are in
// returns/NODE/reports/.
const ReturnsFile = "returns.json"

// ReturnsReportsDir is the directory of a node's returned reports, in returns/NODE/.
const ReturnsReportsDir = "reports"

// MaxReturnsBytes bounds a signed returns file.
const MaxReturnsBytes = 4 << 20

// Returns is what a node writes back on a stick: its facts, and the reports in its spool,
// each a file whose hash is signed here. Seq grows with every returns the node writes, so
// that the office never takes facts older than those it has (a stick collected twice, or
// an old stick after a newer one).
type Returns struct {
	Format  string          `json:"format"`
	Node    string          `json:"node"`
	Seq     uint64          `json:"seq"`
	Written time.Time       `json:"written"`
	Bundle  string          `json:"bundle"`  // the bundle the node imported (its ID)
	Release uint64          `json:"release"` // the node's release after the import
	Facts   json.RawMessage `json:"facts,omitempty"`
	// FactsSeq numbers the facts with those the node sends over the network, so that the
	// office keeps the newest whatever order they reach it in.
	FactsSeq uint64           `json:"facts_seq,omitempty"`
	Reports  []ReturnedReport `json:"reports"`
}

// ReturnedReport is a report file in returns/NODE/reports/, named by its spool entry.
type ReturnedReport struct {
	ID     string `json:"id"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ReportPath is where a returned report is, relative to the bundle's directory.
func ReportPath(node, id string) string {
	return path.Join(ReturnsDir, node, ReturnsReportsDir, id)
}

// Check reports what is wrong with returns as the office reads them.
func (r *Returns) Check() error {
	if r.Format != ReturnsFormat {
		return fmt.Errorf("returns: format %q, want %q", r.Format, ReturnsFormat)
	}
	if !api.ValidReportID(r.Node) { // node names are such names too: safe file names on the stick
		return fmt.Errorf("returns: node name %q", r.Node)
	}
	if r.Seq == 0 || r.Seq > math.MaxInt64 || r.FactsSeq > math.MaxInt64 {
		return fmt.Errorf("returns of %s: sequence number %d, facts %d", r.Node, r.Seq, r.FactsSeq)
	}
	seen := map[string]bool{}
	for _, rep := range r.Reports {
		if !api.ValidReportID(rep.ID) || seen[rep.ID] || rep.Size < 0 || !isHash(rep.SHA256) {
			return fmt.Errorf("returns of %s: report %q", r.Node, rep.ID)
		}
		seen[rep.ID] = true
	}
	return nil
}

// SignReturns signs r with the node's key and returns the file to write as ReturnsFile.
func SignReturns(r *Returns, key crypto.Signer) ([]byte, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	env, err := sign(r, key)
	if err != nil {
		return nil, err
	}
	if env.PublicKey, err = x509.MarshalPKIXPublicKey(key.Public()); err != nil {
		return nil, err
	}
	return json.MarshalIndent(env, "", "  ")
}

// OpenReturns checks that signed returns are signed by the key they carry, and returns
// them with that key's fingerprint (the SHA-256 of its PKIX encoding, as the registry
// keeps it): the caller must check that it is the node's key on record.
func OpenReturns(data []byte) (*Returns, string, error) {
	env, err := decodeEnvelope(data, ReturnsFile)
	if err != nil {
		return nil, "", err
	}
	pub, err := x509.ParsePKIXPublicKey(env.PublicKey)
	if err != nil {
		return nil, "", fmt.Errorf("%s: the public key: %v: %w", ReturnsFile, err, ErrDamaged)
	}
	if err := verify(pub, env.Signed, env.Signature); err != nil {
		return nil, "", fmt.Errorf("%s: %w", ReturnsFile, err)
	}
	var r Returns
	if err := json.Unmarshal(env.Signed, &r); err != nil {
		return nil, "", fmt.Errorf("%s: %v: %w", ReturnsFile, err, ErrDamaged)
	}
	if err := r.Check(); err != nil {
		return nil, "", err
	}
	return &r, fingerprint(env.PublicKey), nil
}

// WriteReturns writes a node's returns onto the stick in dir: each report into
// returns/NODE/reports/ (by its ID, as signed returns list them), then the signed returns
// file, last, so that a stick pulled out meanwhile carries the previous returns whole; a
// report file the new returns do not list is removed. Everything is done through an
// os.Root on dir without following links: a link or a FIFO that a stick brings in
// returns/ is refused, never written through.
func WriteReturns(dir, node string, signed []byte, reports map[string][]byte) error {
	if !api.ValidReportID(node) { // node names are such names too: safe file names on the stick
		return fmt.Errorf("returns: node name %q", node)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	reportsDir := path.Join(ReturnsDir, node, ReturnsReportsDir)
	for _, d := range []string{ReturnsDir, path.Join(ReturnsDir, node), reportsDir} {
		info, err := root.Lstat(d)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := root.Mkdir(d, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case !info.IsDir():
			return fmt.Errorf("%s on the stick is not a directory (%s): %w", d, info.Mode().Type(), ErrDamaged)
		}
	}
	for id, data := range reports {
		if !api.ValidReportID(id) {
			return fmt.Errorf("returns of %s: report %q", node, id)
		}
		if err := writeFileIn(root, path.Join(reportsDir, id), data); err != nil {
			return err
		}
	}
	if err := writeFileIn(root, path.Join(ReturnsDir, node, ReturnsFile), signed); err != nil {
		return err
	}
	old, err := fs.ReadDir(root.FS(), reportsDir)
	if err != nil {
		return err
	}
	for _, e := range old {
		if _, ok := reports[e.Name()]; !ok {
			_ = root.Remove(path.Join(reportsDir, e.Name())) // the link itself, if it is one
		}
	}
	return nil
}

// ReadReturns reads what node wrote back in the bundle in dir: its signed returns file and
// the reports it lists, byte for byte (the office checks them). Files are opened without
// following links or waiting on FIFOs, and their sizes are bounded: a report by maxReport,
// all of them by maxTotal.
func ReadReturns(dir, node string, maxReport, maxTotal int64) (signed []byte, reports map[string][]byte, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	if signed, err = readStickFile(root, path.Join(ReturnsDir, node, ReturnsFile), MaxReturnsBytes); err != nil {
		return nil, nil, err
	}
	ret, _, err := OpenReturns(signed)
	if err != nil {
		return nil, nil, err
	}
	if ret.Node != node {
		return nil, nil, fmt.Errorf("the returns in %s/%s are %s's: refused", ReturnsDir, node, ret.Node)
	}
	reports = map[string][]byte{}
	total := int64(len(signed))
	for _, r := range ret.Reports {
		if r.Size > maxReport {
			return nil, nil, fmt.Errorf("report %s: %d bytes, more than a report may be (%d)", r.ID, r.Size, maxReport)
		}
		if total += r.Size; total > maxTotal {
			return nil, nil, fmt.Errorf("the returns of %s are over %d bytes in all", node, maxTotal)
		}
		if reports[r.ID], err = readStickFile(root, ReportPath(node, r.ID), r.Size); err != nil {
			return nil, nil, err
		}
	}
	return signed, reports, nil
}

// readStickFile reads a regular file of the stick, of at most limit bytes, opened without
// following a link or waiting on a FIFO.
func readStickFile(root *os.Root, name string, limit int64) ([]byte, error) {
	f, _, err := openRegular(root, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: more than %d bytes", name, limit)
	}
	return data, nil
}
