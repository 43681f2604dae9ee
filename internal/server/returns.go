package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/satchelcm/satchel/internal/api"
	"github.com/satchelcm/satchel/internal/bundle"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/registry"
)

// postReturns ingests what a node wrote back on a stick, as if it had come over the
// network: its reports (idempotent by ID, as uploads are) and, if these returns are newer
// than any collected before, its facts. The returns must be signed by the node's key on
// record, and the node approved: returns written for another node, or by a revoked one,
// are refused whole.
func (s *Server) postReturns(w http.ResponseWriter, r *http.Request) error {
	var up api.ReturnsUpload
	if err := readJSON(w, r, api.MaxReturnsBytes, &up); err != nil {
		return err
	}
	ret, keyFingerprint, err := bundle.OpenReturns(up.Returns)
	if err != nil {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	ctx := r.Context()
	n, err := s.store.GetNode(ctx, ret.Node)
	if err != nil {
		return notFound(err, "node "+ret.Node)
	}
	if keyFingerprint != n.KeyFingerprint {
		return errorf(http.StatusForbidden, api.CodeUnauthorized, "returns of %s are signed by another key than the node's (%s): forged, or written by another machine; refused",
			ret.Node, pki.Shorten(n.KeyFingerprint))
	}
	if n.State != registry.Approved {
		return errorf(http.StatusForbidden, api.CodeRevoked, "node %s is %s: its returns are refused", ret.Node, n.State)
	}
	if ret.Seq <= n.ReturnsSeq {
		// Collected before, or older than returns collected since (a stick that took
		// longer to come back): what it holds was in those, or was pruned since; taking
		// its reports again would bring pruned ones back as the newest.
		s.log.Info("returns collected before", "node", ret.Node, "seq", ret.Seq, "newest", n.ReturnsSeq)
		writeJSON(w, http.StatusOK, api.ReturnsReceipt{Node: ret.Node, Seq: ret.Seq, Reports: len(ret.Reports)})
		return nil
	}
	if len(ret.Facts) > api.MaxFactsBytes {
		return errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "returns of %s: facts over %d bytes", ret.Node, api.MaxFactsBytes)
	}
	if len(up.Reports) != len(ret.Reports) {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "returns of %s list %d reports, %d were sent", ret.Node, len(ret.Reports), len(up.Reports))
	}
	if ret.Facts != nil && !jsonObject(ret.Facts) {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "returns of %s: the facts are not a JSON object", ret.Node)
	}
	// Every report is checked before any is stored: the returns are taken whole or not.
	for _, rep := range ret.Reports {
		body, ok := up.Reports[rep.ID]
		sum := sha256.Sum256(body)
		if len(body) > api.MaxReportBytes {
			return errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "returns of %s: report %s over %d bytes", ret.Node, rep.ID, api.MaxReportBytes)
		}
		if !ok || int64(len(body)) != rep.Size || hex.EncodeToString(sum[:]) != rep.SHA256 {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, "returns of %s: report %s is not the one the node signed (damaged on the stick?)", ret.Node, rep.ID)
		}
		if !jsonObject(body) {
			return errorf(http.StatusBadRequest, api.CodeBadRequest, "returns of %s: report %s is not a JSON object", ret.Node, rep.ID)
		}
	}
	receipt := api.ReturnsReceipt{Node: ret.Node, Seq: ret.Seq, Reports: len(ret.Reports)}
	now := s.cfg.Now()
	for _, rep := range ret.Reports { // in the order the node spooled them: oldest first
		body := up.Reports[rep.ID]
		var head struct {
			Outcome string `json:"outcome"`
			Release uint64 `json:"release"`
		}
		_ = json.Unmarshal(body, &head) // checked above to be an object; fields are optional
		stored, err := s.store.PutReport(ctx, registry.Report{Node: ret.Node, ID: rep.ID, Received: now,
			Outcome: truncate(head.Outcome, 64), Release: head.Release, Body: body})
		if err != nil {
			return err
		}
		if stored {
			receipt.Stored++
		}
		s.metrics.countReport(stored)
	}
	if receipt.Recorded, err = s.store.RecordReturns(ctx, ret.Node, ret.Seq, now, ret.Facts, ret.FactsSeq); err != nil {
		return err
	}
	if receipt.Stored > 0 {
		s.pruneReports(ctx, ret.Node)
	}
	s.log.Info("returns collected", "node", ret.Node, "seq", ret.Seq, "bundle", ret.Bundle, "reports", receipt.Reports,
		"stored", receipt.Stored, "recorded", receipt.Recorded)
	writeJSON(w, http.StatusOK, receipt)
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
