package resource

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path"

	"github.com/satchelcm/satchel/internal/backup"
	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/report"
	"github.com/satchelcm/satchel/internal/store"
)

// Resource is one managed thing, decoded from a catalog.
type Resource interface {
	// CheckApply compares the current state with the desired one and reports the
	// differences; when apply is true it also converges. An error means the check or the
	// change failed; the Result then says what was found or done before the failure.
	CheckApply(ctx context.Context, env *Env, apply bool) (*Result, error)
}

// Refresher is implemented by resources that react to notifications.
type Refresher interface {
	// Refresh reacts to a change in a resource that notifies this one (restart, re-run).
	// When apply is false it only reports what it would do.
	Refresh(ctx context.Context, env *Env, apply bool) (*Result, error)
}

// Serial is implemented by resources that must not run at the same time as another Serial
// resource, even when neither depends on the other: commands (which may share state the
// catalog does not describe) and package managers (one dpkg at a time). File resources run
// in parallel with everything.
type Serial interface {
	Serial()
}

// Batcher is implemented by resources that are much cheaper to converge together than one by
// one: packages, where one apt transaction installs twenty as fast as one. The engine holds
// back the resources with one BatchKey as they become ready, and, when nothing else can run,
// hands all of them to CheckApplyBatch of one of them: as few transactions as the dependency
// graph allows. Batches run alone, like Serial resources.
type Batcher interface {
	Resource
	BatchKey() string
	// CheckApplyBatch is CheckApply for several resources of this kind at once (members
	// includes the receiver). It returns one result and one error per member, in order.
	CheckApplyBatch(ctx context.Context, env *Env, members []Resource, apply bool) ([]*Result, []error)
}

// PathManager is implemented by resources that manage paths in the file system other than
// through a path attribute (an exec's creates). A purging directory keeps these paths.
type PathManager interface {
	ManagedPaths() []string
}

// Env is what a resource sees of the run.
type Env struct {
	// Root confines every path; with --root it is that directory, otherwise "/".
	Root *fsroot.Root
	// Sources opens the files that file resources copy (source = "…").
	Sources Sources
	// Backup keeps replaced and removed content; nil disables backups.
	Backup *backup.Store
	// Content is the node's content store, which tree resources mirror from (nil: none).
	Content *store.Store
	// Accounts resolves user and group names inside the root.
	Accounts *Accounts
	// Managed holds every path the catalog manages, for purging directories.
	Managed *PathSet
	// Changes holds the paths this run has changed so far (set by the engine).
	Changes *Changes
	// Log receives diagnostics meant for operators (never secrets).
	Log *slog.Logger
}

// Sources opens the content of a file resource's source.
type Sources interface {
	// Open returns the content of ref. The reader fails at EOF if the bytes do not match
	// ref's size and SHA-256.
	Open(ref *SourceRef) (io.ReadCloser, error)
}

// SourceRef names the content a file resource copies: a file in the config repository,
// identified by its path and pinned by its size and hash when the catalog was made.
type SourceRef struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Result is what CheckApply found (and, when applying, changed).
type Result struct {
	Changes []*report.Change
	Diff    string
	// Notes are remarks for the operator that are neither changes nor errors: "running: not
	// applicable under --root".
	Notes []string
}

// Changed reports whether anything differed.
func (r *Result) Changed() bool { return r != nil && len(r.Changes) > 0 }

// Add records that attr differs.
func (r *Result) Add(attr, from, to string) {
	r.Changes = append(r.Changes, &report.Change{Attribute: attr, From: from, To: to})
}

// Addf records that attr differs, formatting both values with %v.
func (r *Result) Addf(attr string, from, to any) {
	r.Add(attr, fmt.Sprint(from), fmt.Sprint(to))
}

// Note records a remark that is neither a change nor an error.
func (r *Result) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Redacted is shown instead of a sensitive value.
const Redacted = "(sensitive)"

// PathSet is a set of managed paths that also answers "is anything managed below p?".
type PathSet struct {
	exact     map[string]bool
	ancestors map[string]bool
}

// NewPathSet returns the set of the given absolute paths.
func NewPathSet(paths []string) *PathSet {
	s := &PathSet{exact: map[string]bool{}, ancestors: map[string]bool{}}
	for _, p := range paths {
		s.exact[p] = true
		for d := path.Dir(p); d != "/" && d != "." && !s.ancestors[d]; d = path.Dir(d) {
			s.ancestors[d] = true
		}
	}
	s.ancestors["/"] = len(paths) > 0
	return s
}

// Has reports whether p itself is managed.
func (s *PathSet) Has(p string) bool { return s != nil && s.exact[p] }

// HasBelow reports whether a managed path lies strictly below p.
func (s *PathSet) HasBelow(p string) bool { return s != nil && s.ancestors[p] }
