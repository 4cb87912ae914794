package eventbus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
)

// TestPublishUnderAnOldTimestamp checks that an event replayed under its
// original time, far older than the delivery timeout, publishes (alone and
// in a batch) and arrives with that time; the record's delivery clock
// starts when it is sent.
func TestPublishUnderAnOldTimestamp(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{DeliveryTimeout: time.Second})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle)
	old := time.Date(2019, 3, 14, 15, 9, 26, 535_000_000, time.UTC)
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	id, err := bus.Publish(ctxT(t), topic, "replayed", meta, eventbus.WithTimestamp(old))
	if err != nil {
		t.Fatalf("publish with a 2019 timestamp: %v", err)
	}
	res, err := bus.PublishBatch(ctxT(t), []eventbus.BatchEvent{
		{EventType: topic, Data: "now", Metadata: meta},
		{EventType: topic, Data: "then", Metadata: meta, Options: []eventbus.PublishOption{eventbus.WithTimestamp(old)}},
	})
	if err != nil {
		t.Fatalf("batch with one old timestamp: %v", err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("batch event %s: %v", r.EventID, r.Err)
		}
	}
	if ev := rec.WaitForID(t, id); !ev.Timestamp.Equal(old) {
		t.Fatalf("the event arrived with timestamp %v, want %v", ev.Timestamp, old)
	}
	rec.WaitForID(t, res[1].EventID)
	if s := bus.BreakerState(); s != breaker.Closed {
		t.Fatalf("breaker %s after old timestamps, want closed", s)
	}
}

// TestPublishRejectsTimestampsTheWireCannotCarry checks that a time outside
// years 0000-9999 fails at publish with ErrInvalidEvent (and does not count
// against the breaker), instead of being dead-lettered by every consumer.
func TestPublishRejectsTimestampsTheWireCannotCarry(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	for _, ts := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -5*3600)), // year 10000 in UTC
	} {
		for range 6 {
			_, err := bus.Publish(ctxT(t), topic, 1, eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithTimestamp(ts))
			if !errors.Is(err, eventbus.ErrInvalidEvent) {
				t.Fatalf("publish at %v: %v, want ErrInvalidEvent", ts, err)
			}
		}
	}
	if s := bus.BreakerState(); s != breaker.Closed {
		t.Fatalf("breaker %s after rejected timestamps, want closed", s)
	}
}

// TestPublishTimeoutSaysWhose checks that errors.Is tells brokers that do
// not answer (ErrBrokerUnavailable) from the caller's own context ending
// (context.DeadlineExceeded).
func TestPublishTimeoutSaysWhose(t *testing.T) {
	broker := eventbustest.StartEmbedded(t, embedded.Config{})
	bus := eventbustest.NewBus(t, eventbus.Config{DeliveryTimeout: time.Second}, broker.Addrs()...)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	eventbustest.MustPublish(t, bus, topic, 0, meta)
	broker.Close()

	_, err := bus.Publish(ctxT(t), topic, 1, meta)
	if !errors.Is(err, eventbus.ErrBrokerUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish past DeliveryTimeout with the broker down: %v; want ErrBrokerUnavailable, not context.DeadlineExceeded", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = bus.Publish(ctx, topic, 2, meta)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, eventbus.ErrBrokerUnavailable) {
		t.Fatalf("publish past the caller's deadline: %v; want context.DeadlineExceeded, not ErrBrokerUnavailable", err)
	}
}
