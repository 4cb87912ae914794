package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// Reads of the dead letter queue never start background work (issue 20):
// a process that did not call Start answers Stats, List and Get from
// the topics, without joining the scheduler group, so it
// sends no retry, even of an entry whose automatic retry is due.
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
	id := eventbustest.MustPublish(t, subscriber, topic, map[string]int{"n": 1}, eventbus.PublishMetadata{TenantID: "acme"})
	entryID := eventbus.FailedEventID(group, topic, "acme", id)

	// Another process of the same deployment (same scheduler group) reads
	// the queue without calling Start.
	reader := eventbustest.NewBus(t, fastDLQ(), brokers...)
	q := reader.DLQ()
	e := waitEntry(t, q, entryID, hasStatus(eventbus.StatusPending))
	if e.NextRetryAt == nil || e.RetryCount != 0 {
		t.Fatalf("want a pending entry with an automatic retry scheduled, got %+v", e)
	}
	// The retry is due within milliseconds (fastDLQ); a scheduler would
	// send it, and the handler fail it again, well within this window.
	window := time.Now().Add(3 * time.Second)
	for time.Now().Before(window) {
		// This test's topic only: on a shared cluster other tests' entries
		// are in the queue too.
		st, err := q.Stats(ctxT(t), eventbus.DLQQuery{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != 1 || st.ByStatus[string(eventbus.StatusPending)] != 1 {
			t.Fatalf("stats %+v, want the one pending entry", st)
		}
		list, _, err := q.List(ctxT(t), eventbus.DLQQuery{Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		got, err := q.Get(ctxT(t), entryID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || got.RetryCount != 0 || got.Status != eventbus.StatusPending || calls.Load() != 1 {
			t.Fatalf("a read of the dead letter queue sent a retry: entry %s status %s after %d retries, %d entries listed, handler called %d times",
				got.ID, got.Status, got.RetryCount, len(list), calls.Load())
		}
		time.Sleep(100 * time.Millisecond) // the pace of the reads, not a wait for a join
	}
	if err := q.Ready(); err == nil {
		t.Fatal("Ready: the reads started the queue in a process that never called Start")
	}

	// Control: the entry was retryable all along; a process that calls
	// Start sends the retry.
	startDLQ(t, reader)
	eventbustest.Eventually(t, "the retry once the queue is started", func() error {
		if got, err := q.Get(ctxT(t), entryID); err != nil || got.RetryCount == 0 {
			return fmt.Errorf("entry %+v (err %v)", got, err)
		}
		return nil
	})
}
