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
// change the keys themselves (RotateKey): after init, move root.key to offline media (a
// USB stick in a safe) and keep a second copy; the others stay with the publisher. A key
// file readable by group or others, missing, malformed or not listed by the root metadata
// for its role makes Publish fail, naming the file.
//
// Key files may be encrypted with a passphrase: the PEM file encrypted with age to a scrypt
// recipient (work factor 18, about a second and 256 MiB to open a key), ASCII-armored.
// Init encrypts the keys it makes, and RotateKey the new key, when SATCHEL_KEY_PASSPHRASE
// (PassphraseEnv) is set; the command sets it from a terminal prompt when asked to
// (repo init --passphrase) or when a key it needs is encrypted. A key file starting with
// age's header is opened with that passphrase; none, or a wrong one, fails naming the file.
// Encryption protects key files that leak (a backup, a lost stick); it does not replace
// the 0600 permissions, which are checked all the same.
//
// RotateKey (rotate.go, satchel repo rotate-key) replaces one role's key: a new key is
// generated, and new root metadata lists it instead of the old one. A new root N+1 must be
// signed by the root threshold of root N and by its own, so a rotation needs the root key
// (from the offline media, --root-keys), and a root rotation signs with the old and the new
// root key. Nodes follow: go-tuf's updater fetches N+1.root.json, N+2.root.json, … before
// anything else and checks each against the one before, then checks timestamp, snapshot
// and targets against the newest root — so metadata signed by a rotated-out key is refused
// from then on, and a cached timestamp or snapshot signed by it is dropped and fetched
// anew (TUF's recovery from a compromised timestamp or snapshot key).
//
// The order keeps the repository valid for every node at every step, so a crash anywhere
// leaves one that nodes follow. For targets, snapshot or timestamp: (1) the new key is
// written as ROLE.key.new and flushed, before any metadata names it; (2) root N+1 lists the
// old and the new key, so the metadata signed by the old key stays valid; (3) targets,
// snapshot and timestamp are signed anew, the role's with the new key, in state.commit's
// order (new versions, timestamp.json last); (4) root N+2 lists the new key only; (5) the
// old ROLE.key is copied to ROLE.key.old-N (the first N free) and ROLE.key.new renamed to
// ROLE.key. A root with both keys trusts nothing root N did not already trust, and the old
// key's private half is never needed (a lost key can be rotated). For root, one root N+1,
// then step (5). Each root is written as N.root.json and then root.json, and is checked
// first to follow the root before it, as a node would check it. Running the rotation again
// finishes an interrupted one: it takes ROLE.key.new as the new key, rewrites a root.json
// left behind the newest N.root.json, and goes on from the step reached; another role's
// rotation is refused while one is unfinished. Old key files are never deleted: a retired
// root key can still sign for nodes that have not refreshed since, so it belongs offline
// as the new one does.
//
// A root rotation does not sign targets, snapshot and timestamp anew: nothing but root is
// signed by the root key, and leaving them lets a root rotation run where only the root key
// is, on the offline machine. A rotation of another key re-signs all three, as Publish
// does (new versions, expiry renewed), which the new key needs at least for its own role.
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
// publish (every publish re-signs all three). Publish accepts expired metadata (it is how
// expired metadata gets renewed); Verify checks expiry against the publisher's clock. A
// node checks expiry against a reference time of its own (clock.go), as its clock may say
// 1970 after a dead RTC battery, or be years ahead, and a school may be offline for months.
//
// Versions, not dates, stop rollback and replay. Every metadata file and every release
// carries a version; a node persists the versions it has trusted (go-tuf's metadata, and
// highest-release) and refuses anything lower, however validly signed and unexpired
// (Nodes). A mirror, a cache or a stick replaying an old repository is refused whatever
// the node's clock says, so no clock needs trusting for that.
//
// Expiry is left with one job: the freeze attack. A mirror that keeps serving the metadata
// of the last release a node saw — never older, so no version goes backwards — hides every
// release after it (a fix, a rotated key). Only a clock can tell: a node whose clock is
// right refuses metadata past its one-year lifetime, so a freeze is noticed at most a year
// after the frozen metadata was signed.
//
// The reference time, given to go-tuf's updater before it checks anything, is:
//
//   - never below the floor: the newest signed time the node has seen, which is the latest
//     creation time of the release manifests Refresh has returned (signed with them, and
//     persisted in the trust directory as trusted-time), or the time the running program
//     was built, if later (its commit time, the build setting vcs.time, as systemd does
//     with its build time). A clock behind the floor is wrong; the floor is used instead.
//   - the floor too when the clock is more than ClockSuspectAfter (3 years) ahead of it:
//     such a clock is suspect rather than trusted; the refresh warns, naming both times.
//   - otherwise the clock. With no floor at all (a node that never refreshed, running a
//     program without a build time) the clock is used as it is.
//
// So a node whose clock says 1970 accepts a newer release — its metadata was signed at or
// after the floor and is valid for a year from then — and refuses an old copy by versions,
// or as expired if its metadata expired before the floor: a time the node knows has
// passed. A clock in 2040 is treated the same way. Either way each refresh warns that the
// clock is not trusted (not for a clock merely minutes behind: publishers' clocks differ).
//
// The limit is longer than the one-year lifetime on purpose: were it shorter, a node
// whose clock is right and is being frozen would find its own clock suspect just when the
// frozen metadata expires, and never notice the freeze. With 3 years, a frozen node
// refuses the frozen metadata once it expires, a year after its publish; only three years
// after the newest release it saw can it no longer tell a long freeze from a clock far
// ahead, and then it says so at every refresh.
// A clock 1 to 3 years ahead is believed: by it, the metadata has expired, and each
// refresh is refused with an error (wrapping go-tuf's metadata.ErrExpiredMetadata) naming
// the metadata, its expiry, the reference time and the fix — set the clock (timedatectl),
// or publish again if it is the repository that is stale. Meanwhile the node keeps its
// last good release applied, as the agent re-applies it from its own store without a
// refresh.
//
// A school offline for six months is not locked out. Its last good release keeps being
// re-applied, which needs no metadata and checks no expiry. Metadata carried in (a stick,
// a mirror brought up to date) is valid for a year after its publish, whenever the node
// last refreshed and whether its clock is right or behind; root lasts ten years. What is
// refused is metadata itself more than a year old, by a node whose clock is right: the
// repository must then publish again, as a new release renews every expiry.
//
// Signed times are the publisher's clock at publishing, which may be wrong too. A node
// whose clock it trusts (one within the limits of a floor) raises its floor only up to its
// own clock: a release created by a publisher's clock years ahead is accepted, and the
// correctly dated releases that follow still are. A node whose clock is not trusted takes
// the creation time as it is, having nothing better: such a release raises its floor, and
// until that time comes the releases published afterwards with the right clock have
// expired by it. So publish with a clock that is right. To recover a node, remove
// trusted-time from its trust directory: the floor falls back to the build time, and
// versions still refuse rollback.
//
// go-tuf's updater checks every expiry, in Refresh, against its trusted metadata's RefTime,
// which updater.New sets to the time of the call and checks nothing against;
// Updater.UnsafeSetRefTime replaces it. Its name reserves it for tests; the reference time
// is what TUF's client workflow calls the fixed update start time, and Refresh sets it on
// purpose.
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
// highest it has returned before, persisted in the same directory (highest-release). Expiry
// is checked against the node's reference time (Expiry); the newest signed time it has
// seen is persisted there too (trusted-time, RFC 3339), and, as highest-release, only
// after a manifest has been verified and is returned. A damaged highest-release or
// trusted-time stops Refresh with an error naming the file.
package release
