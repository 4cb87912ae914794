package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

func nop(context.Context, eventbus.RawEvent) error { return nil }

func TestTwoTopicsShareOneGroup(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	created := eventbustest.UniqueTopic(t, "core.user.created")
	deleted := eventbustest.UniqueTopic(t, "core.user.deleted")
	group := eventbustest.UniqueID("crm-sync")
	recCreated, recDeleted := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, created, recCreated.Handle, eventbus.InGroup(group))
	eventbustest.MustSubscribe(t, bus, deleted, recDeleted.Handle, eventbus.InGroup(group))

	c := eventbustest.MustPublish(t, bus, created, 1, eventbus.PublishMetadata{TenantID: "acme"})
	d := eventbustest.MustPublish(t, bus, deleted, 2, eventbus.PublishMetadata{TenantID: "acme"})
	assertIDs(t, "created", recCreated.WaitFor(t, 1), c)
	assertIDs(t, "deleted", recDeleted.WaitFor(t, 1), d)
}

func TestSubscriptionConflicts(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	other := eventbustest.UniqueTopic(t, "core.user.updated")
	group := eventbustest.UniqueID("g")
	eventbustest.MustSubscribe(t, bus, topic, nop, eventbus.InGroup(group))
	ctx := ctxT(t)
	if _, err := eventbus.Subscribe(ctx, bus, eventbus.Name[json.RawMessage](topic), nop, eventbus.InGroup(group)); !errors.Is(err, eventbus.ErrDuplicateSubscription) {
		t.Fatalf("same topic twice in one group: %v", err)
	}
	// Another topic joins the group's consumer.
	eventbustest.MustSubscribe(t, bus, other, nop, eventbus.InGroup(group))
	// A tenant filter is its own group, so the same topic may be subscribed there.
	eventbustest.MustSubscribe(t, bus, topic, nop, eventbus.InGroup(group), eventbus.ForTenant("acme"))
	for _, bad := range []struct {
		topic string
		h     eventbus.Handler
		opts  []eventbus.SubscribeOption
		want  error
	}{
		{"core.user.create", nop, nil, eventbus.ErrInvalidTopic},
		{"dlq." + topic, nop, nil, eventbus.ErrInvalidTopic},
		{"contact.created", nop, nil, eventbus.ErrInvalidTopic},
		{topic, nil, []eventbus.SubscribeOption{eventbus.InGroup("x")}, eventbus.ErrInvalidConfig},
		{topic, nop, []eventbus.SubscribeOption{eventbus.InGroup("y"), eventbus.ForWorkspace("ws")}, eventbus.ErrInvalidConfig},
	} {
		if _, err := eventbus.Subscribe(ctx, bus, eventbus.Name[json.RawMessage](bad.topic), bad.h, bad.opts...); !errors.Is(err, bad.want) {
			t.Errorf("Subscribe(%q) = %v, want %v", bad.topic, err, bad.want)
		}
	}
	if err := bus.Unsubscribe(ctx, "no-such-id"); !errors.Is(err, eventbus.ErrSubscriptionNotFound) {
		t.Fatalf("unsubscribe unknown: %v", err)
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	a := eventbustest.UniqueTopic(t, "core.user.created")
	b := eventbustest.UniqueTopic(t, "core.user.deleted")
	group := eventbustest.UniqueID("g")
	recA, recB := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	idA := eventbustest.MustSubscribe(t, bus, a, recA.Handle, eventbus.InGroup(group))
	eventbustest.MustSubscribe(t, bus, b, recB.Handle, eventbus.InGroup(group))
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
	eventbustest.MustSubscribe(t, bus, a, again.Handle, eventbus.InGroup(group))
}

// An event published right after Subscribe returns is delivered to a new
// group, every time (the start offset is pinned before the group joins).
func TestNoEventLostRightAfterSubscribe(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	for range 30 {
		topic := eventbustest.UniqueTopic(t, "core.user.created")
		rec := eventbustest.NewRecorder()
		eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.InGroup(eventbustest.UniqueID("g")))
		rec.WaitForID(t, eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme"}))
	}
}

// FromBeginning is per topic, even for topics sharing a group.
func TestFromBeginningPerTopicInOneGroup(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	history := eventbustest.UniqueTopic(t, "core.tenant.created")
	live := eventbustest.UniqueTopic(t, "core.tenant.updated")
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	old := eventbustest.MustPublish(t, bus, history, "old", meta)
	eventbustest.MustPublish(t, bus, live, "old", meta)
	group := eventbustest.UniqueID("g")
	recHistory, recLive := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, history, recHistory.Handle, eventbus.InGroup(group), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
	eventbustest.MustSubscribe(t, bus, live, recLive.Handle, eventbus.InGroup(group))
	recHistory.WaitForID(t, old)
	fresh := eventbustest.MustPublish(t, bus, live, "new", meta)
	assertIDs(t, "live", recLive.WaitFor(t, 1), fresh)
}

// TestCommitsTheLastBatchWithoutAnotherFetch: a batch handled within
// CommitInterval of the previous commit is committed once the interval
// has passed, though no further event (and no periodic commit) comes.
func TestCommitsTheLastBatchWithoutAnotherFetch(t *testing.T) {
	t.Parallel()
	cfg := eventbus.Config{}
	cfg.Consumer.CommitInterval = 200 * time.Millisecond
	bus := eventbustest.NewBus(t, cfg)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("mailer")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.InGroup(group))
	const events = 5
	for i := range events {
		eventbustest.MustPublish(t, bus, topic, i, eventbus.PublishMetadata{TenantID: "acme"})
	}
	rec.WaitFor(t, events)
	adm, err := bus.Client().Admin()
	if err != nil {
		t.Fatal(err)
	}
	eventbustest.Eventually(t, "the commit of every handled event", func() error {
		offsets, err := adm.FetchOffsets(ctxT(t), group)
		var committed int64
		offsets.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic && o.Err == nil {
				committed += o.At
			}
		})
		if err == nil && committed == events {
			return nil
		}
		return fmt.Errorf("group %s committed %d of %d handled events (err %v)", group, committed, events, err)
	})
}
