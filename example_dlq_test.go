package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/embedded"
)

// exampleBusWith is exampleBus with a configuration of its own.
func exampleBusWith(ctx context.Context, cfg eventbus.Config) (bus *eventbus.Bus, stop func()) {
	broker, err := embedded.Start(embedded.Config{})
	if err != nil {
		panic(err)
	}
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: broker.Addrs()})
	if err != nil {
		panic(err)
	}
	if err := client.Connect(ctx); err != nil {
		panic(err)
	}
	bus, err = eventbus.NewBus(client, cfg)
	if err != nil {
		panic(err)
	}
	return bus, func() {
		_ = bus.Shutdown(context.Background())
		client.Close()
		broker.Close()
	}
}

// waitForEntry polls the dead letter queue until topic has an entry in
// status, and returns it.
func waitForEntry(ctx context.Context, q *eventbus.DeadLetterQueue, topic string, status deadletter.Status) deadletter.Entry {
	for {
		entries, _, err := q.List(ctx, deadletter.Query{Topic: topic, Status: status})
		if err != nil {
			panic(err)
		}
		if len(entries) > 0 {
			return entries[0]
		}
		select {
		case <-ctx.Done():
			panic(fmt.Sprintf("no %s entry for %s: %v", status, topic, ctx.Err()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A dead-letter round trip: the handler fails, the event's entry appears in
// the dead letter queue, an operator fixes the cause and retries it by hand,
// the retry reaches the group that failed and the entry is resolved.
func ExampleDeadLetterQueue_Retry() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The first automatic retry an hour away: only the manual retry runs here.
	bus, stop := exampleBusWith(ctx, eventbus.Config{DLQ: deadletter.Config{RetryBackoff: time.Hour}})
	defer stop()
	// This process runs the queue (eventbus serve does): it owns the
	// entries, applies failures and operators' retries, and sends retries.
	if err := bus.DLQ().Start(ctx); err != nil {
		panic(err)
	}

	var mailServerUp atomic.Bool
	sent := make(chan string, 1)
	_, err := eventbus.Subscribe(ctx, bus, invoiceIssuedEvent, func(_ context.Context, ev eventbus.Event[invoiceIssued]) error {
		if !mailServerUp.Load() {
			return errors.New("mail server unreachable")
		}
		sent <- ev.Data.InvoiceID
		return nil
	}, eventbus.InGroup("mailer"))
	if err != nil {
		panic(err)
	}
	if _, err := eventbus.Publish(eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: "acme"}), bus, invoiceIssuedEvent, invoiceIssued{"inv-9", 300}); err != nil {
		panic(err)
	}

	q := bus.DLQ()
	entry := waitForEntry(ctx, q, "core.invoice.issued", deadletter.StatusPending)
	fmt.Println(entry.Status, entry.ConsumerGroup, entry.FailureReason)

	mailServerUp.Store(true) // the cause is fixed
	if err := q.Retry(ctx, entry.ID); err != nil {
		panic(err)
	}
	fmt.Println("mailed", <-sent)
	entry = waitForEntry(ctx, q, "core.invoice.issued", deadletter.StatusResolved)
	fmt.Println(entry.Status)
	// Output:
	// pending mailer mail server unreachable
	// mailed inv-9
	// resolved
}

// A handler returns Permanent for a failure that no retry can fix: the
// event goes to the dead letter queue with no automatic retries left. A
// manual retry still works, once the cause is fixed.
func ExamplePermanent() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, stop := exampleBus(ctx) // an embedded broker and a bus, as in Example
	defer stop()
	if err := bus.DLQ().Start(ctx); err != nil { // this process runs the queue
		panic(err)
	}

	_, err := eventbus.Subscribe(ctx, bus, invoiceIssuedEvent, func(_ context.Context, ev eventbus.Event[invoiceIssued]) error {
		if ev.Data.Amount < 0 {
			return eventbus.Permanent(fmt.Errorf("invoice %s: negative amount %d", ev.Data.InvoiceID, ev.Data.Amount))
		}
		return nil
	}, eventbus.InGroup("ledger"))
	if err != nil {
		panic(err)
	}
	if _, err := eventbus.Publish(eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: "acme"}), bus, invoiceIssuedEvent, invoiceIssued{"inv-3", -5}); err != nil {
		panic(err)
	}

	entry := waitForEntry(ctx, bus.DLQ(), "core.invoice.issued", deadletter.StatusMaxRetriesExceeded)
	fmt.Println(entry.Status, entry.Permanent, entry.RetryCount)
	fmt.Println(entry.FailureReason)
	// Output:
	// max-retries-exceeded true 0
	// permanent: invoice inv-3: negative amount -5
}

// A handler returns RetryAfter when it knows when to come back (a
// downstream API said so): the automatic retry is sent after that delay
// instead of the backoff schedule. Automatic retries are sent by a process
// that runs the dead letter queue (DeadLetterQueue.Start, as eventbus serve
// does).
func ExampleRetryAfter() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Without RetryAfter the first retry would wait an hour.
	bus, stop := exampleBusWith(ctx, eventbus.Config{DLQ: deadletter.Config{RetryBackoff: time.Hour}})
	defer stop()
	if err := bus.DLQ().Start(ctx); err != nil { // this process sends the automatic retries
		panic(err)
	}

	attempts := 0
	done := make(chan struct{})
	_, err := eventbus.Subscribe(ctx, bus, invoiceIssuedEvent, func(_ context.Context, ev eventbus.Event[invoiceIssued]) error {
		attempts++
		if attempts == 1 {
			fmt.Println("attempt 1: payment API rate-limited, come back in 200ms")
			return eventbus.RetryAfter(errors.New("rate limited"), 200*time.Millisecond)
		}
		fmt.Printf("attempt %d: charged %s\n", attempts, ev.Data.InvoiceID)
		close(done)
		return nil
	}, eventbus.InGroup("payments"))
	if err != nil {
		panic(err)
	}
	if _, err := eventbus.Publish(eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: "acme"}), bus, invoiceIssuedEvent, invoiceIssued{"inv-4", 120}); err != nil {
		panic(err)
	}
	<-done
	entry := waitForEntry(ctx, bus.DLQ(), "core.invoice.issued", deadletter.StatusResolved)
	fmt.Println(entry.Status, entry.RetryCount)
	// Output:
	// attempt 1: payment API rate-limited, come back in 200ms
	// attempt 2: charged inv-4
	// resolved 1
}
