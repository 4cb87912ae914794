package eventbus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/plexica/eventbus"
)

type invoiceIssued struct {
	InvoiceID string `json:"invoiceId"`
	Amount    int    `json:"amount"`
}

type paymentReceived struct {
	InvoiceID string `json:"invoiceId"`
}

// Typed names: a handler or a payload of another type does not compile.
const (
	invoiceIssuedEvent   eventbus.Name[invoiceIssued]   = "core.invoice.issued"
	paymentReceivedEvent eventbus.Name[paymentReceived] = "core.payment.received"
)

// billing lists its handlers; InitializeHandlers subscribes them all.
type billing struct{ done chan string }

func (b *billing) EventHandlers() []eventbus.HandlerSpec {
	return []eventbus.HandlerSpec{
		eventbus.On(invoiceIssuedEvent, b.onInvoiceIssued, eventbus.InGroup("billing")),
		eventbus.On(paymentReceivedEvent, b.onPaymentReceived, eventbus.InGroup("billing")),
	}
}

func (b *billing) onInvoiceIssued(_ context.Context, ev eventbus.Event[invoiceIssued]) error {
	b.done <- fmt.Sprintf("%s: invoice %s for %d", ev.TenantID, ev.Data.InvoiceID, ev.Data.Amount)
	return nil
}

func (b *billing) onPaymentReceived(_ context.Context, ev eventbus.Event[paymentReceived]) error {
	b.done <- fmt.Sprintf("%s: invoice %s paid", ev.TenantID, ev.Data.InvoiceID)
	return nil
}

// A type declares its handlers with On; InitializeHandlers subscribes each
// on a Bus (or a PluginClient or PluginHost) and Cleanup unsubscribes them.
// Handlers sharing a group share one consumer group.
func ExampleInitializeHandlers() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, stop := exampleBus(ctx) // an embedded broker and a bus, as in Example
	defer stop()

	b := &billing{done: make(chan string)}
	h, err := eventbus.InitializeHandlers(ctx, bus, b) // undoes itself on error
	if err != nil {
		panic(err)
	}
	defer h.Cleanup(ctx)
	fmt.Println("subscriptions:", len(h.SubscriptionIDs()))

	meta := eventbus.PublishMetadata{TenantID: "acme"}
	if _, err := eventbus.Publish(eventbus.WithEventContext(ctx, meta), bus, invoiceIssuedEvent, invoiceIssued{"inv-1", 4200}); err != nil {
		panic(err)
	}
	fmt.Println(<-b.done)
	if _, err := eventbus.Publish(eventbus.WithEventContext(ctx, meta), bus, paymentReceivedEvent, paymentReceived{"inv-1"}); err != nil {
		panic(err)
	}
	fmt.Println(<-b.done)
	// Output:
	// subscriptions: 2
	// acme: invoice inv-1 for 4200
	// acme: invoice inv-1 paid
}

// WithPublish wraps a function so that its result is published when it
// succeeds. On a Bus the tenant (and user and correlation) come from the
// context; inside a handler that is the handled event's.
func ExampleWithPublish() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, stop := exampleBus(ctx)
	defer stop()

	received := make(chan eventbus.Event[invoiceIssued], 1)
	_, err := eventbus.Subscribe(ctx, bus, invoiceIssuedEvent, func(_ context.Context, ev eventbus.Event[invoiceIssued]) error {
		received <- ev
		return nil
	}, eventbus.InGroup("mailer"))
	if err != nil {
		panic(err)
	}

	issue := eventbus.WithPublish(bus, invoiceIssuedEvent,
		func(_ context.Context, amount int) (invoiceIssued, error) {
			// store the invoice here; an error publishes nothing
			return invoiceIssued{InvoiceID: "inv-7", Amount: amount}, nil
		})

	ctx = eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: "acme", CorrelationID: "req-42"})
	inv, err := issue(ctx, 990)
	if err != nil {
		panic(err)
	}
	fmt.Println("issued", inv.InvoiceID)
	ev := <-received
	fmt.Println(ev.TenantID, ev.Data.InvoiceID, ev.Data.Amount, ev.Metadata.CorrelationID)
	// Output:
	// issued inv-7
	// acme inv-7 990 req-42
}
