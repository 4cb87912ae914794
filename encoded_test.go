package eventbus_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// TestEncodedEventsArriveAsPublished checks that an event encoded now and
// published later keeps the ID, data, metadata, key and headers it was
// encoded with.
func TestEncodedEventsArriveAsPublished(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle)
	ev, err := bus.EncodeEvent(topic, map[string]int{"n": 7}, eventbus.PublishMetadata{TenantID: "acme", UserID: "u-1"},
		eventbus.WithPartitionKey("order-9"), eventbus.WithHeader("x-origin", "outbox"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID == "" || string(ev.Key) != "order-9" {
		t.Fatalf("encoded event has ID %q and key %q", ev.ID, ev.Key)
	}
	res, err := bus.PublishEncoded(ctxT(t), []eventbus.EncodedEvent{ev})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].EventID != ev.ID {
		t.Fatalf("published as %s, encoded as %s", res[0].EventID, ev.ID)
	}
	got := rec.WaitForID(t, ev.ID)
	if got.TenantID != "acme" || got.Metadata.UserID != "u-1" || string(got.Data) != `{"n":7}` {
		t.Fatalf("arrived as %+v", got)
	}
}

// TestEncodeEventValidatesAsPublish checks that EncodeEvent refuses what
// Publish refuses, with the same sentinels.
func TestEncodeEventValidatesAsPublish(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{MaxEventBytes: 1024})
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	for _, c := range []struct {
		name  string
		topic string
		data  any
		meta  eventbus.PublishMetadata
		want  error
	}{
		{"bad topic", "Not A Topic", 1, meta, eventbus.ErrInvalidTopic},
		{"dlq topic", "dlq.core.order.placed", 1, meta, eventbus.ErrInvalidTopic},
		{"no tenant", "core.order.placed", 1, eventbus.PublishMetadata{}, eventbus.ErrTenantRequired},
		{"too large", "core.order.placed", strings.Repeat("x", 2048), meta, eventbus.ErrEventTooLarge},
		{"not JSON", "core.order.placed", func() {}, meta, eventbus.ErrInvalidEvent},
	} {
		_, err := bus.EncodeEvent(c.topic, c.data, c.meta)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		_, perr := bus.Publish(ctxT(t), c.topic, c.data, c.meta)
		if !errors.Is(perr, c.want) {
			t.Errorf("%s: Publish got %v, want %v", c.name, perr, c.want)
		}
	}
	if _, err := bus.PublishEncoded(ctxT(t), []eventbus.EncodedEvent{{Topic: "core.order.placed"}}); !errors.Is(err, eventbus.ErrInvalidEvent) {
		t.Errorf("an encoded event without an ID: got %v, want ErrInvalidEvent", err)
	}
}
