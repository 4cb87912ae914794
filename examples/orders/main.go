// Command orders is a service that keeps its orders in PostgreSQL and
// publishes core.order.placed through the transactional outbox
// (github.com/plexica/eventbus/outbox): the order row and its event are
// written in one transaction, so the event is published if and only if the
// order exists. A relay in the same process sends committed events to the
// brokers, and the service's billing side, subscribed through the Inbox,
// writes one invoice per order however often the event is delivered.
//
//	go run ./examples/orders -brokers 127.0.0.1:9092 -dsn postgres://app@127.0.0.1:5432/app -tenant acme
//	curl -X POST 'localhost:8080/orders?customer=ada&amount=4200'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/outbox"
)

// OrderPlaced is the data of core.order.placed.
type OrderPlaced struct {
	OrderID  int64  `json:"orderId"`
	Customer string `json:"customer"`
	Amount   int64  `json:"amount"` // cents
}

// OrderPlacedEvent is the event the service publishes.
var OrderPlacedEvent = eventbus.Name[OrderPlaced]("core.order.placed")

// schema is the service's own tables (the outbox's are made by outbox.Migrate).
const schema = `
CREATE TABLE IF NOT EXISTS orders (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer text NOT NULL,
	amount bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS invoices (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	order_id bigint NOT NULL,
	amount bigint NOT NULL
)`

// Config is the service's configuration.
type Config struct {
	Brokers []string
	DSN     string
	// Tenant is the tenant whose orders the service takes.
	Tenant string
	Logger *slog.Logger
	// Ready, when set, is called by Run once the service can take orders.
	Ready func(*Service)
}

// Service places orders and bills them.
type Service struct {
	pool   *pgxpool.Pool
	writer *outbox.Writer
	tenant string
}

// PlaceOrder inserts an order and its core.order.placed event in one
// transaction and returns the order's ID.
func (s *Service) PlaceOrder(ctx context.Context, customer string, amount int64) (int64, error) {
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, "INSERT INTO orders (customer, amount) VALUES ($1, $2) RETURNING id", customer, amount).Scan(&id)
		if err != nil {
			return err
		}
		_, err = outbox.Publish(ctx, tx, s.writer, OrderPlacedEvent,
			OrderPlaced{OrderID: id, Customer: customer, Amount: amount},
			eventbus.PublishMetadata{TenantID: s.tenant}, eventbus.WithPartitionKey(customer))
		return err
	})
	return id, err
}

// bill is the billing side's handler: the invoice and the inbox record
// commit together, so a redelivered event writes no second invoice.
func bill(ctx context.Context, tx pgx.Tx, ev eventbus.Event[OrderPlaced]) error {
	_, err := tx.Exec(ctx, "INSERT INTO invoices (order_id, amount) VALUES ($1, $2)", ev.Data.OrderID, ev.Data.Amount)
	return err
}

// Run runs the service until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: cfg.Brokers, ClientID: "orders", Logger: cfg.Logger})
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Connect(ctx); err != nil {
		return err
	}
	bus, err := eventbus.NewBus(client, eventbus.Config{})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = bus.Shutdown(sctx)
	}()
	pool, err := pgxpool.New(ctx, cfg.DSN)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := outbox.Migrate(ctx, pool, outbox.Config{}); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, schema); err != nil {
		return err
	}

	writer, err := outbox.NewWriter(bus, outbox.Config{})
	if err != nil {
		return err
	}
	relay, err := outbox.NewRelay(pool, bus, outbox.RelayConfig{Logger: cfg.Logger})
	if err != nil {
		return err
	}
	inbox, err := outbox.NewInbox(pool, outbox.InboxConfig{Logger: cfg.Logger})
	if err != nil {
		return err
	}
	_, err = eventbus.Subscribe(ctx, bus, OrderPlacedEvent, outbox.Handle(inbox, "billing", bill), eventbus.InGroup("billing"), eventbus.ForTenant(cfg.Tenant))
	if err != nil {
		return err
	}
	errs := make(chan error, 2)
	go func() { errs <- relay.Run(ctx) }()
	go func() { errs <- inbox.Run(ctx) }()
	if cfg.Ready != nil {
		cfg.Ready(&Service{pool: pool, writer: writer, tenant: cfg.Tenant})
	}
	var first error
	for range 2 {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated brokers")
	dsn := flag.String("dsn", os.Getenv("DATABASE_URL"), "PostgreSQL connection string (env DATABASE_URL)")
	tenant := flag.String("tenant", "acme", "the tenant whose orders the service takes")
	addr := flag.String("listen", "127.0.0.1:8080", "HTTP address of POST /orders?customer=&amount=")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, Config{Brokers: []string{*brokers}, DSN: *dsn, Tenant: *tenant, Ready: func(s *Service) {
		http.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
			amount, err := strconv.ParseInt(r.URL.Query().Get("amount"), 10, 64)
			if err != nil {
				http.Error(w, "amount: "+err.Error(), http.StatusBadRequest)
				return
			}
			id, err := s.PlaceOrder(r.Context(), r.URL.Query().Get("customer"), amount)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fmt.Fprintf(w, "order %d placed\n", id)
		})
		srv := &http.Server{Addr: *addr, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				slog.Error("orders: http", "err", err)
				stop()
			}
		}()
		go func() { <-ctx.Done(); _ = srv.Close() }()
		slog.Info("orders service running", "listen", *addr, "tenant", *tenant)
	}})
	if err != nil && !errors.Is(err, context.Canceled) {
		slog.Error("orders service failed", "err", err)
		os.Exit(1)
	}
}
