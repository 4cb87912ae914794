// Command eventbus runs the service side of the Plexica event bus: with no
// brokers given, an embedded Kafka-protocol broker for development. Run
// "eventbus --help" for its commands; they live in internal/cli.
package main

import (
	"os"

	"github.com/plexica/eventbus/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
