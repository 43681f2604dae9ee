package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
)

// Walk calls fn for every entry below the tree root, depth first, in name order; path is
// the entry's slash-separated path relative to the root, and f is the entry's file object
// (nil for directories and symlinks). If fn returns fs.SkipDir for a directory, Walk does
// not descend into it. Every object is read and verified: an object that is not in the
// store stops the walk with an error wrapping ErrNotFound (Missing, by contrast, goes
// around what is absent).
func (s *Store) Walk(ctx context.Context, root ID, fn func(path string, e Entry, f *FileObject) error) error {
	t, err := s.Tree(root)
	if err != nil {
		return err
	}
	return s.walk(ctx, "", t, fn)
}

func (s *Store) walk(ctx context.Context, dir string, t *TreeObject, fn func(string, Entry, *FileObject) error) error {
	for _, e := range t.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := path.Join(dir, e.Name)
		switch e.Kind {
		case KindFile:
			f, err := s.File(e.ID)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if err := fn(p, e, f); err != nil {
				return err
			}
		case KindDir:
			err := fn(p, e, nil)
			if errors.Is(err, fs.SkipDir) {
				continue
			}
			if err != nil {
				return err
			}
			sub, err := s.Tree(e.ID)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if err := s.walk(ctx, p, sub, fn); err != nil {
				return err
			}
		default:
			if err := fn(p, e, nil); err != nil && !errors.Is(err, fs.SkipDir) {
				return err
			}
		}
	}
	return nil
}

// Missing returns what of root's Merkle tree is not in the store: the objects and the chunks
// to fetch, each once, in the order a walk meets them. root may be a tree or a file object.
// Only what is present can be walked: below a missing object, nothing more is known until
// it is fetched, so a transfer calls Missing again after fetching objects. A stored object
// found corrupt is moved to quarantine/ and listed as missing; chunks are only checked for
// presence (their content is verified when they are read).
func (s *Store) Missing(ctx context.Context, root ID) (objects, chunks []ID, err error) {
	seenObjects := make(map[ID]bool)
	seenChunks := make(map[ID]bool)
	var visit func(id ID) error
	visit = func(id ID) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if seenObjects[id] {
			return nil
		}
		seenObjects[id] = true
		obj, err := s.Object(id)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
			objects = append(objects, id)
			return nil
		}
		if err != nil {
			return err
		}
		switch o := obj.(type) {
		case *FileObject:
			for _, c := range o.Chunks {
				if !seenChunks[c.ID] {
					seenChunks[c.ID] = true
					if !s.HasChunk(c.ID) {
						chunks = append(chunks, c.ID)
					}
				}
			}
		case *TreeObject:
			for _, e := range o.Entries {
				if e.Kind == KindFile || e.Kind == KindDir {
					if err := visit(e.ID); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := visit(root); err != nil {
		return nil, nil, err
	}
	return objects, chunks, nil
}
