// Package pki is the server's private certificate authority (issue 6, first slice): the
// CA every node certificate and the server's own certificate are issued by, so that all
// node traffic is mutual TLS and nodes pin one CA by its fingerprint.
//
// # Model
//
// A CA lives in a directory of mode 0700: ca.crt (PEM) and ca.key (PEM PKCS#8, mode 0600).
// Keys are ECDSA P-256: certificates and handshakes stay small, which counts on links
// where every kilobyte does. Init makes a CA once and never overwrites one: it writes both
// files in a staging directory beside the CA directory and renames it into place, so a
// crash leaves a whole CA or none (and a ".tmp-ca-*" directory that may be removed). Load
// refuses a key open to group or others, a key that does not match the certificate, and a
// certificate that is not a CA.
//
// A node sends a certificate signing request; SignNode checks its signature and issues a
// client certificate for the name the server decided (enrollment), never the name the
// request claims: the name is both the CommonName and a URI SAN "satchel-node:NAME", which
// NodeName reads back. Operators compare short fingerprints (ShortFingerprint) on two
// screens before approving a node. Agents trust the server by the CA's full fingerprint
// (PinnedServerConfig), not by the system's roots.
package pki
