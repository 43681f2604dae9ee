// Package resource holds the resource types: each one file implementing one contract.
//
// # The contract
//
// A type is a Go struct whose fields carry `attr` tags. From those tags the package derives
// the type's schema (attribute names, value types, formats, defaults, allowed values and
// documentation; see package schema), so the language's checks, `satchel types` and the
// struct the code uses can never disagree. New decodes a catalog resource into the struct.
//
// Every type implements Resource, a single call:
//
//	CheckApply(ctx, env, apply) (*Result, error)
//
// It compares the current state with the desired one and returns the differences; with
// apply set it also converges. Check and apply share one code path, so `satchel plan` cannot
// drift from `satchel apply`. Optional traits refine how the engine drives a type:
// Refresher (it can be notified: restart a service, re-run a command), Serial (one at a time:
// commands, account tools), Batcher (converged together: packages, one dpkg-query and one
// apt transaction for many), PathManager (paths it manages besides its path attribute).
//
// # The types
//
// File level: file, directory, symlink, line, exec, and tree (a directory mirrored from the
// content store, package store: counts and bytes rather than a line per file, and no
// backups, a content library being too big for them). System level: package (apt and dpkg,
// behind a packageManager interface that rpm/dnf could implement), service and timer
// (systemd; without a running systemd, as under --root, through systemctl --root), user and
// group (the shadow tools, which take --root), hostname. System tools run through command:
// a clean environment, their own process group, a timeout, and their output kept for errors;
// under --root they act on the root (chroot, --root), never on the host.
//
// # Safety
//
// Every path goes through env.Root (package fsroot), so with --root nothing outside the root
// is touched and a final symlink is never followed. Files are replaced atomically (temporary
// file in the same directory, fsync, owner and mode set, rename, fsync of the directory): a
// crash at any point leaves either the old or the new file. Replaced and removed content is
// saved to env.Backup first. Values of sensitive attributes never appear in a Result.
package resource
