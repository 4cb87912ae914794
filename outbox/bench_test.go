package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

// BenchmarkRelayBacklog measures how fast one relay drains a backlog of
// b.N committed events (64 keys) to the brokers (writing them is not
// timed). go test -run '^$' -bench RelayBacklog -benchtime 100000x ./outbox
func BenchmarkRelayBacklog(b *testing.B) {
	dsn := eventbustest.Postgres(b)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	ctx := context.Background()
	if err := outbox.Migrate(ctx, pool, outbox.Config{}); err != nil {
		b.Fatal(err)
	}
	bus := eventbustest.NewBus(b, eventbus.Config{})
	topic := eventbustest.UniqueTopic(b, "core.order.placed")
	w, err := outbox.NewWriter(bus, outbox.Config{})
	if err != nil {
		b.Fatal(err)
	}
	for done := 0; done < b.N; {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for i := 0; i < 1000 && done < b.N; i, done = i+1, done+1 {
				key := fmt.Sprintf("order-%d", done%64)
				if _, err := w.Publish(ctx, tx, topic, seq{key, done}, eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey(key)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	r, err := outbox.NewRelay(pool, bus, outbox.RelayConfig{})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.ResetTimer()
	start := time.Now()
	go r.Run(rctx)
	for r.Stats().Sent < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
