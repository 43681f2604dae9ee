// Package server is satchel server: the central office's one process. It keeps the
// fleet's private CA, enrolls nodes, serves them the release repository over mutual TLS,
// takes their facts and run reports, and answers the operator's commands.
//
// # Data directory
//
// Everything the server keeps is under one directory (mode 0700), made on first start:
//
//	ca/          the private CA (package pki); its fingerprint is what agents pin
//	state.db     nodes, bootstrap tokens, reports (package registry, SQLite in WAL mode)
//	repo/        the release repository (package release), served to nodes as it is
//	keys/        the repository's signing keys (root.key belongs on offline media once
//	             the server is set up: see docs/releases.md)
//	admin.json   the operator's credential: the server's URL, the CA fingerprint and the
//	             admin token (mode 0600; copy it to an operator's machine to run satchel
//	             nodes, tokens and reports from there)
//
// The server's own TLS certificate is issued by its CA at every start, with a new key,
// for the host names and addresses it is told: agents pin the CA, not the certificate,
// so nothing needs to be kept.
//
// # Who may call what
//
// One HTTPS port serves three kinds of caller (package api lists the endpoints):
// enrollment needs no client certificate (the request proves possession of the key, and
// a bootstrap token or an operator's approval decides); the node endpoints need a client
// certificate from the CA, and on every request the node is looked up — it must be
// approved now and the certificate must be for the key on record — so revoking or
// forgetting a node takes effect on its next request, with no revocation list to expire;
// the admin endpoints need the admin token. Request bodies are capped (api.Max*Bytes).
//
// # Enrollment
//
// A node sends its name, a certificate request, its age recipient, machine ID and facts.
// A machine ID or key that another node name already has is a clone of an image and is
// refused, telling the machine to regenerate its identity; a name already enrolled with
// another key is refused until an operator forgets the old node. With a valid bootstrap
// token the node is approved at once; without one it is recorded as pending and polls
// until an operator approves it, comparing the short fingerprint of its key on both
// screens. An approved node gets its certificate in the answer to its next request, which
// carries the repository's root.json too, so a node enrolled through a pinned CA needs no
// other trust handed to it.
package server
