// Package store is Satchel's content store: files and whole directory trees kept as
// content-defined chunks, so that a node fetches only the bytes it lacks, a cut transfer
// resumes where it stopped, and any static HTTP server, cache or USB stick can carry them.
//
// # Model
//
// A chunk is a piece of a file's content, cut where the content itself says (content-defined
// chunking, FastCDC: see chunking.go for the algorithm and the sizes, chosen by measurement
// on the shared content-library dataset), so that an insertion early in a file moves the
// later boundaries with the content instead of changing every chunk after it. A chunk's ID is
// the SHA-256 of its plain bytes.
//
// An object describes content in terms of chunks and other objects; its ID is the SHA-256 of
// its encoding (codec.go):
//
//   - a file object: the file's size, the SHA-256 of its whole content, and the ordered list of
//     its chunks (ID and length);
//   - a tree object: the sorted entries of a directory: name, kind (file, directory, symlink),
//     mode, and the ID of the entry's file or tree object, or a symlink's target.
//
// A tree therefore is a Merkle tree: its root ID names every byte below it, and two trees
// share every object and chunk they have in common.
//
// # On disk, and on the wire
//
// A store is a plain directory, laid out so that any static file server can serve it:
//
//	chunks/ab/abcdef….zst    a chunk, zstd-compressed (one frame, then a seal: seal.go)
//	objects/ab/abcdef….zst   an object, zstd-compressed, sealed
//	deltas/FROM-TO.idx.zst   a static delta between two roots: its index (delta.go)
//	deltas/FROM-TO.pack      and its payloads
//	quarantine/              corrupt files, moved aside when found (removed by GC)
//	lock                     flock(2)ed: shared by writers, exclusive by GC (lock.go)
//
// Files are written once, atomically (temporary file, fsync, rename), and never change:
// their names are their content's hash. Every read checks the seal (a CRC-32C of the stored
// bytes, in a zstd skippable frame, so that any changed byte is caught, even one zstd would
// ignore), decompresses and re-hashes, so a corrupt or truncated chunk or object is
// detected, named, moved to quarantine/ and fetched again, never used.
//
// # Building, reconstructing, collecting
//
// Add chunks a file or a tree into the store, streaming, with bounded memory whatever the
// size. Materialize (materialize.go) writes a file or tree from the store into place,
// reusing chunks found in the files already there (seeds), each file written atomically so
// the old version keeps serving until the new one is complete and verified. GC removes what
// no kept root references.
package store
