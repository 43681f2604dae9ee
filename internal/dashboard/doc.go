// Package dashboard is the fleet's web dashboard: server-rendered HTML pages (html/template,
// templates and styles embedded) that satchel server serves under Prefix, for the small
// team that looks after a thousand schools.
//
// # Pages
//
//   - Fleet: the counts (in sync, behind, failing, rolled back, pending approval, silent)
//     and a filterable, sortable, paginated table of nodes.
//   - Node: a node's certificate state, facts, releases and last runs, each failed or
//     changed resource with its diff and error; approve and revoke.
//   - Pending: enrollment requests with the fingerprints to compare; approve or reject.
//
// # Model
//
// A node's status is derived from its state and its newest report (registry.FleetStatus)
// against the latest release. Silence is judged against how the node reaches the office:
// a node whose last contact was a USB stick (its returns collected after its last network
// request) is a courier node and is silent only after CourierSilentAfter, not after the
// network's SilentAfter, so that an offline school is not shown as broken.
//
// # Access
//
// The operator logs in with the admin credential's token. A session is a random ID in a
// cookie (HttpOnly, Secure, SameSite=Strict, under Prefix) that names a session kept in
// memory, with its own CSRF token: every form carries it and every POST is checked against
// it, and cross-origin POSTs are refused whatever they carry (http.CrossOriginProtection).
// Sessions end after SessionLifetime, at logout, or when the server restarts.
package dashboard
