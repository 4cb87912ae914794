package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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

// BenchmarkCommitToHandler measures the time from a transaction's commit
// to the subscriber's handler, one event per transaction, at most 1,000
// transactions a second, with one relay woken by LISTEN/NOTIFY (its poll
// interval is 1 s: a poll-only relay would show it).
// go test -run '^$' -bench CommitToHandler -benchtime 3000x ./outbox
func BenchmarkCommitToHandler(b *testing.B) {
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
	latencies := make(chan time.Duration, b.N)
	eventbustest.MustSubscribe(b, bus, topic, func(_ context.Context, ev eventbus.RawEvent) error {
		var committed int64
		if err := json.Unmarshal(ev.Data, &committed); err != nil {
			return err
		}
		latencies <- time.Since(time.Unix(0, committed))
		return nil
	}, eventbus.SubscribeOptions{})
	r, err := outbox.NewRelay(pool, bus, outbox.RelayConfig{})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go r.Run(rctx)
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; i < b.N; i++ {
		<-tick.C
		// The event carries a time just before the commit; the commit
		// itself is part of what is measured.
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := w.Publish(ctx, tx, topic, time.Now().UnixNano(), eventbus.PublishMetadata{TenantID: fmt.Sprintf("t-%d", i%16)})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	all := make([]time.Duration, 0, b.N)
	for range b.N {
		all = append(all, <-latencies)
	}
	b.StopTimer()
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*95/100].Microseconds())/1000, "p95-ms")
}

// BenchmarkTransactionCost compares a transaction that inserts one
// business row with the same transaction that also writes one outbox
// event. go test -run '^$' -bench TransactionCost ./outbox
func BenchmarkTransactionCost(b *testing.B) {
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
	if _, err := pool.Exec(ctx, "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer text NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	bus := eventbustest.NewBus(b, eventbus.Config{})
	w, err := outbox.NewWriter(bus, outbox.Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, withEvent := range []bool{false, true} {
		name := "row"
		if withEvent {
			name = "row+event"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, "INSERT INTO orders (customer) VALUES ($1)", "c-1"); err != nil {
						return err
					}
					if !withEvent {
						return nil
					}
					_, err := w.Publish(ctx, tx, "core.order.placed", map[string]int{"n": i}, eventbus.PublishMetadata{TenantID: "acme"})
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
