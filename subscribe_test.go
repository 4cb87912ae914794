package eventbus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

func nop(context.Context, eventbus.RawEvent) error { return nil }

func TestTwoTopicsShareOneGroup(t *testing.T) {
	bus := eventbustest.NewBus(t, eventbus.Config{})
	created := eventbustest.UniqueTopic(t, "core.user.created")
	deleted := eventbustest.UniqueTopic(t, "core.user.deleted")
	group := eventbustest.UniqueID("crm-sync")
	recCreated, recDeleted := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, created, recCreated.Handle, eventbus.SubscribeOptions{GroupID: group})
	eventbustest.MustSubscribe(t, bus, deleted, recDeleted.Handle, eventbus.SubscribeOptions{GroupID: group})

	c := eventbustest.MustPublish(t, bus, created, 1, eventbus.PublishMetadata{TenantID: "acme"})
	d := eventbustest.MustPublish(t, bus, deleted, 2, eventbus.PublishMetadata{TenantID: "acme"})
	assertIDs(t, "created", recCreated.WaitFor(t, 1), c)
	assertIDs(t, "deleted", recDeleted.WaitFor(t, 1), d)
}

func TestSubscriptionConflicts(t *testing.T) {
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	other := eventbustest.UniqueTopic(t, "core.user.updated")
	group := eventbustest.UniqueID("g")
	eventbustest.MustSubscribe(t, bus, topic, nop, eventbus.SubscribeOptions{GroupID: group})
	ctx := ctxT(t)
	if _, err := bus.Subscribe(ctx, topic, nop, eventbus.SubscribeOptions{GroupID: group}); !errors.Is(err, eventbus.ErrDuplicateSubscription) {
		t.Fatalf("same topic twice in one group: %v", err)
	}
	if _, err := bus.Subscribe(ctx, other, nop, eventbus.SubscribeOptions{GroupID: group, FromBeginning: true}); !errors.Is(err, eventbus.ErrConflictingSubscription) {
		t.Fatalf("FromBeginning mismatch: %v", err)
	}
	// A tenant filter is its own group, so the same topic may be subscribed there.
	eventbustest.MustSubscribe(t, bus, topic, nop, eventbus.SubscribeOptions{GroupID: group, TenantID: "acme"})
	for _, bad := range []struct {
		topic string
		h     eventbus.Handler
		opts  eventbus.SubscribeOptions
		want  error
	}{
		{"core.user.create", nop, eventbus.SubscribeOptions{}, eventbus.ErrInvalidTopic},
		{"dlq." + topic, nop, eventbus.SubscribeOptions{}, eventbus.ErrInvalidTopic},
		{topic, nil, eventbus.SubscribeOptions{GroupID: "x"}, eventbus.ErrInvalidConfig},
		{topic, nop, eventbus.SubscribeOptions{GroupID: "y", WorkspaceID: "ws"}, eventbus.ErrInvalidConfig},
	} {
		if _, err := bus.Subscribe(ctx, bad.topic, bad.h, bad.opts); !errors.Is(err, bad.want) {
			t.Errorf("Subscribe(%q, %+v) = %v, want %v", bad.topic, bad.opts, err, bad.want)
		}
	}
	if err := bus.Unsubscribe(ctx, "no-such-id"); !errors.Is(err, eventbus.ErrSubscriptionNotFound) {
		t.Fatalf("unsubscribe unknown: %v", err)
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	bus := eventbustest.NewBus(t, eventbus.Config{})
	a := eventbustest.UniqueTopic(t, "core.user.created")
	b := eventbustest.UniqueTopic(t, "core.user.deleted")
	group := eventbustest.UniqueID("g")
	recA, recB := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	idA := eventbustest.MustSubscribe(t, bus, a, recA.Handle, eventbus.SubscribeOptions{GroupID: group})
	eventbustest.MustSubscribe(t, bus, b, recB.Handle, eventbus.SubscribeOptions{GroupID: group})
	if err := bus.Unsubscribe(ctxT(t), idA); err != nil {
		t.Fatal(err)
	}
	eventbustest.MustPublish(t, bus, a, 1, eventbus.PublishMetadata{TenantID: "acme"})
	last := eventbustest.MustPublish(t, bus, b, 2, eventbus.PublishMetadata{TenantID: "acme"})
	recB.WaitForID(t, last)
	if recA.Len() != 0 {
		t.Fatalf("unsubscribed handler got %d events", recA.Len())
	}
	// The group, and the topic in it, can be subscribed again.
	again := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, a, again.Handle, eventbus.SubscribeOptions{GroupID: group})
}

// A failing handler holds its partition: nothing after the failed event is
// committed, and a new consumer in the group gets the failed event and the
// rest.
func TestFailingHandlerIsNotCommittedPast(t *testing.T) {
	client := eventbustest.NewClient(t)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	group := eventbustest.UniqueID("billing")
	fast := eventbus.Config{Consumer: eventbus.ConsumerConfig{RetryBackoff: 5 * time.Millisecond, RetryBackoffMax: 20 * time.Millisecond}}

	first := eventbustest.NewBusOn(t, client, fast)
	var calls atomic.Int64
	var handled []string
	failing := make(chan struct{})
	eventbustest.MustSubscribe(t, first, topic, func(_ context.Context, ev eventbus.RawEvent) error {
		if calls.Add(1) > 3 {
			select {
			case failing <- struct{}{}:
			default:
			}
			return errors.New("database down")
		}
		handled = append(handled, ev.ID)
		return nil
	}, eventbus.SubscribeOptions{GroupID: group, FromBeginning: true})

	var ids []string
	for i := range 6 {
		ids = append(ids, eventbustest.MustPublish(t, first, topic, i, eventbus.PublishMetadata{TenantID: "acme"}))
	}
	select {
	case <-failing:
	case <-ctxT(t).Done():
		t.Fatal("handler never failed")
	}
	if err := first.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	second := eventbustest.NewBusOn(t, client, eventbus.Config{})
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, second, topic, rec.Handle, eventbus.SubscribeOptions{GroupID: group, FromBeginning: true})
	got := rec.WaitFor(t, 3)
	assertIDs(t, "after restart", got, ids[3:]...)
	assertIDs(t, "before", toEvents(handled), ids[:3]...)
}

func toEvents(ids []string) []eventbus.RawEvent {
	out := make([]eventbus.RawEvent, len(ids))
	for i, id := range ids {
		out[i].ID = id
	}
	return out
}

func TestHandlerPanicIsAFailure(t *testing.T) {
	bus := eventbustest.NewBus(t, eventbus.Config{Consumer: eventbus.ConsumerConfig{RetryBackoff: time.Millisecond}})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	var calls atomic.Int64
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return rec.Handle(ctx, ev)
	}, eventbus.SubscribeOptions{GroupID: eventbustest.UniqueID("g")})
	id := eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme"})
	rec.WaitForID(t, id)
	if calls.Load() != 2 {
		t.Fatalf("handler called %d times, want 2 (panic, then success)", calls.Load())
	}
}
