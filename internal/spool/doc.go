// Package spool keeps what a node must hand on later — each cycle's run report, facts —
// in a directory that survives reboots and outages, until an uploader sends it to the
// server or a technician carries it back on a USB stick.
//
// # Model
//
// A spool is one directory (on a node, /var/lib/satchel/spool, mode 0700) holding one file
// per entry. [Spool.Put] writes an entry and names it after the moment it was spooled, its
// kind and 8 random hex digits:
//
//	20261126T163000.123456789Z-report-1a2b3c4d.json
//
// The time is UTC with a fixed width, so names sort in time order and [Spool.List] is a
// directory listing sorted by name, oldest first. Put never gives a name that sorts before
// an existing entry: if the clock has stepped back (a node whose clock was wrong for
// months, then corrected), the new name's time is just after the newest entry's, so names
// stay in the order entries were spooled, at the price of a time in the name that may be
// later than the true one. The entry's content carries its own times.
//
// Names are checked before any file is opened: [Spool.Read] and [Spool.Remove] refuse
// anything that is not an entry's name ("..", "a/b", "x"), so a name that came from a
// bundle or a wire message cannot reach outside the directory.
//
// # Crash safety
//
// An entry is written to a temporary file (".tmp-*") in the same directory, flushed to
// disk, renamed to its name, and then the directory is flushed: after a crash or a power
// cut an entry is whole or absent, never half-written. [Open] removes the temporary files
// a crash left behind; List ignores them, and any other file that is not an entry.
//
// # Pruning by size
//
// A node at the end of a dead link may spool for months, and its disk must not fill: the
// spool has a size cap (the total size of the entries' content). After each Put,
// [Spool.Prune] removes entries oldest first until the total is within the cap. The newest
// entry is never removed, even when it alone is over the cap: it is the node's latest word
// on its state, the one the office most needs, and a Put whose entry vanished at once
// would look like a success and lose everything. Old reports matter less than new ones,
// so losing the oldest first is the right end to drop.
package spool
