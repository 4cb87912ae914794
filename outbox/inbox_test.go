package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

func newInbox(t *testing.T, pool *pgxpool.Pool, cfg outbox.InboxConfig) *outbox.Inbox {
	t.Helper()
	in, err := outbox.NewInbox(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), "CREATE TABLE effects (event_id text NOT NULL, grp text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return in
}

// insertEffect is a handler's database work: one row per event.
func insertEffect(group string) outbox.TxHandler[json.RawMessage] {
	return func(ctx context.Context, tx pgx.Tx, ev eventbus.RawEvent) error {
		_, err := tx.Exec(ctx, "INSERT INTO effects (event_id, grp) VALUES ($1, $2)", ev.ID, group)
		return err
	}
}

// TestInboxRunsTheEffectOncePerGroup publishes one event twice under its
// ID (a redelivery) to two groups: each group's effect exists once.
func TestInboxRunsTheEffectOncePerGroup(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	in := newInbox(t, pool, outbox.InboxConfig{})
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	var calls atomic.Int64
	for _, g := range []string{"billing", "shipping"} {
		h := in.Handler(g, insertEffect(g))
		eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
			defer calls.Add(1)
			return h(ctx, ev)
		}, eventbus.InGroup(eventbustest.UniqueID(g)))
	}
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	id := eventbustest.MustPublish(t, bus, topic, "first", meta)
	eventbustest.MustPublish(t, bus, topic, "again", meta, eventbus.WithEventID(id))
	other := eventbustest.MustPublish(t, bus, topic, "other", meta)
	eventbustest.Eventually(t, "6 deliveries (3 events, 2 groups)", func() error {
		if n := calls.Load(); n != 6 {
			return fmt.Errorf("%d deliveries", n)
		}
		return nil
	})
	for _, g := range []string{"billing", "shipping"} {
		for _, ev := range []string{id, other} {
			if n := count(t, pool, "SELECT count(*) FROM effects WHERE event_id = $1 AND grp = $2", ev, g); n != 1 {
				t.Errorf("group %s: event %s has %d effects, want 1", g, ev, n)
			}
		}
	}
}

// TestInboxFailingHandlerLeavesNoEffect checks that a failed handler's
// work and its record roll back, so that its redelivery runs it again.
func TestInboxFailingHandlerLeavesNoEffect(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	in := newInbox(t, pool, outbox.InboxConfig{})
	boom := errors.New("boom")
	failing := in.Handler("g", func(ctx context.Context, tx pgx.Tx, ev eventbus.RawEvent) error {
		if err := insertEffect("g")(ctx, tx, ev); err != nil {
			return err
		}
		return boom
	})
	ev := eventbus.RawEvent{ID: "ev-1", Type: "core.order.placed", TenantID: "acme"}
	if err := failing(t.Context(), ev); !errors.Is(err, boom) {
		t.Fatalf("the failing handler returned %v, want its error", err)
	}
	if n := count(t, pool, "SELECT count(*) FROM effects"); n != 0 {
		t.Fatalf("%d effects of a failed handler", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM eventbus_inbox"); n != 0 {
		t.Fatalf("%d inbox records of a failed handler", n)
	}
	// The redelivery runs the handler, once.
	ran, err := in.Do(t.Context(), "g", ev.ID, func(tx pgx.Tx) error { return insertEffect("g")(t.Context(), tx, ev) })
	if err != nil || !ran {
		t.Fatalf("redelivery after a failure: ran %v, %v", ran, err)
	}
	ran, err = in.Do(t.Context(), "g", ev.ID, func(tx pgx.Tx) error { return insertEffect("g")(t.Context(), tx, ev) })
	if err != nil || ran {
		t.Fatalf("redelivery after a success: ran %v, %v", ran, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM effects"); n != 1 {
		t.Fatalf("%d effects, want 1", n)
	}
}

// TestInboxConcurrentDuplicatesRunOnce delivers one event to 8 goroutines
// at once: the record's key makes 7 of them wait and skip.
func TestInboxConcurrentDuplicatesRunOnce(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	in := newInbox(t, pool, outbox.InboxConfig{})
	h := outbox.Handle(in, "g", func(ctx context.Context, tx pgx.Tx, ev eventbus.Event[string]) error {
		_, err := tx.Exec(ctx, "INSERT INTO effects (event_id, grp) VALUES ($1, 'g')", ev.ID)
		return err
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := h(context.Background(), eventbus.Event[string]{ID: "ev-1", Data: "x"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := count(t, pool, "SELECT count(*) FROM effects"); n != 1 {
		t.Fatalf("%d effects, want 1", n)
	}
}

// TestInboxCleanupDeletesExpiredRecords checks the retention.
func TestInboxCleanupDeletesExpiredRecords(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	in := newInbox(t, pool, outbox.InboxConfig{Retention: time.Hour})
	if _, err := pool.Exec(t.Context(), `INSERT INTO eventbus_inbox (group_id, event_id, handled_at)
		VALUES ('g', 'old', now() - interval '2 hours'), ('g', 'new', now() - interval '10 minutes')`); err != nil {
		t.Fatal(err)
	}
	n, err := in.Cleanup(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("cleanup deleted %d (%v), want 1", n, err)
	}
	// An expired event is handled again; a recent one is not.
	for id, want := range map[string]bool{"old": true, "new": false} {
		ran, err := in.Do(t.Context(), "g", id, func(pgx.Tx) error { return nil })
		if err != nil || ran != want {
			t.Errorf("event %s after cleanup: ran %v (%v), want %v", id, ran, err, want)
		}
	}
}
