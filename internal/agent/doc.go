// Package agent keeps a node converged to the newest good release of its signed release
// repositories (package release), forever: the daemon behind satchel agent.
//
// # A cycle
//
// Every interval, plus a random splay (schedule.go), the agent runs a cycle (cycle.go):
//
//  1. Facts are gathered, and the run lock (shared with satchel apply) is taken.
//  2. The trust metadata is refreshed from the first repository that answers, in the
//     order configured: an http(s) URL or a directory (a USB stick, a LAN mirror).
//     release.Refresh checks signatures, versions and expiry (with the node's clock policy)
//     and returns the newest release's verified manifest; an older repository than the
//     node has seen is refused (ErrRollback) whatever brings it.
//  3. If that release is newer than the last good one, and newer than any that failed,
//     the config tree it names is pulled into the node's content store (package transfer:
//     only the missing chunks, by delta from the last good release's tree where the
//     repository has one, resumable, capped by the bandwidth limit), checked out into
//     releases/N/ and compiled for this node; then the content trees its tree resources
//     mirror are pulled the same way. Everything is verified by hash before it is stored.
//     Outside the transfer windows a cycle may download only SmallTransfer bytes: a small
//     config change goes through at once, large content waits for the window (the pull
//     is cut; what it stored stays, and the next pull resumes).
//  4. The catalog is applied (package engine), then the release's health checks run, each
//     argv without a shell, with its timeout, in the converged root.
//  5. If the run has a failed or skipped resource, or a health check fails, the release is
//     rolled back: every file the run replaced or removed is put back from the backup
//     store, what it created is removed, then the last good release is applied as usual. The failed release is
//     remembered and never tried again; a newer one is. A node with no good release yet
//     has nothing to roll back to: it keeps what the release did and tries it again at the
//     next cycle (a package mirror that was down may be up by then).
//  6. Otherwise — nothing new, no repository reachable, a release that could not be
//     fetched or waits for a window — the last good release is applied again from the
//     local store and its checkout, with no link needed: drift is corrected even offline.
//  7. The cycle's report (the run report plus release, rollback, health checks and transfer
//     statistics) goes to the spool (package spool), which survives reboots and is pruned
//     by size, and the state is saved.
//
// A cycle that ends in an error counts towards an exponential back-off, never longer than
// the interval. When the agent is stopped (the first SIGTERM), the resources in flight
// finish, nothing else starts, and the cycle is recorded as interrupted: a release
// interrupted this way is applied again at the next start, not rolled back. A second
// SIGTERM interrupts what runs.
//
// An attempt at a release is recorded (State.Attempt, with the backup store's mark) before
// its run starts, and closed once the release is good or rolled back. An agent that died
// during an attempt (a power cut, SIGKILL after a stop that took too long) finds it open at
// its next start: the first time, it tries the release again; the second time, it rolls it
// back as failed (a release that reboots the machine in the middle of its run). A rollback
// saves its plan before it changes anything, so that a death during the rollback is
// followed by the same rollback.
//
// # State
//
// The state directory (default /var/lib/satchel, mode 0700) holds:
//
//	trust/        the node's trust (release.TrustInit, release.Refresh): the pinned root,
//	              the newest metadata seen, the highest release and the newest signed time
//	store/        the content store: config trees and content libraries
//	releases/N/   release N's config repository, checked out (the last good one, and
//	              the one being tried)
//	agent.json    State: the last good release, the highest failed one, the last and next
//	              run, the last error, the failures in a row
//	spool/        cycle reports waiting to be carried to the office
//	backups/      what runs replaced (package backup): what rollbacks restore
//	catalogs/     compiled catalogs (package catcache)
//	run.lock      one run at a time, shared with satchel apply
//	agent.lock    one agent per state directory
//
// Every file is written atomically; the checkout of a release is checked against its tree
// at each cycle and repaired.
//
// # What a rollback cannot undo
//
// Rollback restores the files the failed run replaced or removed (their previous versions
// are in the backup store, found by the attempt's mark, not by the clock), removes the
// files and links it created where nothing was before (saved to the backup store first),
// and then re-applies the last good release, which converges everything that release
// manages. Directories the failed release created stay, and so do the effects of its
// commands and package transactions, beyond what the good release puts back. After an
// agent's death during the attempt, the failed run's report is lost: its replaced files are
// restored, but what it created is not known and stays.
package agent
