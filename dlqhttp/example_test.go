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

	broker, err := embedded.Start(embedded.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: broker.Addrs(), Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	bus, err := eventbus.NewBus(client, eventbus.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Shutdown(ctx)

	// A failure the handler called permanent: max-retries-exceeded at once,
	// so the stats below do not change under an automatic retry.
	_, err = bus.DLQ().RouteToDLQ(ctx, "core.order.placed", eventbus.RawEvent{
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
