package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

// BenchmarkRelayBacklog measures how fast one relay drains a backlog of
// b.N committed events (64 keys) to the brokers (writing them is not
// timed), against raw franz-go publishing the same records (the same
// encoding, keys, headers and compression, made by Bus.EncodeEvent as the
// Writer makes them) to the same broker in ProduceSync batches of
// eventbus.MaxBatchSize, what the relay sends at once, with the producer
// options the bus uses.
// go test -run '^$' -bench RelayBacklog -benchtime 100000x ./outbox
func BenchmarkRelayBacklog(b *testing.B) {
	pool := benchPool(b, 0)
	ctx := context.Background()
	brokers := eventbustest.Brokers(b)
	bus := eventbustest.NewBus(b, eventbus.Config{}, brokers...)
	w, err := outbox.NewWriter(bus, outbox.Config{})
	if err != nil {
		b.Fatal(err)
	}
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	keyOf := func(i int) string { return fmt.Sprintf("order-%d", i%64) }

	b.Run("relay", func(b *testing.B) {
		topic := eventbustest.UniqueTopic(b, "core.order.placed")
		eventbustest.MustPublish(b, bus, topic, seq{"warm-up", 0}, meta) // creates the topic
		for done := 0; done < b.N; {
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				for i := 0; i < 1000 && done < b.N; i, done = i+1, done+1 {
					key := keyOf(done)
					if _, err := w.Publish(ctx, tx, topic, seq{key, done}, meta, eventbus.WithPartitionKey(key)); err != nil {
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
		stopped := make(chan error, 1)
		b.ResetTimer()
		start := time.Now()
		go func() { stopped <- r.Run(rctx) }()
		for r.Stats().Sent < int64(b.N) {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		cancel()
		if err := <-stopped; err != nil {
			b.Fatal(err)
		}
	})

	// rawloop: what a service would write by hand: the same records in a
	// plain table, drained by a loop that selects the oldest 100, produces
	// them with ProduceSync and deletes them, one batch after the other.
	b.Run("rawloop", func(b *testing.B) {
		topic := eventbustest.UniqueTopic(b, "core.order.placed")
		eventbustest.MustPublish(b, bus, topic, seq{"warm-up", 0}, meta) // creates the topic
		if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS raw_outbox (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			topic text NOT NULL, key bytea NOT NULL, value bytea NOT NULL, header_keys text[] NOT NULL, header_values bytea[] NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		for done := 0; done < b.N; {
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				for i := 0; i < 1000 && done < b.N; i, done = i+1, done+1 {
					key := keyOf(done)
					ev, err := bus.EncodeEvent(topic, seq{key, done}, meta, eventbus.WithPartitionKey(key))
					if err != nil {
						return err
					}
					keys, values := make([]string, len(ev.Headers)), make([][]byte, len(ev.Headers))
					for j, h := range ev.Headers {
						keys[j], values[j] = h.Key, h.Value
					}
					if _, err := tx.Exec(ctx, "INSERT INTO raw_outbox (topic, key, value, header_keys, header_values) VALUES ($1, $2, $3, $4, $5)",
						ev.Topic, ev.Key, ev.Value, keys, values); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		cl := rawClient(b, brokers)
		b.ResetTimer()
		start := time.Now()
		for sent := 0; sent < b.N; {
			rows, err := pool.Query(ctx, "SELECT id, topic, key, value, header_keys, header_values FROM raw_outbox ORDER BY id LIMIT 100")
			if err != nil {
				b.Fatal(err)
			}
			var ids []int64
			var records []*kgo.Record
			for rows.Next() {
				var id int64
				var rec kgo.Record
				var keys []string
				var values [][]byte
				if err := rows.Scan(&id, &rec.Topic, &rec.Key, &rec.Value, &keys, &values); err != nil {
					b.Fatal(err)
				}
				for j := range keys {
					rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: keys[j], Value: values[j]})
				}
				ids, records = append(ids, id), append(records, &rec)
			}
			if err := rows.Err(); err != nil || len(ids) == 0 {
				b.Fatalf("%d rows read (%v)", len(ids), err)
			}
			if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			if _, err := pool.Exec(ctx, "DELETE FROM raw_outbox WHERE id = ANY($1)", ids); err != nil {
				b.Fatal(err)
			}
			sent += len(ids)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	})

	b.Run("raw", func(b *testing.B) {
		topic := eventbustest.UniqueTopic(b, "core.order.placed")
		eventbustest.MustPublish(b, bus, topic, seq{"warm-up", 0}, meta) // creates the topic
		records := make([]*kgo.Record, b.N)
		for i := range records {
			key := keyOf(i)
			ev, err := bus.EncodeEvent(topic, seq{key, i}, meta, eventbus.WithPartitionKey(key))
			if err != nil {
				b.Fatal(err)
			}
			records[i] = &kgo.Record{Topic: ev.Topic, Key: ev.Key, Value: ev.Value, Headers: ev.Headers}
		}
		cl := rawClient(b, brokers)
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < len(records); i += eventbus.MaxBatchSize {
			if err := cl.ProduceSync(ctx, records[i:min(i+eventbus.MaxBatchSize, len(records))]...).FirstErr(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
}

// rawClient is a franz-go producer with the options the bus gives its
// own, closed when the benchmark ends.
func rawClient(b *testing.B, brokers []string) *kgo.Client {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ProducerBatchCompression(kgo.SnappyCompression()),
		kgo.ProducerLinger(0),
		kgo.MaxBufferedRecords(eventbus.DefaultMaxBufferedRecords),
		kgo.RecordDeliveryTimeout(eventbus.DefaultDeliveryTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return cl
}

// BenchmarkInboxCost measures a subscription whose handler takes 10 ms and
// inserts one effect row per event, handled directly ("plain", the insert
// in its own transaction) and through the Inbox ("inbox", the insert and
// the inbox record in one transaction): b.N events published beforehand
// on 64 keys, 16 handlers at a time, timed from the first handler's start
// to the last one's end.
// go test -run '^$' -bench InboxCost -benchtime 2000x ./outbox
func BenchmarkInboxCost(b *testing.B) {
	const concurrency = 16
	pool := benchPool(b, 2*concurrency)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE TABLE effects (event_id text NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	in, err := outbox.NewInbox(pool, outbox.InboxConfig{})
	if err != nil {
		b.Fatal(err)
	}
	bus := eventbustest.NewBus(b, eventbus.Config{})
	for _, withInbox := range []bool{false, true} {
		name := "plain"
		if withInbox {
			name = "inbox"
		}
		b.Run(name, func(b *testing.B) {
			topic := eventbustest.UniqueTopic(b, "core.order.placed")
			group := eventbustest.UniqueID("bench")
			for i := 0; i < b.N; i += eventbus.MaxBatchSize {
				batch := make([]eventbus.BatchEvent, 0, eventbus.MaxBatchSize)
				for j := i; j < min(i+eventbus.MaxBatchSize, b.N); j++ {
					key := fmt.Sprintf("order-%d", j%64)
					batch = append(batch, eventbus.BatchEvent{EventType: topic, Data: seq{key, j},
						Metadata: eventbus.PublishMetadata{TenantID: "acme"}, Options: []eventbus.PublishOption{eventbus.WithPartitionKey(key)}})
				}
				if _, err := bus.PublishBatch(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			var (
				mu      sync.Mutex
				started time.Time
				handled int
				done    = make(chan time.Time, 1)
			)
			effect := func(ctx context.Context, db interface {
				Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
			}, ev eventbus.RawEvent) error {
				mu.Lock()
				if started.IsZero() {
					started = time.Now()
				}
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
				_, err := db.Exec(ctx, "INSERT INTO effects (event_id) VALUES ($1)", ev.ID)
				return err
			}
			finished := func() {
				mu.Lock()
				defer mu.Unlock()
				if handled++; handled == b.N {
					done <- time.Now()
				}
			}
			h := func(ctx context.Context, ev eventbus.RawEvent) error {
				if err := effect(ctx, pool, ev); err != nil {
					return err
				}
				finished()
				return nil
			}
			if withInbox {
				inner := in.Handler(group, func(ctx context.Context, tx pgx.Tx, ev eventbus.RawEvent) error {
					return effect(ctx, tx, ev)
				})
				h = func(ctx context.Context, ev eventbus.RawEvent) error {
					if err := inner(ctx, ev); err != nil {
						return err
					}
					finished()
					return nil
				}
			}
			b.ResetTimer()
			eventbustest.MustSubscribe(b, bus, topic, h, eventbus.InGroup(group), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true, MaxConcurrency: concurrency}))
			var end time.Time
			select {
			case end = <-done:
			case <-time.After(time.Duration(b.N)*10*time.Millisecond + eventbustest.WaitTimeout):
				mu.Lock()
				defer mu.Unlock()
				b.Fatalf("%d of %d events handled", handled, b.N)
			}
			b.StopTimer()
			mu.Lock()
			elapsed := end.Sub(started)
			mu.Unlock()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
		})
	}
}

// benchPool returns a pool (of at most maxConns connections when not 0)
// on a new database with the outbox's tables.
func benchPool(b *testing.B, maxConns int32) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(eventbustest.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	if maxConns != 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := outbox.Migrate(context.Background(), pool, outbox.Config{}); err != nil {
		b.Fatal(err)
	}
	return pool
}

// BenchmarkCommitToHandler measures the time from a transaction's commit
// to the subscriber's handler, one event per transaction, at most 1,000
// transactions a second, with one relay woken by LISTEN/NOTIFY (its poll
// interval is 1 s: a poll-only relay would show it).
// go test -run '^$' -bench CommitToHandler -benchtime 3000x ./outbox
func BenchmarkCommitToHandler(b *testing.B) {
	pool := benchPool(b, 0)
	ctx := context.Background()
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
	})
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
	pool := benchPool(b, 0)
	ctx := context.Background()
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
