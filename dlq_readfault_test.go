package eventbus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// failReads makes the next n reads of retries' dead-letter records on bus
// fail, as a broker that resets connections would; it returns how many
// failed so far.
func failReads(t *testing.T, bus *eventbus.Bus, n int64) *atomic.Int64 {
	t.Helper()
	var failed atomic.Int64
	eventbus.SetDLQReadFault(bus, func() error {
		if failed.Add(1) <= n {
			return errors.New("injected: connection reset by broker")
		}
		failed.Add(-1)
		return nil
	})
	t.Cleanup(func() { eventbus.SetDLQReadFault(bus, nil) })
	return &failed
}

// TestRetryOnARetryTopicWaitsOutAReadError: a plugin's retry arrives on
// its retry topic while the dead-letter entry it names cannot be read. The
// subscriber checks again (backing off) and handles the retry once it
// can; it never commits the retry unhandled.
func TestRetryOnARetryTopicWaitsOutAReadError(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	service := eventbustest.NewBus(t, fastInPlace(), brokers...)
	ops := startDLQ(t, eventbustest.NewBus(t, fastDLQ(), brokers...))
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	crm := newPluginClient(t, service, eventbustest.UniqueID("crm"), "acme", "")
	var calls atomic.Int64
	rec := eventbustest.NewRecorder()
	mustPluginSubscribe(t, crm, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		if calls.Add(1) == 1 {
			return eventbus.Permanent(errors.New("crm is down"))
		}
		return rec.Handle(ctx, ev)
	})

	id := eventbustest.MustPublish(t, service, topic, "hello", eventbus.PublishMetadata{TenantID: "acme"})
	entryID := eventbus.FailedEventID(eventbus.EffectiveGroupID(crm.GroupID(topic), "acme", ""), topic, "acme", id)
	waitEntry(t, ops.DLQ(), entryID, hasStatus(eventbus.StatusMaxRetriesExceeded))
	failed := failReads(t, service, 3)
	if err := ops.DLQ().Retry(ctxT(t), entryID); err != nil {
		t.Fatal(err)
	}
	rec.WaitForID(t, id)
	waitEntry(t, ops.DLQ(), entryID, hasStatus(eventbus.StatusResolved))
	if n := failed.Load(); n != 3 {
		t.Fatalf("%d reads failed, want the 3 injected", n)
	}
}

// TestRetryOnTheOriginalTopicWaitsOutAReadError: a core group's retry,
// sent back to the original topic, arrives while its entry cannot be
// read. Neither the failed group nor another one takes it for an ordinary
// event: the failed group handles it as its retry (and resolves the
// entry), the other group skips it.
func TestRetryOnTheOriginalTopicWaitsOutAReadError(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	service := eventbustest.NewBus(t, fastInPlace(), brokers...)
	ops := startDLQ(t, eventbustest.NewBus(t, fastDLQ(), brokers...))
	topic := eventbustest.UniqueTopic(t, "core.invoice.issued")
	billing, audit := eventbustest.UniqueID("billing"), eventbustest.UniqueID("audit")
	var calls atomic.Int64
	billingRec, auditRec := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, service, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		if calls.Add(1) == 1 {
			return eventbus.Permanent(errors.New("ledger unavailable"))
		}
		return billingRec.Handle(ctx, ev)
	}, eventbus.InGroup(billing))
	eventbustest.MustSubscribe(t, service, topic, auditRec.Handle, eventbus.InGroup(audit))

	id := eventbustest.MustPublish(t, service, topic, 42, eventbus.PublishMetadata{TenantID: "acme"})
	entryID := eventbus.FailedEventID(billing, topic, "acme", id)
	waitEntry(t, ops.DLQ(), entryID, hasStatus(eventbus.StatusMaxRetriesExceeded))
	auditRec.WaitForID(t, id)
	failed := failReads(t, service, 4) // both groups' checks fail, twice each at most
	if err := ops.DLQ().Retry(ctxT(t), entryID); err != nil {
		t.Fatal(err)
	}
	billingRec.WaitForID(t, id)
	waitEntry(t, ops.DLQ(), entryID, hasStatus(eventbus.StatusResolved))
	// Same key, same partition: once audit has this one, it passed the retry.
	sentinel := eventbustest.MustPublish(t, service, topic, "sentinel", eventbus.PublishMetadata{TenantID: "acme"})
	auditRec.WaitForID(t, sentinel)
	n := 0
	for _, ev := range auditRec.Events() {
		if ev.ID == id {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("audit saw the event %d times, want 1: billing's retry is not audit's", n)
	}
	if f := failed.Load(); f != 4 {
		t.Fatalf("%d reads failed, want the 4 injected", f)
	}
}

// TestRetryLeftUnfinishedWhenReleasedWhileUnreadable: a subscriber that
// still cannot read a retry's entry when its partition is released (here:
// Unsubscribe) gives up without committing the retry; the group's next
// member handles it.
func TestRetryLeftUnfinishedWhenReleasedWhileUnreadable(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	service := eventbustest.NewBus(t, fastInPlace(), brokers...)
	ops := startDLQ(t, eventbustest.NewBus(t, fastDLQ(), brokers...))
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	crm := newPluginClient(t, service, eventbustest.UniqueID("crm"), "acme", "")
	var calls atomic.Int64
	handler := func(rec *eventbustest.Recorder) eventbus.Handler {
		return func(ctx context.Context, ev eventbus.RawEvent) error {
			if calls.Add(1) == 1 {
				return eventbus.Permanent(errors.New("crm is down"))
			}
			return rec.Handle(ctx, ev)
		}
	}
	first := eventbustest.NewRecorder()
	sub := mustPluginSubscribe(t, crm, topic, handler(first))
	id := eventbustest.MustPublish(t, service, topic, "hello", eventbus.PublishMetadata{TenantID: "acme"})
	entryID := eventbus.FailedEventID(eventbus.EffectiveGroupID(crm.GroupID(topic), "acme", ""), topic, "acme", id)
	waitEntry(t, ops.DLQ(), entryID, hasStatus(eventbus.StatusMaxRetriesExceeded))

	var failed atomic.Int64
	eventbus.SetDLQReadFault(service, func() error {
		failed.Add(1)
		return errors.New("injected: connection reset by broker")
	})
	if err := ops.DLQ().Retry(ctxT(t), entryID); err != nil {
		t.Fatal(err)
	}
	eventbustest.Eventually(t, "the subscriber to check the retry and fail", func() error {
		if failed.Load() < 2 {
			return errors.New("not yet checked twice")
		}
		return nil
	})
	if err := crm.Unsubscribe(ctxT(t), sub); err != nil {
		t.Fatal(err)
	}
	if n := first.Len(); n != 0 {
		t.Fatalf("the unreadable retry was handled %d times", n)
	}
	eventbus.SetDLQReadFault(service, nil)
	second := eventbustest.NewRecorder()
	mustPluginSubscribe(t, crm, topic, handler(second))
	second.WaitForID(t, id)
	waitEntry(t, ops.DLQ(), entryID, hasStatus(eventbus.StatusResolved))
}
