// Package bundle is the format of the USB sticks that carry releases to sites with no link
// and their reports back: what is on a stick, how it is signed, and how a node copies one
// in safely.
//
// # A bundle
//
// A bundle is a directory (the root of a stick, or any directory on it) holding a partial
// copy of the office's release repository, as a node reads a repository directory:
//
//	satchel-bundle.json       the signed index (Index): the bundle's ID, its release, the
//	                          nodes it was made for, and every file below with its size
//	                          and SHA-256
//	metadata/                 the trust metadata (TUF): every root, the newest timestamp,
//	                          snapshot and targets
//	targets/releases/N.json   the release's manifest
//	store/deltas/FROM-TO.*    static deltas: for each node, from the trees it holds (as it
//	                          last reported) to the release's trees; from nothing for a
//	                          node never seen
//	secrets/N/                the release's secret index files, and the ciphertexts of
//	                          the bundle's nodes
//	returns/NODE/             what each node wrote back (Returns): signed, read by the
//	                          office's satchel bundle collect
//
// Everything but the index and returns/ is exactly as the repository holds it, so a node
// verifies a bundle's release as it verifies one fetched over the network: signatures,
// versions (no rollback), and every byte by hash.
//
// # Sticks
//
// FAT32 holds no file of 4 GiB or more, and no symbolic link: a file larger than PartSize
// is written as parts, NAME.000, NAME.001, … (Part), each hashed in the index; nothing
// else depends on the file system (no permissions, no case, no links). A bundle is written
// index last: a stick whose export was cut has no index, or an old one whose files no
// longer match, and is refused; running the export again resumes it, keeping every file
// (and part) already written whole.
//
// # Who made it
//
// The index is signed by a certificate of the fleet's CA (the server's own), and carries
// its chain: a node checks that the chain ends in the CA it pinned at enrollment, so a
// bundle of another fleet, or a stick's index edited by hand, is refused before anything
// is read. The release inside is in any case checked against the node's pinned release
// keys: the index's signature says who made the stick, the release's signatures what the
// node may apply.
//
// # Copying in
//
// Stage copies a bundle from a stick into a directory of the node's own, reading only the
// files the index lists, each checked against its hash as it is copied (parts joined), so
// that the node then works from a verified copy: a file changed on the stick, a truncated
// one, a link out of the bundle or a name with ".." is refused with the file named, and a
// stick pulled out halfway leaves the files copied so far, which the next insertion keeps.
// Once staged, the stick may be removed.
package bundle
