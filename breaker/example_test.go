package breaker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/embedded"
)

// A bus whose breaker opens after 3 publishes in a row failed because the
// cluster is unavailable, and half-opens after 10 s; the bus reports its
// state, and OnStateChange each change.
func ExampleConfig() {
	ctx := context.Background()
	broker, err := embedded.Start(embedded.Config{})
	if err != nil {
		panic(err)
	}
	defer broker.Close()
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: broker.Addrs()})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	if err := client.Connect(ctx); err != nil {
		panic(err)
	}
	bus, err := eventbus.NewBus(client, eventbus.Config{Breaker: breaker.Config{
		FailureThreshold: 3,
		OpenTimeout:      10 * time.Second,
		OnStateChange: func(from, to breaker.State) {
			fmt.Println("publish circuit breaker:", from, "->", to)
		},
	}})
	if err != nil {
		panic(err)
	}
	defer func() { _ = bus.Shutdown(ctx) }()
	fmt.Println(bus.BreakerState(), bus.BreakerState() == breaker.Closed)
	// Output: closed true
}
