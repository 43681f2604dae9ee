// Package client talks to satchel server: a node's identity and enrollment, the node's
// calls over mutual TLS (facts, reports, renewal, and an HTTP client for the release
// repository), and the operator's admin calls.
//
// # A node's identity
//
// A node's identity lives in one directory (on a node, /var/lib/satchel/identity, mode
// 0700), made on first enrollment:
//
//	tls.key      the node's ECDSA P-256 key (PEM PKCS#8, 0600): its TLS client key
//	tls.crt      its certificate, once the server issued one (PEM)
//	age.key      its age X25519 identity (0600): what the server encrypts its secrets to
//	server.json  the server's URL, the pinned CA fingerprint and the node's name
//
// Keys are made once and kept: an enrollment retried, or waiting days for an operator,
// presents the same key and so the same short fingerprint. A machine cloned from an
// image that held an identity is refused by the server; --new-identity (NewIdentity)
// makes fresh keys.
//
// Every connection pins the server's CA by fingerprint (pki.PinnedServerConfig); the
// system's roots play no part.
package client
