// Package catcache keeps the last catalog compiled from a config repository for a node, so
// that a run whose inputs have not changed skips parsing and evaluation: most of the cost of
// a no-op run on a large configuration.
//
// # Why reuse is safe
//
// Evaluation is pure (package lang): a catalog depends only on the repository's files, the
// node's name, the facts the configuration reads, and the code that compiles it. An entry
// records all four:
//
//   - a fingerprint of the repository: the path, type, size, mode, modification and change
//     times and inode of every entry under it, hashed (as git's index does; a file rewritten
//     in place changes its times, one replaced by rename its inode), plus the SHA-256 of every
//     file the language read as text (HCL, templates, file(), the inventory), re-checked on
//     every lookup; the files a catalog copies (source) are pinned by their hash in the
//     catalog itself and verified as they are copied;
//   - the node's name;
//   - the fact paths the configuration can read (lang.Config.FactReferences) and a hash of
//     their current values, so a fact it never reads (free disk space, say) does not
//     invalidate it;
//   - the satchel executable's identity (size, modification time, inode) and the catalog
//     format.
//
// Lookup recomputes the fingerprint and the facts hash and returns the catalog only if
// everything matches. A repository touched within the last two seconds is not cached at all:
// a change in the same clock tick as the fingerprint could otherwise go unseen ("racy git").
// Entries are written atomically; an unreadable or corrupt entry is a miss, never an error.
package catcache
