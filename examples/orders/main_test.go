package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// TestOrdersAreBilledOnce runs the service against a throwaway PostgreSQL
// and a broker: each order placed reaches the brokers through the outbox,
// and a second delivery of an event (same ID) writes no second invoice.
func TestOrdersAreBilledOnce(t *testing.T) {
	dsn := eventbustest.Postgres(t)
	brokers := eventbustest.Brokers(t)
	tenant := eventbustest.UniqueID("acme")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *Service, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Brokers: brokers, DSN: dsn, Tenant: tenant, Ready: func(s *Service) { ready <- s }})
	}()
	var s *Service
	select {
	case s = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(eventbustest.WaitTimeout):
		t.Fatal("the service did not start")
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	// Another team watches core.order.placed.
	platform := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	placed := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, platform, OrderPlacedEvent.String(), placed.Handle, eventbus.InGroup(eventbustest.UniqueID("observer")), eventbus.ForTenant(tenant))

	first, err := s.PlaceOrder(ctx, "ada", 4200)
	if err != nil {
		t.Fatal(err)
	}
	ev := placed.WaitFor(t, 1)[0]
	got, err := eventbus.Decode[OrderPlaced](ev)
	if err != nil || got.Data != (OrderPlaced{OrderID: first, Customer: "ada", Amount: 4200}) || got.TenantID != tenant {
		t.Fatalf("core.order.placed = %+v (%v)", got, err)
	}

	// The same event delivered again, as after a relay or consumer crash,
	// then a second order of the same customer (same key, so billing
	// handles it after the duplicate).
	dup, err := platform.EncodeEvent(OrderPlacedEvent.String(), got.Data,
		eventbus.PublishMetadata{TenantID: tenant}, eventbus.WithPartitionKey("ada"), eventbus.WithEventID(ev.ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := platform.PublishEncoded(ctx, []eventbus.EncodedEvent{dup}); err != nil {
		t.Fatal(err)
	}
	second, err := s.PlaceOrder(ctx, "ada", 1500)
	if err != nil {
		t.Fatal(err)
	}
	eventbustest.Eventually(t, "the second invoice", func() error {
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM invoices WHERE order_id = $1", second).Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("invoices of order %d: %d (%v)", second, n, err)
		}
		return nil
	})
	if n := len(placed.WaitFor(t, 3)); n != 3 {
		t.Fatalf("the observer saw %d events, want 3", n)
	}
	var invoices, total int64
	if err := pool.QueryRow(ctx, "SELECT count(*), sum(amount) FROM invoices").Scan(&invoices, &total); err != nil {
		t.Fatal(err)
	}
	if invoices != 2 || total != 5700 {
		t.Fatalf("%d invoices for %d cents, want 2 for 5700", invoices, total)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Stop: %v", err)
	}
}
