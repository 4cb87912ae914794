// Command mismatch must not compile: it publishes core.user.created with
// the data of core.user.login (TestMismatchedPayloadDoesNotCompile).
package main

import (
	"context"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
)

func main() {
	var bus *eventbus.Bus
	_, _ = eventbus.Publish(context.Background(), bus, catalog.UserCreated, catalog.UserLoginData{UserID: "u-1"})
}
