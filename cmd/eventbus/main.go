// Command eventbus runs the service side of the Plexica event bus: with no
// brokers given, an embedded Kafka-protocol broker for development. Run
// "eventbus --help" for its commands; they live in cmd/eventbus/internal/cli.
// The command is a module of its own, github.com/plexica/eventbus/cmd/eventbus,
// so that the library's go.mod carries none of its dependencies.
package main

import (
	"os"

	"github.com/plexica/eventbus/cmd/eventbus/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
