// Package demo is satchel demo: the main job end to end on one machine, for a newcomer.
// A central office (satchel server, on 127.0.0.1, its data in a directory) enrolls a few
// simulated school servers with a bootstrap token; each school is an agent with its own
// state directory that converges a directory standing for the school server's disk. The
// office publishes the example school-server release and every school converges to it;
// then a second release (a web filter change and a new piece of content) reaches the
// connected schools over the network and one school with no link by a USB stick (a
// directory): exported, imported, and its reports collected. A summary table and the
// dashboard's address end the story; the server keeps serving until it is stopped.
//
// Everything lives in the demo's directory; nothing runs after it stops.
package demo
