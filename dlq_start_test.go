package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
)

// Reads of the dead letter queue never start background work (issue 20):
// a process that did not call Start answers Stats, List and Get from
// the topics, without joining the scheduler group, so it applies no
// command and sends no retry, even of an entry whose automatic retry is
// due.
func TestDLQReadWithoutStartSendsNoRetry(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	subscriber := eventbustest.NewBus(t, fastDLQ(), brokers...) // never starts the queue
	topic := eventbustest.UniqueTopic(t, "core.invoice.issued")
	group := eventbustest.UniqueID("billing")
	var calls atomic.Int64
	eventbustest.MustSubscribe(t, subscriber, topic, func(context.Context, eventbus.RawEvent) error {
		calls.Add(1)
		return errors.New("ledger down")
	}, eventbus.InGroup(group))
	// The entry's owner records the failure, then stops: no process of the
	// deployment runs the queue any more.
	owner := startDLQ(t, eventbustest.NewBus(t, eventbus.Config{DLQ: deadletter.Config{RetryBackoff: time.Hour}}, brokers...))
	id := eventbustest.MustPublish(t, subscriber, topic, map[string]int{"n": 1}, eventbus.PublishMetadata{TenantID: "acme"})
	entryID := deadletter.ID(group, topic, "acme", id)
	waitEntry(t, owner.DLQ(), entryID, hasStatus(deadletter.StatusPending))
	if err := owner.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// A retry by hand, stored for an owner; nobody applies it yet.
	reader := eventbustest.NewBus(t, fastDLQ(), brokers...)
	q := reader.DLQ()
	if err := q.Retry(ctxShort(t), entryID); !errors.Is(err, deadletter.ErrNotApplied) {
		t.Fatalf("Retry with no process running the queue: %v, want ErrNotApplied", err)
	}
	// Another process of the same deployment (same scheduler group) reads
	// the queue without calling Start, again and again.
	window := time.Now().Add(2 * time.Second)
	for time.Now().Before(window) {
		// This test's topic only: on a shared cluster other tests' entries
		// are in the queue too.
		st, err := q.Stats(ctxT(t), deadletter.Query{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != 1 || st.ByStatus[string(deadletter.StatusPending)] != 1 {
			t.Fatalf("stats %+v, want the one pending entry", st)
		}
		list, _, err := q.List(ctxT(t), deadletter.Query{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		got, err := q.Get(ctxT(t), entryID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || got.RetryCount != 0 || got.Status != deadletter.StatusPending || calls.Load() != 1 {
			t.Fatalf("a read of the dead letter queue applied a command or sent a retry: entry %s status %s after %d retries, %d entries listed, handler called %d times",
				got.ID, got.Status, got.RetryCount, len(list), calls.Load())
		}
		time.Sleep(100 * time.Millisecond) // the pace of the reads, not a wait for a join
	}
	if err := q.Ready(); err == nil {
		t.Fatal("Ready: the reads started the queue in a process that never called Start")
	}

	// Control: a process that calls Start becomes the owner and applies
	// the stored retry.
	startDLQ(t, reader)
	eventbustest.Eventually(t, "the retry once the queue is started", func() error {
		if got, err := q.Get(ctxT(t), entryID); err != nil || got.RetryCount == 0 {
			return fmt.Errorf("entry %+v (err %v)", got, err)
		}
		return nil
	})
}

// ctxShort is a context that ends within a second, or with the test.
func ctxShort(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(ctxT(t), time.Second)
	t.Cleanup(cancel)
	return ctx
}
