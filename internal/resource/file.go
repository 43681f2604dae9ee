package resource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/satchelcm/satchel/internal/fsroot"
	"github.com/satchelcm/satchel/internal/schema"
	"github.com/satchelcm/satchel/internal/textdiff"
)

// File manages a regular file: its content, mode, owner and group, or its absence.
type File struct {
	base
	Path    string     `attr:"path" required:"true" format:"path" doc:"Absolute path of the file."`
	Ensure  string     `attr:"ensure" default:"present" enum:"present,absent" doc:"present: the file exists with this content; absent: it is removed (a directory at the path is an error)."`
	Content *string    `attr:"content" doc:"The whole content, as text. Use template() to render one, file() to read one from files/."`
	Source  *SourceRef `attr:"source" format:"source" doc:"A file under files/ to copy, for large or binary content; compared by SHA-256."`
	Mode    *string    `attr:"mode" format:"mode" doc:"Permission bits in octal, e.g. \"0644\". Unset: new files get 0644 and existing ones keep theirs."`
	Owner   *string    `attr:"owner" format:"account" refers:"user" doc:"Owning user (name or uid). Unset: not managed."`
	Group   *string    `attr:"group" format:"account" refers:"group" doc:"Owning group (name or gid). Unset: not managed."`
	Backup  bool       `attr:"backup" default:"true" doc:"Keep the previous content in the backup store before replacing or removing it."`
	Force   bool       `attr:"force" default:"false" doc:"Replace a directory found at the path (its content is removed). Symlinks are always replaced."`
}

var fileDef = definition{
	name:     "file",
	doc:      "A regular file with the given content, mode and owner, replaced atomically.",
	pathAttr: "path",
	ownsPath: true,
	proto:    (*File)(nil),
	check: func(v schema.Values) []*schema.AttrError {
		_, hasContent := v["content"]
		_, hasSource := v["source"]
		switch {
		case hasContent && hasSource:
			return []*schema.AttrError{{Attr: "source", Summary: "Conflicting attributes",
				Detail: "content and source are exclusive: give one of them."}}
		case v["ensure"] == "present" && !hasContent && !hasSource:
			return []*schema.AttrError{{Attr: "content", Summary: "Missing content",
				Detail: "a file that is present needs content or source."}}
		}
		return nil
	},
}

// desiredSize is the size of the desired content.
func (f *File) desiredSize() int64 {
	if f.Content != nil {
		return int64(len(*f.Content))
	}
	return f.Source.Size
}

// CheckApply implements Resource.
func (f *File) CheckApply(ctx context.Context, env *Env, apply bool) (_ *Result, err error) {
	res := &Result{}
	defer func() {
		if apply && err == nil && res.Changed() {
			noteWrite(env, f.Path)
		}
	}()
	info, err := current(env, f.Path)
	if err != nil {
		return res, err
	}
	if f.Ensure == "absent" {
		return res, f.remove(env, info, res, apply)
	}
	own, err := resolveOwnership(env, f.Mode, f.Owner, f.Group)
	if err != nil {
		return res, err
	}
	replace := false
	var parents []string
	switch {
	case info == nil:
		res.Add("ensure", "absent", "present")
		if parents, err = addParents(env, f.Path, res); err != nil {
			return res, err
		}
		replace = true
		res.Diff = f.diff(env, nil, nil)
	case info.IsDir() && !f.Force:
		return res, fmt.Errorf("%s is a directory; set force = true to replace it with a file", env.Root.HostPath(f.Path))
	case !info.IsRegular():
		res.Add("type", kindOf(info), "file")
		replace = true
	default:
		same, current, err := f.sameContent(env, info)
		if err != nil {
			return res, err
		}
		if !same {
			res.Add("content", f.describe(env, info, current, false), f.describe(env, info, nil, true))
			res.Diff = f.diff(env, info, current)
			replace = true
		}
		own.diff(env, info, res)
	}
	if !apply || !res.Changed() {
		return res, nil
	}
	if !replace {
		return res, own.fix(env, f.Path, info)
	}
	var beforeRename func() error
	if info != nil && info.IsDir() {
		if err := f.backupTree(env, info); err != nil {
			return res, err
		}
		// Remove the directory only once the new content is safely written (a source that
		// does not verify leaves it as it was); rename cannot replace a directory.
		beforeRename = func() error { return env.Root.RemoveAll(f.Path) }
	} else if info != nil && info.IsRegular() && f.Backup {
		if err := saveBackup(env, f.Path, info, "replaced by "+f.address); err != nil {
			return res, err
		}
	}
	if info != nil && !info.IsRegular() {
		info = nil // do not inherit a symlink's mode or owner
	}
	if err := makeParents(env, parents); err != nil {
		return res, err
	}
	src, err := f.open(env)
	if err != nil {
		return res, err
	}
	defer src.Close()
	mode, uid, gid := own.forNew(info, 0o644)
	return res, writeAtomicThen(env.Root, f.Path, src, mode, uid, gid, beforeRename)
}

func (f *File) remove(env *Env, info *fsroot.Info, res *Result, apply bool) error {
	if info == nil {
		return nil
	}
	if info.IsDir() {
		return fmt.Errorf("%s is a directory, not a file; manage it with a directory resource", env.Root.HostPath(f.Path))
	}
	res.Add("ensure", "present", "absent")
	if !apply {
		return nil
	}
	if info.IsRegular() && f.Backup {
		if err := saveBackup(env, f.Path, info, "removed by "+f.address); err != nil {
			return err
		}
	}
	return removeDurably(env.Root, f.Path)
}

// sameContent compares the file with the desired content. It returns the current content
// when it differs and is small enough to diff.
func (f *File) sameContent(env *Env, info *fsroot.Info) (bool, []byte, error) {
	if info.Size != f.desiredSize() && info.Size > textdiff.MaxDiffBytes {
		return false, nil, nil
	}
	if f.Content != nil {
		current, err := env.Root.ReadFile(f.Path)
		if err != nil {
			return false, nil, err
		}
		return string(current) == *f.Content, current, nil
	}
	if info.Size != f.Source.Size {
		current, err := env.Root.ReadFile(f.Path)
		return false, current, err
	}
	sum, err := hashFile(env, f.Path)
	if err != nil || sum == f.Source.SHA256 {
		return err == nil, nil, err
	}
	if info.Size > textdiff.MaxDiffBytes {
		return false, nil, nil
	}
	current, err := env.Root.ReadFile(f.Path)
	return false, current, err
}

// secretContent reports whether the content must not be shown: content is sensitive, or
// source is (a secret file is copied by source as often as a secret text is given inline).
func (f *File) secretContent() bool {
	return f.isSensitive("content") || f.isSensitive("source")
}

// describe summarises the current or desired content for a change line.
func (f *File) describe(env *Env, info *fsroot.Info, current []byte, desired bool) string {
	if f.secretContent() {
		return Redacted
	}
	if desired {
		if f.Content != nil {
			return fmt.Sprintf("%d bytes, sha256 %s", len(*f.Content), textdiff.ShortHash([]byte(*f.Content)))
		}
		return fmt.Sprintf("%d bytes, sha256 %s", f.Source.Size, f.Source.SHA256[:12])
	}
	if current != nil {
		return fmt.Sprintf("%d bytes, sha256 %s", len(current), textdiff.ShortHash(current))
	}
	sum, err := hashFile(env, f.Path)
	if err != nil {
		return fmt.Sprintf("%d bytes", info.Size)
	}
	return fmt.Sprintf("%d bytes, sha256 %s", info.Size, sum[:12])
}

// diff renders the content change, unless the content is secret or too large to show.
// info is the existing file, if any, and current its content (nil if it was too large to
// read).
func (f *File) diff(env *Env, info *fsroot.Info, current []byte) string {
	if f.secretContent() {
		return ""
	}
	if info != nil && current == nil {
		return fmt.Sprintf("content differs: %d bytes -> %d bytes (sha256 %s)\n", info.Size, f.desiredSize(), f.desiredHash())
	}
	var desired []byte
	switch {
	case f.Content != nil:
		desired = []byte(*f.Content)
	case f.Source.Size <= textdiff.MaxDiffBytes:
		r, err := env.Sources.Open(f.Source)
		if err != nil {
			return ""
		}
		defer r.Close()
		if desired, err = io.ReadAll(r); err != nil {
			return ""
		}
	default:
		return fmt.Sprintf("content differs: %d bytes -> %d bytes (sha256 %s)\n", len(current), f.Source.Size, f.Source.SHA256[:12])
	}
	return textdiff.Unified(f.Path, current, desired)
}

// desiredHash returns the first 12 hex digits of the desired content's SHA-256.
func (f *File) desiredHash() string {
	if f.Content != nil {
		return textdiff.ShortHash([]byte(*f.Content))
	}
	return f.Source.SHA256[:min(12, len(f.Source.SHA256))]
}

// open returns the desired content.
func (f *File) open(env *Env) (io.ReadCloser, error) {
	if f.Content != nil {
		return io.NopCloser(strings.NewReader(*f.Content)), nil
	}
	return env.Sources.Open(f.Source)
}

// backupTree saves every regular file under a directory that force is about to remove.
func (f *File) backupTree(env *Env, info *fsroot.Info) error {
	if !f.Backup {
		return nil
	}
	return walk(env.Root, f.Path, func(p string, fi *fsroot.Info) error {
		if fi.IsRegular() {
			return saveBackup(env, p, fi, "removed by "+f.address+" (force)")
		}
		return nil
	})
}

// kindOf names the kind of an entry for messages.
func kindOf(info *fsroot.Info) string {
	switch {
	case info.IsRegular():
		return "file"
	case info.IsDir():
		return "directory"
	case info.IsSymlink():
		return "symlink"
	}
	return "special file"
}

// hashFile returns the hex SHA-256 of the regular file p.
func hashFile(env *Env, p string) (string, error) {
	r, err := env.Root.Open(p)
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("read %s: %w", env.Root.HostPath(p), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// saveBackup keeps the current content of the regular file p, if backups are on.
func saveBackup(env *Env, p string, info *fsroot.Info, reason string) error {
	if env.Backup == nil {
		return nil
	}
	r, err := env.Root.Open(p)
	if err != nil {
		return fmt.Errorf("back up %s: %w", env.Root.HostPath(p), err)
	}
	defer r.Close()
	if _, err := env.Backup.Save(backupEntry(p, info, reason), r); err != nil {
		return fmt.Errorf("back up %s: %w", env.Root.HostPath(p), err)
	}
	return nil
}

// walk calls fn for every entry below dir (not dir itself), depth first, parents before
// children. Symlinks are reported, never followed.
func walk(root *fsroot.Root, dir string, fn func(p string, info *fsroot.Info) error) error {
	names, err := root.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := path.Join(dir, n)
		info, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(p, info); err != nil {
			return err
		}
		if info.IsDir() {
			if err := walk(root, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

var _ Resource = (*File)(nil)
