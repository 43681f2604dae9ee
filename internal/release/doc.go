// Package release makes and checks Satchel's release repositories: signed, versioned
// releases of a config repository that any static file host, mirror, cache or USB stick can
// carry, authenticated by signatures (The Update Framework, go-tuf/v2), not by the channel.
//
// # Layout
//
// A repository is a directory meant to be published exactly as it is (it holds no secret):
//
//	store/                      the content store (package store) of the config trees:
//	                            chunks and objects, servable statically
//	metadata/1.root.json        TUF root, one file per version (N.root.json), each signed by
//	metadata/N.root.json        the keys of the one before and its own
//	metadata/root.json          a copy of the newest root, to hand to nodes as their trust
//	metadata/N.targets.json     TUF targets: the release manifests, by length and SHA-256
//	metadata/N.snapshot.json    TUF snapshot: the version, length and hash of targets
//	metadata/timestamp.json     TUF timestamp: the version, length and hash of the snapshot
//	targets/releases/N.json     release N's manifest (a TUF target)
//	.lock                       flock(2)ed by a publisher, so two never interleave
//
// Snapshots are consistent (root's consistent_snapshot is true): targets and snapshot are
// new files at every release, named by version, and timestamp.json is the only file ever
// replaced. Target files are not prefixed by their hash, as TUF's consistent snapshots
// would have it: a manifest's name, releases/N.json, is already never reused once signed
// for, so the agent's updater is configured with PrefixTargetsWithHash off.
//
// # Release manifests
//
// A manifest (manifest.go) is a small JSON document of a known format
// ("satchel-release/1"): the release version (1, 2, …, each the previous plus one), the ID
// of the config repository's tree in the store (its Merkle root: HCL, files, templates,
// inventory — every byte), the creation time (RFC 3339, UTC), notes, and optional health
// checks (name, argv, timeout). The targets metadata signs each manifest's length and
// SHA-256; the manifest names the tree; the tree names every object and chunk by SHA-256.
// So a node verifies every byte it fetches from one signature chain.
//
// # Keys
//
// Init makes one ed25519 key per top-level role — root, targets, snapshot, timestamp — as
// PEM PKCS#8 files ROLE.key, mode 0600, in a keys directory of mode 0700, never inside the
// repository (Init and Publish refuse a keys directory inside it). The command's default is
// satchel/keys in the user's configuration directory ($XDG_CONFIG_HOME or ~/.config): one
// repository per keys directory, as Init refuses to overwrite a key.
//
// Publish needs the targets, snapshot and timestamp keys. The root key is needed only to
// change the keys themselves (rotation, a later slice): after init, move root.key to
// offline media (a USB stick in a safe) and keep a second copy; the others stay with the
// publisher. A key file readable by group or others, missing, malformed or not listed by
// the root metadata for its role makes Publish fail, naming the file.
//
// # Publishing
//
// Publish checks the config for every node it names (as satchel check does, facts
// unknown) and refuses the release if any node fails, writing nothing. Then it adds the
// config tree to the store, writes the manifest, and signs and writes targets, then
// snapshot, then timestamp, each file atomically (temporary file, fsync, rename, directory
// fsync). Until timestamp.json is replaced the published state is the old one, complete; a
// crash leaves at most unreferenced new files, which the next publish overwrites.
//
// # Expiry
//
// Root expires 10 years after signing; targets, snapshot and timestamp one year after each
// publish (every publish re-signs all three). These are long on purpose: a school offline
// for six months must not be locked out by a timestamp that expired meanwhile, and a node
// with a dead RTC battery may believe it is 1970. How the agent uses expiry against its own
// clock — refusing rollback by version numbers it persisted rather than by dates — is the
// agent's slice; until then, Verify checks expiry against the publisher's clock, and
// Publish accepts expired metadata (it is how expired metadata gets renewed).
//
// # Verifying
//
// Verify walks the repository as a node would: the root chain from a trusted root, then
// timestamp, snapshot and targets through go-tuf's trustedmetadata (signatures, thresholds,
// versions, lengths, hashes, expiry), then every manifest against its signed length and
// hash, its decoder and its version, then each config tree complete in the store, then
// every chunk and object of the store.
//
// # Nodes
//
// A node keeps its trust in a directory of its own (client.go): TrustInit writes the
// repository's root.json there, handed over by the operator; Refresh then runs go-tuf's
// updater against the repository — an http(s) URL, or a directory read through an os.Root
// (DirFetcher) — persisting the newest trusted metadata in it, and returns the newest
// release's verified manifest. Two layers refuse going backwards: go-tuf refuses metadata
// older than the persisted metadata, and Refresh refuses a newest release lower than the
// highest it has returned before, persisted in the same directory. Expiry is still go-tuf's
// default, against the node's clock; the clock policy above is the next step.
package release
