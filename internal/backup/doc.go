// Package backup keeps the previous content of files that `satchel apply` replaces or removes,
// so that a change can be undone (`satchel backup list`, `satchel backup restore`).
//
// # Model
//
// A Store is a directory on the node (by default /var/lib/satchel/backups). Every time a managed
// file is about to be replaced or removed, the caller streams its current content into
// [Store.Save] together with its metadata (managed path, mode, owner, reason). Save records one
// [Entry]: a saved version of one file at one moment. Content is stored once per distinct
// SHA-256 (content-addressed, deduplicated): a file that flips between two versions costs two
// objects however many times it flips. [Store.List] and [Store.Get] find entries, [Store.Open]
// reads an entry's content back and verifies it, and [Store.Prune] forgets old entries and
// deletes the objects nobody refers to any more.
//
// Entry IDs look like "20261126T105712.123456Z-1a2b3c4d": the entry's time in UTC to the
// microsecond, then 8 random hex digits. They sort by time, and any unique prefix of at least
// 6 characters names an entry (in practice a prefix long enough to reach the random part, or a
// timestamp precise enough to be unique).
//
// # Mode encoding
//
// Entry.Mode holds the file's permission bits in the Unix st_mode encoding, not in Go's
// os.FileMode encoding: the low nine bits are rwxrwxrwx, 0o4000 is setuid, 0o2000 setgid and
// 0o1000 sticky; no other bit is ever set (the file type is not recorded: only regular files are
// backed up). So a setuid root binary is 0o4755, exactly as chmod(1) would write it. [ModeBits]
// converts an os.FileMode to this encoding and [Entry.FileMode] converts back.
//
// # Layout on disk
//
//	dir/                      0700
//	dir/lock                  empty file; flock(2)ed exclusively around every index write and prune
//	dir/index.jsonl           one JSON Entry per line, in the order they were saved
//	dir/objects/ab/<sha256>   content, one file per distinct SHA-256 (lower-case hex; "ab" = its
//	                          first two digits), mode 0600, never modified once in place
//	dir/tmp/                  content being saved (temporary files, renamed into objects/)
//	dir/index.jsonl.tmp-*     a new index being written by Prune (renamed over index.jsonl)
//
// # Crash safety
//
// Nodes lose power. Every step is ordered so that a crash at any point leaves a store that reads
// correctly, at worst with some garbage that the next Prune removes:
//
//   - Save streams the content into a temporary file in dir/tmp while hashing it (the content is
//     never held in memory, so files of hundreds of MiB are fine), fsyncs it, then, holding the
//     lock, renames it to objects/ab/<sha256> and fsyncs that directory. If that object already
//     exists and is intact (right size and hash) the temporary file is dropped; if it exists but
//     is damaged, the fresh copy replaces it. Only then is the entry appended to index.jsonl. An
//     entry therefore never refers to content that is not durably on disk; a crash between the
//     rename and the append leaves an unreferenced object, which Prune deletes.
//   - index.jsonl is opened with O_APPEND and each entry is written as one line with a single
//     write, followed by fsync. A power cut in the middle of an append can leave a torn last line
//     (a prefix of the JSON, or a run of NUL bytes on some file systems). Readers skip any line
//     that is not a complete, valid entry instead of failing, and the next append first
//     terminates a torn line with a newline, so a new entry always starts on a fresh line.
//   - Prune rewrites the index to a temporary file, fsyncs it, renames it over index.jsonl and
//     fsyncs the directory, and only then deletes objects no longer referenced.
//
// Readers (List, Get, Open) take no lock: appends are whole lines, and a Prune replaces the
// index atomically. Writers (Save's commit step and Prune) hold the flock on dir/lock, so two
// processes (an agent run and an operator's `satchel backup prune`, say) never interleave.
//
// # Corruption
//
// A damaged backup is never restored silently. The index records each entry's SHA-256 and size,
// and the reader returned by Open hashes what it reads: if the content turns out longer, shorter
// or different from what was recorded, Read returns an error wrapping [ErrCorrupt] instead of
// io.EOF. A caller restoring a file must therefore read to EOF into a temporary file and only
// rename it into place when no error was returned. Index lines that are not valid entries
// (bad JSON, a malformed hash) are skipped, so a damaged line loses that one entry, never more.
package backup
