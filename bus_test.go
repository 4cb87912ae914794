package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/eventbustest"
)

type userCreated struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestPublishSubscribeRoundTrip(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	got := make(chan eventbus.Event[userCreated], 1)
	_, err := eventbus.Subscribe(ctxT(t), bus, eventbus.Name[userCreated](topic), func(_ context.Context, ev eventbus.Event[userCreated]) error {
		got <- ev
		return nil
	}, eventbus.InGroup(eventbustest.UniqueID("g")))
	if err != nil {
		t.Fatal(err)
	}
	id, err := eventbus.Publish(eventbus.WithEventContext(ctxT(t), eventbus.PublishMetadata{TenantID: "acme", WorkspaceID: "ws1", UserID: "admin", CausationID: "c0"}), bus, eventbus.Name[userCreated](topic), userCreated{UserID: "u1", Email: "a@b.c"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		if ev.ID != id || ev.Type != topic || ev.TenantID != "acme" || ev.WorkspaceID != "ws1" {
			t.Fatalf("event = %+v", ev)
		}
		if ev.Data != (userCreated{UserID: "u1", Email: "a@b.c"}) {
			t.Fatalf("data = %+v", ev.Data)
		}
		m := ev.Metadata
		if m.Source != "core" || m.Version != "1.0" || m.CorrelationID == "" || m.UserID != "admin" || m.CausationID != "c0" {
			t.Fatalf("metadata = %+v", m)
		}
	case <-ctxT(t).Done():
		t.Fatal("event not delivered")
	}
}

func TestTenantAndWorkspaceFilters(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.workspace.updated")
	group := eventbustest.UniqueID("g")
	acme, acmeWS1, globex := eventbustest.NewRecorder(), eventbustest.NewRecorder(), eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, acme.Handle, eventbus.InGroup(group), eventbus.ForTenant("acme"))
	eventbustest.MustSubscribe(t, bus, topic, acmeWS1.Handle, eventbus.InGroup(group), eventbus.ForTenant("acme"), eventbus.ForWorkspace("ws1"))
	eventbustest.MustSubscribe(t, bus, topic, globex.Handle, eventbus.InGroup(group), eventbus.ForTenant("globex"))

	publish := func(tenant, ws string) string {
		return eventbustest.MustPublish(t, bus, topic, map[string]string{"t": tenant}, eventbus.PublishMetadata{TenantID: tenant, WorkspaceID: ws})
	}
	a1 := publish("acme", "ws1")
	a2 := publish("acme", "ws2")
	g1 := publish("globex", "")
	a3 := publish("acme", "")

	assertIDs(t, "acme", acme.WaitFor(t, 3), a1, a2, a3)
	assertIDs(t, "acme/ws1", acmeWS1.WaitFor(t, 1), a1)
	assertIDs(t, "globex", globex.WaitFor(t, 1), g1)
	// A last event per subscriber proves nothing else was in flight.
	last := publish("globex", "")
	assertIDs(t, "globex", globex.WaitFor(t, 2), g1, last)
	if acme.Len() != 3 || acmeWS1.Len() != 1 {
		t.Fatalf("acme got %d, acme/ws1 got %d", acme.Len(), acmeWS1.Len())
	}
}

func assertIDs(t *testing.T, who string, evs []eventbus.RawEvent, want ...string) {
	t.Helper()
	if len(evs) != len(want) {
		t.Fatalf("%s: got %d events, want %d", who, len(evs), len(want))
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		seen[ev.ID] = true
	}
	for _, id := range want {
		if !seen[id] {
			t.Fatalf("%s: event %s missing", who, id)
		}
	}
}

func TestBadInputIsRejectedBeforeSending(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{MaxEventBytes: 2048})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	ctx := ctxT(t)
	cases := []struct {
		name string
		err  error
		run  func() error
	}{
		{"bad name", eventbus.ErrInvalidTopic, func() error {
			_, err := bus.Publish(ctx, "core.user.create", nil, eventbus.PublishMetadata{TenantID: "t"})
			return err
		}},
		{"no tenant", eventbus.ErrTenantRequired, func() error {
			_, err := bus.Publish(ctx, topic, nil, eventbus.PublishMetadata{})
			return err
		}},
		{"too large", eventbus.ErrEventTooLarge, func() error {
			_, err := bus.Publish(ctx, topic, string(make([]byte, 4096)), eventbus.PublishMetadata{TenantID: "t"})
			return err
		}},
		{"not JSON", eventbus.ErrInvalidEvent, func() error {
			_, err := bus.Publish(ctx, topic, json.RawMessage("{"), eventbus.PublishMetadata{TenantID: "t"})
			return err
		}},
		{"reserved header", eventbus.ErrInvalidEvent, func() error {
			_, err := bus.Publish(ctx, topic, 1, eventbus.PublishMetadata{TenantID: "t"}, eventbus.WithHeader("tenant-id", "x"))
			return err
		}},
		{"dlq topic", eventbus.ErrInvalidTopic, func() error {
			_, err := bus.Publish(ctx, "dlq."+topic, 1, eventbus.PublishMetadata{TenantID: "t"})
			return err
		}},
		{"batch of 101", eventbus.ErrBatchTooLarge, func() error {
			_, err := bus.PublishBatch(ctx, make([]eventbus.BatchEvent, 101))
			return err
		}},
		{"batch with one bad event", eventbus.ErrTenantRequired, func() error {
			_, err := bus.PublishBatch(ctx, []eventbus.BatchEvent{
				{EventType: topic, Metadata: eventbus.PublishMetadata{TenantID: "t"}},
				{EventType: topic},
			})
			return err
		}},
	}
	for _, c := range cases {
		err := c.run()
		if !errors.Is(err, c.err) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.err)
		}
	}
	// Nothing was sent: the topic was never even created.
	exists, err := bus.Client().Topics().Exists(ctx, topic)
	if err != nil || exists {
		t.Fatalf("topic exists = %v (err %v); bad input must send nothing", exists, err)
	}
	if bus.BreakerState() != breaker.Closed {
		t.Fatalf("validation errors tripped the breaker: %v", bus.BreakerState())
	}
}

func TestPublishBatch(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.InGroup(eventbustest.UniqueID("g")))
	batch := make([]eventbus.BatchEvent, eventbus.MaxBatchSize)
	for i := range batch {
		batch[i] = eventbus.BatchEvent{EventType: topic, Data: i, Metadata: eventbus.PublishMetadata{TenantID: "acme"}}
	}
	results, err := bus.PublishBatch(ctxT(t), batch)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(results))
	for i, r := range results {
		if r.Err != nil || r.EventID == "" {
			t.Fatalf("result %d = %+v", i, r)
		}
		ids[i] = r.EventID
	}
	evs := rec.WaitFor(t, len(batch))
	// One tenant, one key, one partition: order is kept.
	for i, ev := range evs {
		if ev.ID != ids[i] {
			t.Fatalf("event %d is %s, want %s", i, ev.ID, ids[i])
		}
	}
}

func TestPublishAfterShutdown(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	if err := bus.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	if _, err := bus.Publish(ctxT(t), topic, 1, eventbus.PublishMetadata{TenantID: "t"}); !errors.Is(err, eventbus.ErrShuttingDown) {
		t.Fatalf("publish after shutdown: %v", err)
	}
	if _, err := eventbus.Subscribe(ctxT(t), bus, eventbus.Name[json.RawMessage](topic), func(context.Context, eventbus.RawEvent) error { return nil }); !errors.Is(err, eventbus.ErrShuttingDown) {
		t.Fatalf("subscribe after shutdown: %v", err)
	}
}

func TestConnectFailsWithTheBrokersItTried(t *testing.T) {
	t.Parallel()
	c, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: []string{"127.0.0.1:1"}, ConnectTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Connect(context.Background())
	if !errors.Is(err, eventbus.ErrBrokerUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if want := "127.0.0.1:1"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}

func TestPublishAsync(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.audit.recorded")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.InGroup(eventbustest.UniqueID("g")))
	const n = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]bool{}
	for i := range n {
		wg.Add(1)
		err := bus.PublishAsync(ctxT(t), topic, i, eventbus.PublishMetadata{TenantID: "acme"}, func(id string, err error) {
			defer wg.Done()
			if err != nil {
				t.Errorf("event %d: %v", i, err)
			}
			mu.Lock()
			acked[id] = true
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	got := rec.WaitFor(t, n)
	for _, ev := range got {
		if !acked[ev.ID] {
			t.Fatalf("delivered event %s was never acknowledged", ev.ID)
		}
	}
	err := bus.PublishAsync(ctxT(t), topic, 1, eventbus.PublishMetadata{}, func(string, error) {
		t.Error("done called for bad input")
	})
	if !errors.Is(err, eventbus.ErrTenantRequired) {
		t.Fatalf("bad input: %v", err)
	}
}
