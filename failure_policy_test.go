package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
)

// fastInPlace makes in-place retries quick for tests.
func fastInPlace() eventbus.Config {
	cfg := fastDLQ()
	cfg.Consumer.RetryBackoff = 5 * time.Millisecond
	cfg.Consumer.MaxRetryBackoff = 20 * time.Millisecond
	return cfg
}

// assertNoEntry fails the test when group's failure of acme's event eventID on topic was dead-lettered.
func assertNoEntry(t *testing.T, bus *eventbus.Bus, group, topic, eventID string) {
	t.Helper()
	if e, err := bus.DLQ().Get(ctxT(t), deadletter.ID(group, topic, "acme", eventID)); !errors.Is(err, deadletter.ErrNotFound) {
		t.Errorf("event %s was dead-lettered (entry %s, status %q, err %v); the policy should have kept it out", eventID, e.ID, e.Status, err)
	}
}

func TestRetryInPlaceKeepsOrderAndSkipsTheDLQ(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, fastInPlace())
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	group := eventbustest.UniqueID("ledger")
	var mu sync.Mutex
	var handled []int
	var failures atomic.Int64
	done := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		n := string(ev.Data)
		if n == "1" && failures.Add(1) <= 3 {
			return errors.New("ledger busy")
		}
		mu.Lock()
		handled = append(handled, int(n[0]-'0'))
		mu.Unlock()
		return done.Handle(ctx, ev)
	}, eventbus.InGroup(group), eventbus.WithDelivery(eventbus.Delivery{OnFailure: eventbus.RetryInPlace}))
	// One tenant, one partition key: the three events share a partition.
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	first := eventbustest.MustPublish(t, bus, topic, 1, meta)
	eventbustest.MustPublish(t, bus, topic, 2, meta)
	eventbustest.MustPublish(t, bus, topic, 3, meta)
	done.WaitFor(t, 3)
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 3 || handled[0] != 1 || handled[1] != 2 || handled[2] != 3 {
		t.Fatalf("handled %v, want [1 2 3]: the partition waits for the failing event", handled)
	}
	if got := failures.Load(); got != 4 {
		t.Errorf("handler called %d times for the failing event, want 4 (3 failures, then success)", got)
	}
	assertNoEntry(t, bus, group, topic, first)
}

func TestRetryInPlaceDeadLettersPermanentFailures(t *testing.T) {
	t.Parallel()
	bus := startDLQ(t, eventbustest.NewBus(t, fastInPlace()))
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	group := eventbustest.UniqueID("ledger")
	var calls atomic.Int64
	eventbustest.MustSubscribe(t, bus, topic, func(context.Context, eventbus.RawEvent) error {
		calls.Add(1)
		return eventbus.Permanent(errors.New("unknown currency"))
	}, eventbus.InGroup(group), eventbus.WithDelivery(eventbus.Delivery{OnFailure: eventbus.RetryInPlace}))
	id := eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme"})
	waitEntry(t, bus.DLQ(), deadletter.ID(group, topic, "acme", id), hasStatus(deadletter.StatusMaxRetriesExceeded))
	if got := calls.Load(); got != 1 {
		t.Errorf("handler called %d times, want 1: a permanent failure is not retried", got)
	}
}

func TestSkipMovesOnWithoutTheDLQ(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	bus := eventbustest.NewBus(t, fastDLQ(), brokers...)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("tail")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		if string(ev.Data) == `"bad"` {
			return errors.New("cannot print")
		}
		return rec.Handle(ctx, ev)
	}, eventbus.InGroup(group), eventbus.WithDelivery(eventbus.Delivery{OnFailure: eventbus.Skip}))

	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	bad := eventbustest.MustPublish(t, bus, topic, "bad", meta)
	garbage := &kgo.Record{Topic: topic, Key: []byte("acme"), Value: []byte("not an event")}
	if err := raw.ProduceSync(ctxT(t), garbage).FirstErr(); err != nil {
		t.Fatal(err)
	}
	good := eventbustest.MustPublish(t, bus, topic, "good", meta)
	assertIDs(t, "handled", rec.WaitFor(t, 1), good)
	assertNoEntry(t, bus, group, topic, bad)
	entries, _, err := bus.DLQ().List(ctxT(t), deadletter.Query{Topic: topic})
	if err != nil || len(entries) != 0 {
		t.Fatalf("%d dead-letter entries (err %v), want none", len(entries), err)
	}
}

func TestUnknownFailurePolicy(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	_, err := eventbus.Subscribe(ctxT(t), bus, eventbus.Name[json.RawMessage](topic), nop, eventbus.WithDelivery(eventbus.Delivery{OnFailure: eventbus.FailurePolicy(7)}))
	if !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Fatalf("Subscribe with OnFailure 7: %v, want ErrInvalidConfig", err)
	}
}
