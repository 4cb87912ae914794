package dlqhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
)

// Mount the DLQ API on a bus running against the embedded broker, record a
// failed event, and read the stats as an admin and as another tenant.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	bus, stop := exampleBus(ctx, quiet)
	defer stop()

	// A failure the handler called permanent: max-retries-exceeded at once,
	// so the stats below do not change under an automatic retry.
	_, err := bus.DLQ().RouteToDLQ(ctx, "core.order.placed", eventbus.RawEvent{
		TenantID:  "acme",
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Data:      json.RawMessage(`{"orderId":"o-1","card":{"token":"tok_visa"}}`),
	}, "fulfilment", eventbus.Permanent(errors.New("payment declined")))
	if err != nil {
		log.Fatal(err)
	}

	admin, tenants, err := dlqhttp.ParseTokens("admin-token-0123456789,globex-token-0123456789=tenant:globex")
	if err != nil {
		log.Fatal(err)
	}
	api, err := dlqhttp.New(bus.DLQ(), dlqhttp.Options{AdminTokens: admin, TenantTokens: tenants, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()

	for _, token := range []string{"admin-token-0123456789", "globex-token-0123456789"} {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/dlq/stats", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := srv.Client().Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Printf("%d %s", res.StatusCode, body)
	}
	// Output:
	// 200 {"total":1,"byStatus":{"max-retries-exceeded":1,"pending":0,"resolved":0,"retrying":0},"byTopic":{"core.order.placed":1},"byReason":{"permanent: payment declined":1}}
	// 200 {"total":0,"byStatus":{"max-retries-exceeded":0,"pending":0,"resolved":0,"retrying":0},"byTopic":{},"byReason":{}}
}

// Call the DLQ API from Go: list the failed events of a topic, read one,
// and retry it, with errors.Is telling a missing entry or a refused retry.
func ExampleClient() {
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	// A bus on the embedded broker, with one failed event in its DLQ, and
	// the API on it (see the package example).
	bus, stop := exampleBus(ctx, quiet)
	defer stop()
	_, err := bus.DLQ().RouteToDLQ(ctx, "core.order.placed", eventbus.RawEvent{
		TenantID:  "acme",
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Data:      json.RawMessage(`{"orderId":"o-1"}`),
	}, "fulfilment", eventbus.Permanent(errors.New("payment declined")))
	if err != nil {
		log.Fatal(err)
	}
	api, err := dlqhttp.New(bus.DLQ(), dlqhttp.Options{AdminTokens: []string{"admin-token-0123456789"}, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()

	// The client: the server's address and a token.
	c, err := dlqhttp.NewClient(srv.URL, "admin-token-0123456789", &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	// The words and types of bus.DLQ(), over HTTP.
	items, total, err := c.List(ctx, deadletter.Query{Topic: "core.order.placed", Status: deadletter.StatusMaxRetriesExceeded, Limit: 20})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d of %d entry\n", len(items), total)
	entry, err := c.Get(ctx, items[0].ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(entry.ConsumerGroup, entry.Status, entry.FailureReason)

	// The automatic schedule does not retry a permanent failure...
	err = c.Retry(ctx, entry.ID, deadletter.RetryIfAllowed())
	fmt.Println("retry refused:", errors.Is(err, deadletter.ErrRetryNotAllowed))
	// ...but an operator may.
	if err := c.Retry(ctx, entry.ID); err != nil {
		log.Fatal(err)
	}
	if err := c.Delete(ctx, entry.ID); err != nil {
		log.Fatal(err)
	}
	_, err = c.Get(ctx, entry.ID)
	fmt.Println("deleted:", errors.Is(err, deadletter.ErrNotFound))
	var apiErr *dlqhttp.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Code)
	}
	// Output:
	// 1 of 1 entry
	// fulfilment max-retries-exceeded permanent: payment declined
	// retry refused: true
	// deleted: true
	// 404 not_found
}

// exampleBus starts an embedded broker and a bus on it; stop shuts both down.
func exampleBus(ctx context.Context, logger *slog.Logger) (bus *eventbus.Bus, stop func()) {
	broker, err := embedded.Start(embedded.Config{})
	if err != nil {
		log.Fatal(err)
	}
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: broker.Addrs(), Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	bus, err = eventbus.NewBus(client, eventbus.Config{})
	if err != nil {
		log.Fatal(err)
	}
	if err := bus.DLQ().Start(ctx); err != nil { // this process runs the queue, as eventbus serve does
		log.Fatal(err)
	}
	return bus, func() {
		_ = bus.Shutdown(ctx)
		client.Close()
		broker.Close()
	}
}
