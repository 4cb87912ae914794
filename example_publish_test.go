package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plexica/eventbus"
)

// PublishBatch validates every event before sending any, sends them
// together and reports each event's outcome.
func ExampleBus_PublishBatch() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, stop := exampleBus(ctx) // an embedded broker and a bus, as in Example
	defer stop()

	var batch []eventbus.BatchEvent
	for i, tenant := range []string{"acme", "globex", "acme"} {
		batch = append(batch, eventbus.BatchEvent{
			EventType: "core.invoice.issued",
			Data:      invoiceIssued{InvoiceID: fmt.Sprintf("inv-%d", i+1), Amount: 100 * (i + 1)},
			Metadata:  eventbus.PublishMetadata{TenantID: tenant},
		})
	}
	results, err := bus.PublishBatch(ctx, batch)
	if err != nil { // a *eventbus.BatchError: results say which events failed
		panic(err)
	}
	acked := 0
	for _, r := range results {
		if r.Err == nil && r.EventID != "" {
			acked++
		}
	}
	fmt.Printf("%d of %d acknowledged\n", acked, len(results))

	// One bad event fails the whole batch before anything is sent.
	batch[1].EventType = "core.invoice.issue" // not past tense
	_, err = bus.PublishBatch(ctx, batch)
	fmt.Println(errors.Is(err, eventbus.ErrInvalidTopic))
	// Output:
	// 3 of 3 acknowledged
	// true
}
