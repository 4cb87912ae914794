package outbox_test

import (
	"context"
	"log"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/outbox"
)

// A service writes a row and its event in one transaction; a relay
// publishes the event once the transaction committed; a consumer applies
// it once. (Not run: it needs a PostgreSQL and brokers.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@127.0.0.1:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	client, _ := eventbus.NewClient(eventbus.ClientConfig{Brokers: []string{"127.0.0.1:9092"}})
	bus, _ := eventbus.NewBus(client, eventbus.Config{})

	if err := outbox.Migrate(ctx, pool, outbox.Config{}); err != nil {
		log.Fatal(err)
	}

	// Publishing side: the order and its event commit together.
	type OrderPlaced struct {
		OrderID string `json:"orderId"`
	}
	orderPlaced := eventbus.Name[OrderPlaced]("core.order.placed")
	w, _ := outbox.NewWriter(bus, outbox.Config{})
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO orders (id) VALUES ($1)", "o-1"); err != nil {
			return err
		}
		_, err := outbox.Publish(ctx, tx, w, orderPlaced, OrderPlaced{OrderID: "o-1"},
			eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey("o-1"))
		return err
	})
	if err != nil {
		log.Fatal(err)
	}

	// The relay (here in the same process; or `eventbus serve --outbox-dsn`).
	relay, _ := outbox.NewRelay(pool, bus, outbox.RelayConfig{})
	go relay.Run(ctx)

	// Consuming side: one invoice per order, however often it is delivered.
	in, _ := outbox.NewInbox(pool, outbox.InboxConfig{})
	go in.Run(ctx)
	_, err = eventbus.Subscribe(ctx, bus, orderPlaced, outbox.Handle(in, "billing", func(ctx context.Context, tx pgx.Tx, ev eventbus.Event[OrderPlaced]) error {
		_, err := tx.Exec(ctx, "INSERT INTO invoices (order_id) VALUES ($1)", ev.Data.OrderID)
		return err
	}), eventbus.InGroup("billing"))
	if err != nil {
		log.Fatal(err)
	}
}
