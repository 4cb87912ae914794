package outbox_test

import (
	"database/sql"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

// TestPublishSQLWritesInADatabaseSQLTransaction: the database/sql writer
// refuses bad input with the sentinel, writes nothing on rollback, and
// what it commits arrives as Publish would send it (headers included).
func TestPublishSQLWritesInADatabaseSQLTransaction(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle)
	w := newWriter(t, bus, outbox.Config{})
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	begin := func() *sql.Tx {
		tx, err := db.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}

	tx := begin()
	if _, err := w.PublishSQL(t.Context(), tx, topic, 1, eventbus.PublishMetadata{}); !errors.Is(err, eventbus.ErrTenantRequired) {
		t.Fatalf("no tenant: %v, want ErrTenantRequired", err)
	}
	if _, err := w.PublishSQL(t.Context(), tx, topic, "rolled back", meta); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	tx = begin()
	id, err := outbox.PublishSQL(t.Context(), tx, w, eventbus.Name[string](topic), "committed", meta,
		eventbus.WithHeader(`x-"odd\key`, "va{l,u}e"), eventbus.WithHeader("x-empty", ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// The headers went through the array literals intact.
	var keys []string
	var values [][]byte
	if err := pool.QueryRow(t.Context(), "SELECT header_keys, header_values FROM eventbus_outbox WHERE event_id = $1", id).Scan(&keys, &values); err != nil {
		t.Fatal(err)
	}
	n := len(keys)
	if n < 2 || keys[n-2] != `x-"odd\key` || string(values[n-2]) != "va{l,u}e" || keys[n-1] != "x-empty" || len(values[n-1]) != 0 {
		t.Fatalf("headers stored as %q = %q", keys, values)
	}
	if keys[0] != "event-id" || string(values[0]) != id {
		t.Fatalf("the bus's own headers stored as %q = %q", keys, values)
	}
	startRelay(t, pool, bus, outbox.RelayConfig{})
	ev := rec.WaitForID(t, id)
	if string(ev.Data) != `"committed"` {
		t.Fatalf("arrived as %+v", ev)
	}
	waitEmpty(t, pool, "eventbus_outbox")
	if n := rec.Len(); n != 1 {
		t.Fatalf("%d events arrived, want the committed one", n)
	}
}
