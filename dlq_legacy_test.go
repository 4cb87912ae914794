package eventbus_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
)

// typeScriptEntry is a dead-letter record as the TypeScript package writes
// it: its own FailedEvent JSON (offset as a string, failureTimestamp, no
// status), keyed by tenant, with its headers.
func typeScriptEntry(topic, id, eventID string, failedAt time.Time, retryCount int) *kgo.Record {
	event := fmt.Sprintf(`{"id":%q,"type":%q,"tenantId":"acme","timestamp":"2026-11-29T06:00:00.000Z","data":{"email":"a@example.com"},"metadata":{"source":"core","correlationId":"c-1","version":"1.0"}}`, eventID, topic)
	value := fmt.Sprintf(`{"id":%q,"originalEvent":%s,"originalTopic":%q,"failureReason":"smtp down","failureTimestamp":%q,"retryCount":%d,"maxRetries":3,"stackTrace":"Error: smtp down\n    at send (mailer.ts:12:5)","consumerGroup":"ts-mailer","partition":1,"offset":"17"}`,
		id, event, topic, failedAt.UTC().Format("2006-01-02T15:04:05.000Z"), retryCount)
	return &kgo.Record{Topic: "dlq." + topic, Key: []byte("acme"), Value: []byte(value), Headers: []kgo.RecordHeader{
		{Key: "dlq-id", Value: []byte(id)}, {Key: "original-topic", Value: []byte(topic)},
		{Key: "original-event-id", Value: []byte(eventID)}, {Key: "retry-count", Value: []byte(fmt.Sprint(retryCount))},
		{Key: "failure-reason", Value: []byte("smtp down")}, {Key: "tenant-id", Value: []byte("acme")},
	}}
}

// TestDLQListsEntriesOfTheTypeScriptOriginal: on a cluster shared with the
// TypeScript package, its entries on dlq.<topic> are listed (marked as
// its), counted, never retried automatically, and retried or deleted by an
// operator; a newer failure it records under the same ID shows again. A
// compacted dlq topic holding them is reported, and records that are
// neither its entries nor ours are skipped.
func TestDLQListsEntriesOfTheTypeScriptOriginal(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	var logs eventbustest.LogBuffer
	cfg := eventbus.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	bus := startDLQ(t, eventbustest.NewBus(t, cfg, brokers...)) // the entries' owner
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	ours, err := bus.DLQ().RouteToDLQ(ctxT(t), topic, eventbus.RawEvent{ID: eventbustest.UniqueID("e"), Type: topic, TenantID: "acme", Timestamp: time.Now(), Data: []byte(`{}`)}, "mailer", errors.New("boom"))
	if err != nil {
		t.Fatal(err)
	}
	waitEntry(t, bus.DLQ(), ours, func(deadletter.Entry) bool { return true }) // applied by its owner
	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	eventID := eventbustest.UniqueID("ts-event")
	tsID := fmt.Sprintf("dlq-%s-1764399600000", eventID)
	produce := func(r *kgo.Record) {
		t.Helper()
		if err := raw.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(typeScriptEntry(topic, tsID, eventID, time.Now().Add(-time.Hour), 0))
	produce(&kgo.Record{Topic: "dlq." + topic, Key: []byte(ours), Value: []byte(`{"id":"someone-else","offset":17}`)})

	// A fresh view lists both, the original's marked as its.
	ops := eventbustest.NewBus(t, cfg, brokers...)
	entries, _, err := ops.DLQ().List(ctxT(t), deadletter.Query{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("entries %+v; want this bus's and the TypeScript one", entries)
	}
	byID := map[string]deadletter.Entry{entries[0].ID: entries[0], entries[1].ID: entries[1]}
	ts, ok := byID[tsID]
	if !ok || byID[ours].Origin != "" || byID[ours].ConsumerGroup != "mailer" {
		t.Fatalf("entries %+v", entries)
	}
	if ts.Origin != deadletter.OriginTypeScript || ts.Status != deadletter.StatusPending || ts.EventID != eventID || ts.TenantID != "acme" ||
		ts.Offset != 17 || ts.ConsumerGroup != "ts-mailer" || ts.FailureReason != "smtp down" || ts.MaxRetries != 3 {
		t.Fatalf("TypeScript entry read as %+v", ts)
	}
	if tenant, known := ts.VerifiedTenant(); !known || tenant != "acme" {
		t.Fatalf("TypeScript entry's tenant %q known %v", tenant, known)
	}
	stats, err := ops.DLQ().Stats(ctxT(t), deadletter.Query{Topic: topic})
	if err != nil || stats.Total != 2 || stats.ByReason["smtp down"] != 1 {
		t.Fatalf("stats %+v (%v)", stats, err)
	}
	eventbustest.Eventually(t, "the warning that dlq."+topic+" is compacted", func() error {
		if got := logs.String(); !strings.Contains(got, "compacted dead-letter topic holds entries of the TypeScript package") {
			return fmt.Errorf("no warning that dlq.%s is compacted; logs:\n%s", topic, got)
		}
		return nil
	})

	// Retried by hand only, the way the original retries: every group reads it again.
	if err := ops.DLQ().Retry(ctxT(t), tsID, deadletter.RetryIfAllowed()); !errors.Is(err, deadletter.ErrRetryNotAllowed) {
		t.Fatalf("automatic retry of a TypeScript entry: %v; want ErrRetryNotAllowed", err)
	}
	audit := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, audit.Handle, eventbus.InGroup(eventbustest.UniqueID("audit")))
	if err := ops.DLQ().Retry(ctxT(t), tsID); err != nil {
		t.Fatal(err)
	}
	if ev := audit.WaitForID(t, eventID); ev.TenantID != "acme" || string(ev.Data) != `{"email":"a@example.com"}` {
		t.Fatalf("retried event %+v", ev)
	}
	e, err := ops.DLQ().Get(ctxT(t), tsID)
	if err != nil || e.Status != deadletter.StatusResolved || e.RetryCount != 1 || e.Origin != deadletter.OriginTypeScript {
		t.Fatalf("after the retry: %+v (%v)", e, err)
	}

	// Deleted: gone, for this view and a fresh one.
	if err := ops.DLQ().Delete(ctxT(t), tsID); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.DLQ().Get(ctxT(t), tsID); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("deleted TypeScript entry: %v", err)
	}
	fresh := eventbustest.NewBus(t, cfg, brokers...)
	if _, err := fresh.DLQ().Get(ctxT(t), tsID); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("deleted TypeScript entry, fresh view: %v", err)
	}

	// The original fails it again, under the same ID: it shows again.
	produce(typeScriptEntry(topic, tsID, eventID, time.Now().Add(time.Second), 1))
	e = waitEntry(t, fresh.DLQ(), tsID, func(e deadletter.Entry) bool { return e.RetryCount == 1 })
	if e.Status != deadletter.StatusPending || e.Origin != deadletter.OriginTypeScript {
		t.Fatalf("newer TypeScript failure read as %+v", e)
	}
}

// TestDLQTopicCleanupPolicy: on a cluster shared with TypeScript services
// the dlq.* topics the bus creates can keep every record (cleanup.policy
// delete) instead of compacting them; other policies are refused.
func TestDLQTopicCleanupPolicy(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	cfg := eventbus.Config{DLQ: deadletter.Config{TopicCleanupPolicy: "delete"}}
	bus := eventbustest.NewBus(t, cfg, brokers...)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	if _, err := bus.DLQ().RouteToDLQ(ctxT(t), topic, eventbus.RawEvent{ID: eventbustest.UniqueID("e"), Type: topic, TenantID: "acme", Timestamp: time.Now(), Data: []byte(`{}`)}, "mailer", errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	adm, err := bus.Client().Admin()
	if err != nil {
		t.Fatal(err)
	}
	configs, err := adm.DescribeTopicConfigs(ctxT(t), "dlq."+topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := configs.On("dlq."+topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if policy != "delete" {
		t.Fatalf("dlq.%s cleanup.policy %q, want delete", topic, policy)
	}
	client := eventbustest.NewClient(t, brokers...)
	if _, err := eventbus.NewBus(client, eventbus.Config{DLQ: deadletter.Config{TopicCleanupPolicy: "compact"}}); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Fatalf("TopicCleanupPolicy compact: %v; want ErrInvalidConfig", err)
	}
}
