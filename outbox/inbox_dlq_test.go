package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

// TestInboxFailureGoesToTheDLQAndAHandledRetryIsSkipped: a failing
// handler leaves no effect and its event reaches the dead letter queue;
// the event is then handled (redelivered under its ID), and a manual
// retry of the dead letter entry is acknowledged without running the
// handler again.
func TestInboxFailureGoesToTheDLQAndAHandledRetryIsSkipped(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	in := newInbox(t, pool, outbox.InboxConfig{})
	bus := eventbustest.NewBus(t, eventbus.Config{DLQ: deadletter.Config{RetryBackoff: time.Hour}})
	if err := bus.DLQ().Start(t.Context()); err != nil { // the dead letter queue's owner
		t.Fatal(err)
	}
	topic := eventbustest.UniqueTopic(t, "core.invoice.issued")
	group := eventbustest.UniqueID("mailer")
	var failing atomic.Bool
	failing.Store(true)
	var runs, deliveries atomic.Int64
	h := in.Handler(group, func(ctx context.Context, tx pgx.Tx, ev eventbus.RawEvent) error {
		runs.Add(1)
		if err := insertEffect(group)(ctx, tx, ev); err != nil {
			return err
		}
		if failing.Load() {
			return errors.New("mail server unreachable")
		}
		return nil
	})
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		defer deliveries.Add(1)
		return h(ctx, ev)
	}, eventbus.InGroup(group))
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	id := eventbustest.MustPublish(t, bus, topic, "inv-1", meta)

	q := bus.DLQ()
	var entry deadletter.Entry
	eventbustest.Eventually(t, "the failed event in the dead letter queue", func() error {
		entries, _, err := q.List(t.Context(), deadletter.Query{Topic: topic, Status: deadletter.StatusPending})
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return errors.New("no pending entry")
		}
		entry = entries[0]
		return nil
	})
	if n := count(t, pool, "SELECT count(*) FROM effects"); n != 0 {
		t.Fatalf("%d effects of the failed handler", n)
	}

	failing.Store(false)
	eventbustest.MustPublish(t, bus, topic, "inv-1", meta, eventbus.WithEventID(id)) // handled this time
	eventbustest.Eventually(t, "the redelivered event's effect", func() error {
		if n := count(t, pool, "SELECT count(*) FROM effects WHERE event_id = $1", id); n != 1 {
			return fmt.Errorf("%d effects", n)
		}
		return nil
	})
	runsBefore := runs.Load()
	deliveriesBefore := deliveries.Load()
	if err := q.Retry(t.Context(), entry.ID); err != nil {
		t.Fatal(err)
	}
	eventbustest.Eventually(t, "the retry to be delivered and the entry resolved", func() error {
		if deliveries.Load() == deliveriesBefore {
			return errors.New("the retry was not delivered yet")
		}
		e, err := q.Get(t.Context(), entry.ID)
		if err != nil {
			return err
		}
		if e.Status != deadletter.StatusResolved {
			return fmt.Errorf("entry %s", e.Status)
		}
		return nil
	})
	if runs.Load() != runsBefore {
		t.Fatalf("the handler ran %d more times for the retry of a handled event, want 0", runs.Load()-runsBefore)
	}
	if n := count(t, pool, "SELECT count(*) FROM effects WHERE event_id = $1", id); n != 1 {
		t.Fatalf("%d effects after the retry, want 1", n)
	}
}
