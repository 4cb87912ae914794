package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
)

// A subscription that must handle its events strictly in order retries a
// failure in place: the event's key (here its tenant) waits until the
// handler succeeds, other keys go on, and nothing goes to the dead letter
// queue.
func ExampleSubscribe_retryInPlace() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, stop := exampleBus(ctx) // an embedded broker and a bus, as in Example
	defer stop()

	done := make(chan struct{})
	attempts := 0
	_, err := eventbus.Subscribe(ctx, bus, "core.invoice.paid", func(_ context.Context, ev eventbus.RawEvent) error {
		attempts++
		if attempts == 1 {
			fmt.Println("attempt 1: ledger busy")
			return errors.New("ledger busy") // transient: tried again in place
		}
		fmt.Printf("attempt %d: booked %s\n", attempts, ev.Data)
		close(done)
		return nil
	}, eventbus.InGroup("ledger"), eventbus.WithDelivery(eventbus.Delivery{OnFailure: eventbus.RetryInPlace}))
	if err != nil {
		panic(err)
	}
	if _, err := bus.Publish(ctx, "core.invoice.paid", map[string]int{"amount": 4200}, eventbus.PublishMetadata{TenantID: "acme"}); err != nil {
		panic(err)
	}
	<-done
	stats, _ := bus.DLQ().Stats(ctx, deadletter.Query{})
	fmt.Println("dead-letter entries:", stats.Total)
	// Output:
	// attempt 1: ledger busy
	// attempt 2: booked {"amount":4200}
	// dead-letter entries: 0
}
