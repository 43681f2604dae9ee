// Package catalog defines the catalog: what one node must look like, as plain data.
//
// The configuration language (package lang) compiles a config repository for one node (a name
// plus its facts) into a Catalog. Everything downstream consumes only this one format, never
// HCL: the engine converges a machine to it, tests compare it against golden files, and the
// server's fleet preview diffs the catalogs of two releases. This is Caddy's idea of a human
// syntax adapted into one canonical JSON form.
//
// # Model
//
// A Catalog is a versioned list of Resources sorted by Address. An address is TYPE.NAME, or
// TYPE.NAME["KEY"] for an instance created by for_each, and is stable across runs and releases
// so that reports and previews can be compared. A resource carries:
//
//   - Attributes: typed values (JSON) already checked against the type's schema, with defaults
//     filled in, so the catalog says everything the engine will do;
//   - Sensitive: the names of attributes whose values are secrets and must never be shown;
//   - Require: addresses that must be converged first (explicit require/before, the reverse of
//     notify/subscribe, and automatic edges such as a file's managed parent directory);
//   - Notify: addresses to refresh (restart, re-run) when this resource changes.
//
// Graph orders the resources: dependencies first, ties broken by address, so two runs of the
// same catalog always visit resources in the same order. A cycle is an error that names every
// resource in it.
//
// # Canonical JSON
//
// Marshal writes the catalog with sorted object keys, no HTML escaping and two-space
// indentation; Unmarshal refuses unknown formats, unknown fields, duplicate or malformed
// addresses and dangling edges, so a catalog that decodes is one the engine can run.
package catalog
