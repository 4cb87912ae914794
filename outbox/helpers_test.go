package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

// newPool returns a pool on a new database with the outbox's tables.
func newPool(t *testing.T, cfg outbox.Config) *pgxpool.Pool {
	t.Helper()
	dsn := eventbustest.Postgres(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := outbox.Migrate(t.Context(), pool, cfg); err != nil {
		t.Fatal(err)
	}
	return pool
}

func newWriter(t *testing.T, bus *eventbus.Bus, cfg outbox.Config) *outbox.Writer {
	t.Helper()
	w, err := outbox.NewWriter(bus, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// fixture is where most relay tests start: a database with the outbox's
// tables, a bus on the suite's brokers, a new topic with a recorder
// subscribed to it, and a writer.
type fixture struct {
	pool    *pgxpool.Pool
	brokers []string
	bus     *eventbus.Bus
	topic   string
	rec     *eventbustest.Recorder
	w       *outbox.Writer
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	f := fixture{pool: newPool(t, outbox.Config{}), brokers: eventbustest.Brokers(t)}
	f.bus = eventbustest.NewBus(t, eventbus.Config{}, f.brokers...)
	f.topic = eventbustest.UniqueTopic(t, "core.order.placed")
	f.rec = eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, f.bus, f.topic, f.rec.Handle)
	f.w = newWriter(t, f.bus, outbox.Config{})
	return f
}

// startRelay runs a relay until the test ends.
func startRelay(t *testing.T, pool *pgxpool.Pool, bus *eventbus.Bus, cfg outbox.RelayConfig) *outbox.Relay {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	r, err := outbox.NewRelay(pool, bus, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("relay: %v", err)
			}
		case <-time.After(eventbustest.WaitTimeout):
			t.Errorf("the relay did not stop within %s", eventbustest.WaitTimeout)
		}
	})
	return r
}

// inTx runs fn in a committed transaction.
func inTx(t *testing.T, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) {
	t.Helper()
	if err := pgx.BeginFunc(t.Context(), pool, fn); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitEmpty waits until the outbox table has no rows left.
func waitEmpty(t *testing.T, pool *pgxpool.Pool, table string) {
	t.Helper()
	eventbustest.Eventually(t, "the outbox to be empty", func() error {
		if n := count(t, pool, "SELECT count(*) FROM "+table); n != 0 {
			return fmt.Errorf("%d rows left", n)
		}
		return nil
	})
}

// seq is the data of the ordering tests.
type seq struct {
	Key string `json:"key"`
	N   int    `json:"n"`
}

func decodeSeq(t *testing.T, ev eventbus.RawEvent) seq {
	t.Helper()
	var s seq
	if err := json.Unmarshal(ev.Data, &s); err != nil {
		t.Fatalf("event %s: %v", ev.ID, err)
	}
	return s
}

// checkOrder checks that every key's events arrived as 0, 1, ... n-1,
// none missing, and returns how many arrived twice.
func checkOrder(t *testing.T, events []eventbus.RawEvent, keys, perKey int) (duplicates int) {
	t.Helper()
	next := map[string]int{}
	seen := map[string]bool{}
	for _, ev := range events {
		s := decodeSeq(t, ev)
		if seen[ev.ID] {
			duplicates++
			continue
		}
		seen[ev.ID] = true
		if s.N != next[s.Key] {
			t.Fatalf("key %s: event %d arrived when %d was due", s.Key, s.N, next[s.Key])
		}
		next[s.Key]++
	}
	if len(next) != keys {
		t.Fatalf("%d keys arrived, want %d", len(next), keys)
	}
	for k, n := range next {
		if n != perKey {
			t.Fatalf("key %s: %d events arrived, want %d", k, n, perKey)
		}
	}
	return duplicates
}
