// Package preview shows what a release would change on every node before it ships: it
// evaluates the new config and the current release's config for each node, from the
// facts the node last reported, and compares the two catalogs resource by resource (the
// idea of octocatalog-diff, built in).
//
// # Model
//
// A node's change is the set of resources added, removed, or changed (with the names of
// the attributes that differ, or of their other fields: dependencies, notifications).
// Values are compared as the catalog holds them (canonical JSON), so a file whose content
// comes from files/ shows as changed when its bytes do. Secrets are neither read nor
// shown: secret() stands for a placeholder naming the secret, so a changed value is
// invisible but a change of secret is not, and sensitive attributes are reported by name
// only.
//
// A node that never reported facts is checked as satchel check does, with unknown facts:
// it can fail, but it has no change to show. A node whose new catalog cannot be made
// fails: its error is what the node would hit. Nodes with identical changes are grouped,
// so a fleet of a thousand schools reads as a few lines.
package preview
