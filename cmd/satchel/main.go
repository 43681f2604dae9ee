// Command satchel keeps fleets of servers configured; see `satchel --help`.
package main

import (
	"os"

	"github.com/satchelcm/satchel/internal/cli"
)

func main() {
	os.Exit(cli.RunMain())
}
