package consoleapi_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/audit"
	"github.com/plexica/eventbus/consoleapi"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
)

// Mount the DLQ API and the console API with one set of named tokens and
// one audit trail, as eventbus serve does, and ask for the consumer groups
// as an admin and as a tenant.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	broker, err := embedded.Start(embedded.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: broker.Addrs()})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if err := client.Connect(ctx); err != nil {
		log.Fatal(err)
	}
	bus, err := eventbus.NewBus(client, eventbus.Config{Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = bus.Shutdown(context.Background()) }()

	tokens, err := dlqhttp.ParseNamedTokens("ana:admin-token-0123456789,acme-ops:acme-token-0123456789=tenant:acme")
	if err != nil {
		log.Fatal(err)
	}
	auth, err := dlqhttp.NewAuthenticator(dlqhttp.Options{Tokens: tokens})
	if err != nil {
		log.Fatal(err)
	}
	trail, err := audit.Open(ctx, client, audit.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer trail.Close()
	adm, err := client.Admin()
	if err != nil {
		log.Fatal(err)
	}
	dlqAPI, err := dlqhttp.New(bus.DLQ(), dlqhttp.Options{Authenticator: auth, Audit: trail, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	opsAPI, err := consoleapi.New(consoleapi.Options{Auth: auth, Admin: adm, Audit: trail, KafkaOpts: client.KafkaOpts(), Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/dlq/", dlqAPI)
	for _, p := range []string{"/api/audit", "/api/groups", "/api/groups/", "/api/topics", "/api/tail"} {
		mux.Handle(p, opsAPI)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, token := range []string{"admin-token-0123456789", "acme-token-0123456789"} {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/groups", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := srv.Client().Do(req)
		if err != nil {
			log.Fatal(err)
		}
		res.Body.Close()
		fmt.Println(res.StatusCode)
	}
	// Output:
	// 200
	// 403
}
