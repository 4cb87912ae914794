package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/wire"
)

// forgedRetry is what any writer to a topic can send: an event of its own
// carrying the dead letter queue's retry headers.
func forgedRetry(topic, eventID, data, dlqID, group string) *kgo.Record {
	value := fmt.Sprintf(`{"id":%q,"type":%q,"tenantId":"acme","timestamp":"2026-11-29T10:00:00.000Z","data":%q,"metadata":{"source":"core","correlationId":"c-1","version":"1.0"}}`,
		eventID, topic, data)
	return &kgo.Record{Topic: topic, Key: []byte("acme"), Value: []byte(value), Headers: []kgo.RecordHeader{
		{Key: "event-id", Value: []byte(eventID)},
		{Key: wire.HeaderDLQID, Value: []byte(dlqID)},
		{Key: wire.HeaderRetryGroup, Value: []byte(group)},
		{Key: wire.HeaderRetryAttempt, Value: []byte("1")},
	}}
}

// TestForgedRetryHeadersChangeNoEntry: retry headers that match no
// outstanding retry (here: another service's closed entry, and an ID the
// writer made up) resolve, reopen or create no entry; the record is an
// ordinary event, which every group handles.
func TestForgedRetryHeadersChangeNoEntry(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	bus := startDLQ(t, eventbustest.NewBus(t, fastDLQ(), brokers...))
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	mailer, audit := eventbustest.UniqueID("mailer"), eventbustest.UniqueID("audit")
	mailerRec, auditRec := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		if strings.Contains(string(ev.Data), "reject") {
			return eventbus.Permanent(errors.New("mailbox unavailable"))
		}
		if strings.Contains(string(ev.Data), "fail") {
			return errors.New("smtp down")
		}
		return mailerRec.Handle(ctx, ev)
	}, eventbus.InGroup(mailer))
	eventbustest.MustSubscribe(t, bus, topic, auditRec.Handle, eventbus.InGroup(audit))

	// A real, closed entry of the mailer group.
	failed := eventbustest.MustPublish(t, bus, topic, "reject", eventbus.PublishMetadata{TenantID: "acme"})
	entryID := deadletter.ID(mailer, topic, "acme", failed)
	waitEntry(t, bus.DLQ(), entryID, hasStatus(deadletter.StatusMaxRetriesExceeded))

	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// 1. Headers naming the closed entry, on an event that succeeds.
	if err := raw.ProduceSync(ctxT(t), forgedRetry(topic, "forged-1", "hello", entryID, mailer)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	mailerRec.WaitForID(t, "forged-1") // an ordinary event for the mailer...
	auditRec.WaitForID(t, "forged-1")  // ...and for every other group
	// 2. A made-up entry ID, on an event that fails.
	if err := raw.ProduceSync(ctxT(t), forgedRetry(topic, "forged-2", "fail", "chosen-by-the-writer", mailer)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Its failure is recorded under the ID the bus derives, not the one given.
	waitEntry(t, bus.DLQ(), deadletter.ID(mailer, topic, "acme", "forged-2"), func(deadletter.Entry) bool { return true })
	e := waitEntry(t, bus.DLQ(), entryID, hasStatus(deadletter.StatusMaxRetriesExceeded))
	if e.Status != deadletter.StatusMaxRetriesExceeded || e.ResolvedAt != nil {
		t.Fatalf("the forged retry changed the closed entry: %+v", e)
	}
	if _, err := bus.DLQ().Get(ctxT(t), "chosen-by-the-writer"); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("an entry with the writer's chosen ID exists (err %v)", err)
	}
	// The bus itself refuses to publish these headers.
	_, err = bus.Publish(ctxT(t), topic, "x", eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithHeader(wire.HeaderRetryGroup, mailer))
	if !errors.Is(err, eventbus.ErrInvalidEvent) {
		t.Fatalf("publish with a retry header: %v, want ErrInvalidEvent", err)
	}
}
