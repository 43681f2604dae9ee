// Package engine converges a machine to a catalog.
//
// Run builds the dependency graph (package catalog), rejects cycles by naming the resources
// in them, and visits resources in a deterministic order: dependencies first, ties broken by
// address. For each resource it calls the type's one CheckApply contract (package resource),
// with apply off under --noop, so a plan and a real run share every line of checking code.
//
// Independent resources are converged concurrently (Options.Parallel workers): a resource
// is handed to a worker only once everything it depends on has finished, and resources that
// are resource.Serial (commands, package managers) still run one at a time. The report lists
// resources in the deterministic order whatever the timing, so parallel and sequential runs
// give identical reports.
//
// Resources that are resource.Batcher (packages) are held back as they become ready and
// handed out together, as one task, only when nothing else can run: a run's independent
// package changes then go to the package manager in as few transactions as the graph allows
// (one apt-get install for twenty packages, not twenty), and their state is read once per
// batch (one dpkg-query).
//
// Failures stay local: a resource that fails marks everything that depends on it, directly or
// not, as skipped with the cause, and the run goes on with the rest. A resource that changed
// (or, under --noop, would change) notifies its subscribers; each notified resource is
// refreshed once, right after it is itself checked, which is necessarily after all of its
// notifiers, since notification implies ordering.
//
// The outcome is a report (package report), with each resource's notes (what could not be
// checked or done on this machine, such as a service's running under --root). Before a result
// enters it, every value of a sensitive attribute is replaced by "(sensitive)" wherever it
// appears: in changes, diffs, notes, errors and command output. Runs on one machine are
// serialised by a lock file (Lock).
package engine
