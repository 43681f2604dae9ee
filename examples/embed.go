// Package examples holds the example config repositories, embedded so that the binary
// carries them: satchel demo publishes the school server from it with no checkout at
// hand.
package examples

import "embed"

// SchoolServer is examples/school-server: the config repository of a school server (web
// filter, content library, NTP, accounts) for three schools of its inventory.
//
//go:embed school-server
var SchoolServer embed.FS
