package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/satchelcm/satchel/internal/bundle"
	"github.com/satchelcm/satchel/internal/pki"
	"github.com/satchelcm/satchel/internal/release"
	"github.com/satchelcm/satchel/internal/store"
)

// stagingDirName is where a bundle is copied from a stick and checked before use.
const stagingDirName = "bundle"

// ImportOptions are the options of ImportBundle.
type ImportOptions struct {
	// Progress is told the bytes copied from the stick so far and the total; may be nil.
	Progress func(done, total int64)
}

// ImportResult says what an import did.
type ImportResult struct {
	Bundle  string // the bundle's ID
	Release uint64 // the release it carries
	ForNode bool   // made for this node (else only its content was taken)
	// Report is the cycle run from the bundle (nil: none ran: the release was applied
	// already, or the bundle was not made for this node).
	Report *CycleReport
	// Returns is where the node's reports were written on the stick ("" if they could
	// not be: the error says why).
	Returns string
}

// ErrOlderBundle: the stick carries a release older than one the node has accepted.
var ErrOlderBundle = errors.New("an older release than this node has")

// ErrNotEnrolled: a bundle is checked against the CA pinned at enrollment, so a node never
// enrolled cannot take one.
var ErrNotEnrolled = errors.New("this node is not enrolled with a server, so it cannot tell who made a bundle: enroll it (satchel enroll), or use the stick as a repository (satchel agent --repo DIR)")

// ImportBundle brings the node up to date from the bundle in dir (a USB stick): it checks
// the bundle's signature against the CA the node enrolled with, copies what the index
// lists into the state directory, checking every byte (after which the stick may be
// pulled out), then runs a cycle from that copy as from any repository (the same
// signature, version and hash checks; the node's server is not contacted), and writes the
// node's reports and facts back onto the stick, signed, for the office to collect. A
// bundle made for other nodes of the fleet gives this one its content trees and nothing
// else. A cut copy is resumed by the next import of the same bundle; a damaged, foreign or
// older bundle is refused with nothing applied.
func (a *Agent) ImportBundle(ctx context.Context, dir string, opts ImportOptions) (*ImportResult, error) {
	if a.identity == nil || a.identity.Server().CAFingerprint == "" {
		return nil, ErrNotEnrolled
	}
	info := a.identity.Server()
	ix, signer, err := bundle.ReadIndex(dir, info.CAFingerprint)
	if err != nil {
		return nil, plainBundleError(err)
	}
	res := &ImportResult{Bundle: ix.ID, Release: ix.Release, ForNode: ix.For(info.Name)}
	from := "the office (" + signer.Subject.CommonName + ")"
	if name, err := pki.NodeName(signer); err == nil {
		from = "node " + name + ", relayed"
	}
	a.logf("stick %s: bundle %s from %s, release %d, made for %s (%s)", dir, ix.ID, from, ix.Release,
		strings.Join(ix.Nodes, ", "), formatSize(ix.Size()))
	highest, err := release.Highest(filepath.Join(a.state, trustDirName))
	if err != nil {
		return nil, err
	}
	if ix.Release < highest {
		return res, fmt.Errorf("the stick carries release %d, and this node already has release %d: %w; nothing was applied", ix.Release, highest, ErrOlderBundle)
	}
	st, err := ReadState(a.state)
	if err != nil {
		return nil, err
	}
	applied := st.Good != nil && st.Good.Version >= ix.Release
	var unused error // the stick's release could not be used (its reports are written anyway)
	if !applied {
		if err := a.stage(ctx, dir, ix, opts); err != nil {
			return res, err
		}
		if res.ForNode {
			rep, err := a.cycleFrom(ctx, filepath.Join(a.state, stagingDirName))
			res.Report = rep
			if err != nil {
				return res, err
			}
			if ctx.Err() != nil {
				return res, fmt.Errorf("stopped while applying release %d: %w (the copy from the stick is kept: the next import of this stick goes on from it)", ix.Release, ctx.Err())
			}
			unused = unusedRelease(rep, ix.Release)
		} else {
			a.takeContent(ctx, ix)
			a.logf("this bundle was made for %s, not for %s: its content was kept, nothing was applied", strings.Join(ix.Nodes, ", "), info.Name)
		}
	} else {
		a.logf("release %d is applied already: nothing to copy", ix.Release)
	}
	_ = os.RemoveAll(filepath.Join(a.state, stagingDirName))
	// Imported: the agent does not take the same stick again, even if the reports cannot
	// be written onto it (a full or read-only stick).
	if st, err := ReadState(a.state); err == nil {
		st.Bundle = ix.ID
		if err := writeState(a.state, st); err != nil {
			a.logf("warning: %v", err)
		}
	}
	// Only the office knows which reports it has: a relaying neighbour's word is not
	// taken for it (it would make this node forget reports the office never got).
	if _, err := pki.NodeName(signer); err != nil {
		a.forgetDelivered(ix.Received[info.Name])
	}
	if res.Returns, err = a.writeReturns(dir, ix, info.Name); err != nil {
		return res, fmt.Errorf("write this node's reports onto the stick: %w (the release was taken; the reports stay on this node for the next stick)", err)
	}
	a.logf("reports written to the stick (%s): it is safe to remove the stick now", res.Returns)
	return res, unused
}

// unusedRelease says why a cycle run from a stick did not apply or try its release, if it
// did not: its metadata could not be used (expired, a clock far off), or the release had
// failed before and is not tried again.
func unusedRelease(rep *CycleReport, release uint64) error {
	if rep == nil || rep.Release >= release || rep.Attempted >= release {
		return nil
	}
	why := rep.Error
	if len(rep.RefreshErrors) > 0 {
		why = rep.RefreshErrors[0]
	}
	if why == "" {
		why = "it failed at this node before, and is not tried again"
	}
	return fmt.Errorf("release %d on the stick was not applied: %s", release, why)
}

// plainBundleError words a refused bundle for the technician at the site.
func plainBundleError(err error) error {
	switch {
	case errors.Is(err, bundle.ErrForeign):
		return fmt.Errorf("this stick was made for another organisation's servers, not this one's: nothing was applied (%w)", err)
	case errors.Is(err, bundle.ErrDamaged):
		return fmt.Errorf("the stick is damaged or was modified: nothing was applied; ask the office for a new one (%w)", err)
	}
	return err
}

// stage copies the bundle into the staging directory, checking it (bundle.Stage).
func (a *Agent) stage(ctx context.Context, dir string, ix *bundle.Index, opts ImportOptions) error {
	staging := filepath.Join(a.state, stagingDirName)
	a.logf("copying and checking the stick (%s); do not remove it", formatSize(ix.Size()))
	last := time.Time{}
	err := bundle.Stage(ctx, dir, ix, staging, bundle.StageOptions{Progress: func(done, total int64) {
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
		if now := time.Now(); now.Sub(last) > 5*time.Second || done == total {
			last = now
			a.logf("copied and checked %s of %s", formatSize(done), formatSize(total))
		}
	}})
	if err != nil {
		if errors.Is(err, bundle.ErrDamaged) {
			return plainBundleError(err)
		}
		return fmt.Errorf("copy from the stick: %w (what was copied is kept: insert the stick again to go on); nothing was applied", err)
	}
	a.logf("everything needed is copied from the stick and checked")
	return nil
}

// cycleFrom runs one cycle from the repository directory dir only, without the server.
func (a *Agent) cycleFrom(ctx context.Context, dir string) (*CycleReport, error) {
	a.only = []string{dir}
	defer func() { a.only = nil }()
	return a.Cycle(ctx)
}

// takeContent pulls what it can of a bundle's trees into the store, for a node the bundle
// was not made for: the chunks it shares with this node's next release need not travel
// again.
func (a *Agent) takeContent(ctx context.Context, ix *bundle.Index) {
	staging := filepath.Join(a.state, stagingDirName)
	client, closeFn, err := a.storeClient(staging)
	if err != nil {
		a.logf("warning: %v", err)
		return
	}
	defer func() { _ = closeFn() }()
	client.MaxAttempts = 1
	st, _ := ReadState(a.state)
	var have []store.ID
	if st != nil && st.Good != nil {
		if id, err := st.Good.configID(); err == nil {
			have = append(have, id)
		}
		have = append(have, st.Good.contentIDs()...)
	}
	for _, r := range ix.Roots {
		id, err := store.ParseID(r)
		if err != nil {
			continue
		}
		if _, err := client.Pull(ctx, a.store, id, have); err != nil && ctx.Err() == nil {
			a.logf("tree %s: only part of it is on the stick (%v)", id.String()[:12], firstLine(err.Error()))
		}
	}
}

// forgetDelivered removes from the spool the reports the office says it has. (By name, not
// by time: a school's clock may have gone back to 1970 with its RTC battery.)
func (a *Agent) forgetDelivered(received []string) {
	if len(received) == 0 {
		return
	}
	entries, err := a.spool.List()
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Kind == "report" && slices.Contains(received, e.Name) {
			_ = a.spool.Remove(e.Name)
		}
	}
}

// writeReturns writes the node's spooled reports and its facts into the stick's
// returns/NODE/, signed with the node's key (bundle.WriteReturns), and returns that
// directory.
func (a *Agent) writeReturns(dir string, ix *bundle.Index, node string) (string, error) {
	st, err := ReadState(a.state)
	if err != nil {
		return "", err
	}
	// The numbers are saved before they are used: returns are never numbered twice.
	st.ReturnsSeq++
	st.FactsSeq++
	if err := writeState(a.state, st); err != nil {
		return "", err
	}
	ret := &bundle.Returns{Format: bundle.ReturnsFormat, Node: node, Seq: st.ReturnsSeq, FactsSeq: st.FactsSeq,
		Written: a.opts.Now().UTC(), Bundle: ix.ID, Reports: []bundle.ReturnedReport{}}
	if st.Good != nil {
		ret.Release = st.Good.Version
	}
	if facts, _, err := a.gatherFacts(); err == nil {
		if ret.Facts, err = json.Marshal(facts); err != nil {
			return "", err
		}
	}
	entries, err := a.spool.List()
	if err != nil {
		return "", err
	}
	reports := map[string][]byte{}
	for _, e := range entries {
		if e.Kind != "report" {
			continue
		}
		data, err := a.spool.Read(e.Name)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(data)
		ret.Reports = append(ret.Reports, bundle.ReturnedReport{ID: e.Name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
		reports[e.Name] = data
	}
	signed, err := bundle.SignReturns(ret, a.identity.Signer())
	if err != nil {
		return "", err
	}
	if err := bundle.WriteReturns(dir, node, signed, reports); err != nil {
		return "", err
	}
	return filepath.Join(dir, bundle.ReturnsDir, node), nil
}
