// Package transfer moves a store's content (internal/store) over HTTP: a read-only server
// for a store's directory, and a client that pulls a tree into a local store, fetching only
// what that store lacks, resuming wherever a transfer was cut.
//
// # The wire is the store's own layout
//
// Nothing is computed per request. A store is a directory of immutable files named by their
// content's hash, laid out so that any static server, cache or mirror can serve it:
//
//	chunks/ab/<id>.zst            a chunk as the store keeps it (zstd frame and seal)
//	objects/ab/<id>.zst           a file or tree object
//	deltas/FROM-TO.idx.zst        a static delta's index (store/delta.go)
//	deltas/FROM-TO.pack           its payloads, one after the other
//
// Handler (server.go) serves exactly these paths, GET and HEAD only, with byte ranges, and
// with /v1/chunks/<id> and /v1/objects/<id> as aliases; anything else is 404. A plain
// http.FileServer or nginx serving the same directory works as well with the Client.
//
// # How a pull goes
//
// Client.Pull (client.go) brings everything reachable from one root into a local store:
//
//  1. Missing (store/walk.go) says what the store lacks. Nothing: no request at all.
//  2. Delta (delta.go). For each root the node says it has, then for the zero ID (the delta
//     "from nothing", all of the root), the client asks for the delta's index; the first one
//     found is used. The entries the store lacks and can decode (whose bases it holds) are
//     needed; the pack's dictionary is needed if any of them is encoded with it, and is
//     fetched first. The needed entries are coalesced into byte ranges of the pack (plan.go),
//     fetched with one range per request, up to Streams requests at a time, and applied as
//     they stream in: each payload is decoded, hashed and stored on its own, so a cut loses
//     at most the payload in flight and the retry asks for the rest of the range.
//  3. Singly (single.go). What is still missing (no delta on the server, entries whose
//     bases the node lacks, payloads refused as corrupt) is fetched file by file from
//     objects/ and chunks/, walking down from the root as objects arrive, Streams at a time.
//  4. Missing must then be empty, or the pull fails saying what is missing and why.
//
// Every payload and every file is verified (decoded, hashed against its name) before it is
// stored, so a damaged pack, a stale cache or a hostile server can waste bytes but never
// store a wrong one. Everything stored stays stored: a pull that is cancelled, killed or
// cut off is resumed by pulling again, and fetches only what is still missing.
//
// # Bad links
//
// Requests that fail for a reason that may pass (a connection cut or refused, a stalled
// body, a 5xx, 408 or 429 status) are repeated with exponential back-off and jitter, and a
// pull gives up only after MaxAttempts failures in a row of one request without anything
// stored anywhere meanwhile: a slow link that keeps delivering is never abandoned. One
// token bucket shared by all streams caps the bandwidth (Client.Limit). Multi-range
// requests (multipart/byteranges) are never used: through mirrors and caches they are
// fragile, so each request asks for a single range, and a server that ignores Range is
// read from the start of the pack, once.
package transfer
