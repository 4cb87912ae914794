package outbox_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

// TestWriteRejectsBadInputAndWritesNothing checks that what Publish
// refuses, the outbox refuses with the same sentinel, before writing.
func TestWriteRejectsBadInputAndWritesNothing(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	bus := eventbustest.NewBus(t, eventbus.Config{MaxEventBytes: 1024})
	w := newWriter(t, bus, outbox.Config{})
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	for _, c := range []struct {
		name  string
		topic string
		data  any
		meta  eventbus.PublishMetadata
		opts  []eventbus.PublishOption
		want  error
	}{
		{"bad topic", "Core.Not A Topic", 1, meta, nil, eventbus.ErrInvalidTopic},
		{"dlq topic", "dlq.core.order.placed", 1, meta, nil, eventbus.ErrInvalidTopic},
		{"no tenant", "core.order.placed", 1, eventbus.PublishMetadata{}, nil, eventbus.ErrTenantRequired},
		{"too large", "core.order.placed", strings.Repeat("x", 2048), meta, nil, eventbus.ErrEventTooLarge},
		{"reserved header", "core.order.placed", 1, meta, []eventbus.PublishOption{eventbus.WithHeader("event-id", "x")}, eventbus.ErrInvalidEvent},
	} {
		tx, err := pool.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Publish(t.Context(), tx, c.topic, c.data, c.meta, c.opts...); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		// The transaction is untouched: it commits, with nothing in the outbox.
		if err := tx.Commit(t.Context()); err != nil {
			t.Fatalf("%s: commit after a refused event: %v", c.name, err)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM eventbus_outbox"); n != 0 {
		t.Fatalf("%d rows written by refused events", n)
	}
}

// TestMigrateIsIdempotentAndNamesTheTables checks that Migrate runs twice,
// and concurrently, in a schema of the user's choosing, and refuses names
// that are not identifiers.
func TestMigrateIsIdempotentAndNamesTheTables(t *testing.T) {
	t.Parallel()
	cfg := outbox.Config{Table: "billing.events_out", InboxTable: "billing.events_in"}
	pool := newPool(t, cfg)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = outbox.Migrate(context.Background(), pool, cfg) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("migrate again: %v", err)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM pg_tables WHERE schemaname = 'billing' AND tablename IN ('events_out', 'events_in')"); n != 2 {
		t.Fatalf("%d tables in schema billing, want 2", n)
	}
	for _, bad := range []string{"a.b.c", "drop table x;", "1abc", "x-y"} {
		if err := outbox.Migrate(t.Context(), pool, outbox.Config{Table: bad}); !errors.Is(err, eventbus.ErrInvalidConfig) {
			t.Errorf("table %q: %v, want ErrInvalidConfig", bad, err)
		}
		if _, err := outbox.NewWriter(eventbustest.NewBus(t, eventbus.Config{}), outbox.Config{InboxTable: bad}); !errors.Is(err, eventbus.ErrInvalidConfig) {
			t.Errorf("inbox table %q: %v, want ErrInvalidConfig", bad, err)
		}
	}
	// Names at the length limit work end to end (the notification
	// channel stays within PostgreSQL's 63 bytes).
	long := outbox.Config{Table: strings.Repeat("s", 50) + "." + strings.Repeat("t", 50), InboxTable: strings.Repeat("i", 50)}
	if err := outbox.Migrate(t.Context(), pool, long); err != nil {
		t.Fatalf("migrate with the longest names: %v", err)
	}
	lw := newWriter(t, eventbustest.NewBus(t, eventbus.Config{}), long)
	inTx(t, pool, func(tx pgx.Tx) error {
		_, err := lw.Publish(t.Context(), tx, "core.invoice.issued", 1, eventbus.PublishMetadata{TenantID: "acme"})
		return err
	})
	// The writer writes into the named table.
	w := newWriter(t, eventbustest.NewBus(t, eventbus.Config{}), cfg)
	inTx(t, pool, func(tx pgx.Tx) error {
		_, err := w.Publish(t.Context(), tx, "core.invoice.issued", 1, eventbus.PublishMetadata{TenantID: "acme"})
		return err
	})
	if n := count(t, pool, "SELECT count(*) FROM billing.events_out"); n != 1 {
		t.Fatalf("%d rows in billing.events_out, want 1", n)
	}
}
