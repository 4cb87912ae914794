package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
)

// fastDLQ retries within milliseconds so tests run quickly.
func fastDLQ() eventbus.Config {
	return eventbus.Config{DLQ: deadletter.Config{RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 100 * time.Millisecond}}
}

// startDLQ makes bus a process that runs the dead letter queue (as
// eventbus serve does): it keeps the view and schedules automatic retries.
// A process that only subscribes does neither.
func startDLQ(t *testing.T, bus *eventbus.Bus) *eventbus.Bus {
	t.Helper()
	if err := bus.DLQ().Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return bus
}

// waitEntry polls the DLQ view (bounded) until an entry satisfies ok.
func waitEntry(t *testing.T, q *eventbus.DeadLetterQueue, id string, ok func(deadletter.Entry) bool) deadletter.Entry {
	t.Helper()
	var e deadletter.Entry
	eventbustest.Eventually(t, "dead-letter entry "+id, func() error {
		var err error
		e, err = q.Get(ctxT(t), id)
		if err == nil && ok(e) {
			return nil
		}
		return fmt.Errorf("last state %+v (err %v)", e, err)
	})
	return e
}

func hasStatus(s deadletter.Status) func(deadletter.Entry) bool {
	return func(e deadletter.Entry) bool { return e.Status == s }
}

func TestDLQRetryReachesOnlyTheFailedGroup(t *testing.T) {
	t.Parallel()
	bus := startDLQ(t, eventbustest.NewBus(t, fastDLQ()))
	topic := eventbustest.UniqueTopic(t, "core.invoice.issued")
	billing, audit := eventbustest.UniqueID("billing"), eventbustest.UniqueID("audit")
	var billingCalls atomic.Int64
	billingRec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		if billingCalls.Add(1) == 1 {
			return errors.New("ledger unavailable")
		}
		return billingRec.Handle(ctx, ev)
	}, eventbus.InGroup(billing))
	auditRec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, auditRec.Handle, eventbus.InGroup(audit))

	id := eventbustest.MustPublish(t, bus, topic, map[string]int{"amount": 42}, eventbus.PublishMetadata{TenantID: "acme"})
	billingRec.WaitForID(t, id) // the retry reached billing
	dlqID := deadletter.ID(billing, topic, "acme", id)
	e := waitEntry(t, bus.DLQ(), dlqID, hasStatus(deadletter.StatusResolved))
	if e.ConsumerGroup != billing || e.RetryCount != 1 || e.EventID != id || e.TenantID != "acme" || e.OriginalTopic != topic {
		t.Fatalf("entry = %+v", e)
	}
	if e.FailureReason != "ledger unavailable" || e.ResolvedAt == nil {
		t.Fatalf("entry = %+v", e)
	}
	entries, _, err := bus.DLQ().List(ctxT(t), deadletter.Query{Topic: topic})
	if err != nil || len(entries) != 1 {
		t.Fatalf("entries for %s: %d (err %v), want exactly the failing group's", topic, len(entries), err)
	}
	// Audit passed the retry record (same key, same partition) before this one.
	sentinel := eventbustest.MustPublish(t, bus, topic, "sentinel", eventbus.PublishMetadata{TenantID: "acme"})
	auditRec.WaitForID(t, sentinel)
	n := 0
	for _, ev := range auditRec.Events() {
		if ev.ID == id {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the other group saw the event %d times, want 1", n)
	}
}

func TestDLQMaxRetriesThenManualRetry(t *testing.T) {
	t.Parallel()
	bus := startDLQ(t, eventbustest.NewBus(t, fastDLQ()))
	topic := eventbustest.UniqueTopic(t, "core.payment.captured")
	group := eventbustest.UniqueID("payments")
	var calls atomic.Int64
	var healthy atomic.Bool
	eventbustest.MustSubscribe(t, bus, topic, func(context.Context, eventbus.RawEvent) error {
		calls.Add(1)
		if healthy.Load() {
			return nil
		}
		return errors.New("gateway timeout")
	}, eventbus.InGroup(group))
	id := eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme"})
	dlqID := deadletter.ID(group, topic, "acme", id)
	e := waitEntry(t, bus.DLQ(), dlqID, hasStatus(deadletter.StatusMaxRetriesExceeded))
	if got := calls.Load(); got != 1+3 {
		t.Fatalf("handler called %d times, want 1 + MaxRetries (3)", got)
	}
	if e.RetryCount != 3 || e.MaxRetries != 3 {
		t.Fatalf("retry count %d of %d", e.RetryCount, e.MaxRetries)
	}
	kinds := map[string]int{}
	for _, a := range e.Attempts {
		kinds[a.Kind]++
	}
	if kinds["failed"] != 4 || kinds["retry"] != 3 {
		t.Fatalf("attempts %+v", kinds)
	}
	err := bus.DLQ().Retry(ctxT(t), dlqID, deadletter.RetryIfAllowed())
	if !errors.Is(err, deadletter.ErrRetryNotAllowed) {
		t.Fatalf("automatic retry after max: %v", err)
	}
	healthy.Store(true)
	if err := bus.DLQ().Retry(ctxT(t), dlqID); err != nil {
		t.Fatal(err)
	}
	e = waitEntry(t, bus.DLQ(), dlqID, hasStatus(deadletter.StatusResolved))
	if calls.Load() != 5 || e.RetryCount != 4 {
		t.Fatalf("after manual retry: %d calls, retry count %d", calls.Load(), e.RetryCount)
	}
	// A manual retry works even on a resolved entry.
	if err := bus.DLQ().Retry(ctxT(t), dlqID); err != nil {
		t.Fatal(err)
	}
}

func TestDLQHandlerSteeredErrorsAndPanics(t *testing.T) {
	t.Parallel()
	bus := startDLQ(t, eventbustest.NewBus(t, fastDLQ()))
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("g")
	var calls sync.Map
	eventbustest.MustSubscribe(t, bus, topic, func(_ context.Context, ev eventbus.RawEvent) error {
		n, _ := calls.LoadOrStore(ev.ID, new(atomic.Int64))
		switch string(ev.Data) {
		case `"permanent"`:
			return eventbus.Permanent(errors.New("email is invalid"))
		case `"later"`:
			n.(*atomic.Int64).Add(1)
			return eventbus.RetryAfter(errors.New("rate limited"), time.Hour)
		default:
			if n.(*atomic.Int64).Add(1) == 1 {
				panic("nil map")
			}
			return nil
		}
	}, eventbus.InGroup(group))
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	perm := eventbustest.MustPublish(t, bus, topic, "permanent", meta)
	later := eventbustest.MustPublish(t, bus, topic, "later", meta)
	panicky := eventbustest.MustPublish(t, bus, topic, "panic", meta)

	e := waitEntry(t, bus.DLQ(), deadletter.ID(group, topic, "acme", perm), hasStatus(deadletter.StatusMaxRetriesExceeded))
	if !e.Permanent || e.RetryCount != 0 {
		t.Fatalf("permanent entry %+v", e)
	}
	e = waitEntry(t, bus.DLQ(), deadletter.ID(group, topic, "acme", later), hasStatus(deadletter.StatusPending))
	if e.NextRetryAt == nil || time.Until(*e.NextRetryAt) < 50*time.Minute {
		t.Fatalf("RetryAfter(1h) scheduled at %v", e.NextRetryAt)
	}
	e = waitEntry(t, bus.DLQ(), deadletter.ID(group, topic, "acme", panicky), hasStatus(deadletter.StatusResolved))
	if !strings.Contains(e.FailureReason, "nil map") || !strings.Contains(e.StackTrace, "goroutine") {
		t.Fatalf("panic entry: reason %q, stack %q", e.FailureReason, e.StackTrace)
	}
}

func TestDLQMalformedRecord(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	bus := startDLQ(t, eventbustest.NewBus(t, fastDLQ(), brokers...))
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("g")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.InGroup(group))

	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	garbage := &kgo.Record{Topic: topic, Key: []byte("acme"), Value: []byte("not an event")}
	if err := raw.ProduceSync(ctxT(t), garbage).FirstErr(); err != nil {
		t.Fatal(err)
	}
	entries := waitList(t, bus.DLQ(), deadletter.Query{Topic: topic}, 1)
	e := entries[0]
	if !strings.HasPrefix(e.FailureReason, deadletter.ReasonMalformed) || e.ConsumerGroup != group {
		t.Fatalf("entry %+v", e)
	}
	// Unreadable bytes are never re-published on their own: only a manual
	// retry sends them again.
	if e.Status != deadletter.StatusMaxRetriesExceeded || !e.Permanent || e.NextRetryAt != nil {
		t.Fatalf("malformed entry: status %s, permanent %t, next retry %v; want max-retries-exceeded, permanent, none scheduled",
			e.Status, e.Permanent, e.NextRetryAt)
	}
	var value string
	if err := json.Unmarshal(e.OriginalEvent, &value); err != nil || value != "not an event" {
		t.Fatalf("original event %s", e.OriginalEvent)
	}
	// The partition moved on: a good event after the bad one is delivered.
	id := eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme"})
	rec.WaitForID(t, id)
}

func waitList(t *testing.T, q *eventbus.DeadLetterQueue, f deadletter.Query, n int) []deadletter.Entry {
	t.Helper()
	var list []deadletter.Entry
	eventbustest.Eventually(t, fmt.Sprintf("%d dead-letter entries", n), func() error {
		var err error
		list, _, err = q.List(ctxT(t), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) < n {
			return fmt.Errorf("have %d", len(list))
		}
		return nil
	})
	return list
}

func TestDLQSurvivesRestartAndAgreesAcrossInstances(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	cfg := fastDLQ()
	cfg.DLQ.MaxRetries = 1
	first := startDLQ(t, eventbustest.NewBus(t, cfg, brokers...))
	topic := eventbustest.UniqueTopic(t, "core.report.generated")
	group := eventbustest.UniqueID("reports")
	eventbustest.MustSubscribe(t, first, topic, func(context.Context, eventbus.RawEvent) error {
		return errors.New("disk full")
	}, eventbus.InGroup(group))
	var ids []string
	for i := range 3 {
		ids = append(ids, eventbustest.MustPublish(t, first, topic, i, eventbus.PublishMetadata{TenantID: "acme"}))
	}
	for _, id := range ids {
		waitEntry(t, first.DLQ(), deadletter.ID(group, topic, "acme", id), hasStatus(deadletter.StatusMaxRetriesExceeded))
	}
	toDelete := deadletter.ID(group, topic, "acme", ids[0])
	if err := first.DLQ().Delete(ctxT(t), toDelete); err != nil {
		t.Fatal(err)
	}
	before, _, err := first.DLQ().List(ctxT(t), deadletter.Query{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	// A new instance rebuilds the same view from the dlq topics alone
	// (without Start: its reads read the topics).
	second := eventbustest.NewBus(t, cfg, brokers...)
	after, _, err := second.DLQ().List(ctxT(t), deadletter.Query{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 || len(before) != 2 {
		t.Fatalf("entries before %d, after restart %d, want 2 (one deleted)", len(before), len(after))
	}
	for i := range after {
		if after[i].ID != before[i].ID || after[i].Status != before[i].Status || after[i].RetryCount != before[i].RetryCount {
			t.Fatalf("entry %d changed across restart: %+v vs %+v", i, before[i], after[i])
		}
	}
	if _, err := second.DLQ().Get(ctxT(t), toDelete); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("deleted entry: %v", err)
	}
	stats, err := second.DLQ().Stats(ctxT(t), deadletter.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.ByTopic[topic] != 2 || stats.ByStatus["max-retries-exceeded"] < 2 || stats.ByReason["disk full"] < 2 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestDLQTwoInstancesSendEachRetryOnce(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	cfg := fastDLQ()
	cfg.DLQ.SchedulerGroup = eventbustest.UniqueID("scheduler")
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	group := eventbustest.UniqueID("fulfilment")
	var calls atomic.Int64
	failing := func(context.Context, eventbus.RawEvent) error {
		calls.Add(1)
		return errors.New("warehouse offline")
	}
	a := startDLQ(t, eventbustest.NewBus(t, cfg, brokers...))
	b := startDLQ(t, eventbustest.NewBus(t, cfg, brokers...))
	eventbustest.MustSubscribe(t, a, topic, failing, eventbus.InGroup(group))
	eventbustest.MustSubscribe(t, b, topic, failing, eventbus.InGroup(group))
	const events = 6
	var ids, tenants []string
	for i := range events {
		tenants = append(tenants, eventbustest.UniqueID("tenant"))
		ids = append(ids, eventbustest.MustPublish(t, a, topic, i, eventbus.PublishMetadata{TenantID: tenants[i]}))
	}
	for i, id := range ids {
		e := waitEntry(t, b.DLQ(), deadletter.ID(group, topic, tenants[i], id), hasStatus(deadletter.StatusMaxRetriesExceeded))
		if e.RetryCount != 3 {
			t.Fatalf("entry %s sent %d retries, want 3", e.ID, e.RetryCount)
		}
	}
	if got := calls.Load(); got != events*(1+3) {
		t.Fatalf("handlers ran %d times across both instances, want %d (each retry once)", got, events*4)
	}
}

// TestDLQOtherSchedulerGroupsLeaveEntriesAlone runs a second deployment,
// under another scheduler group, on the same cluster: it reads the same
// dlq.* topics but never retries the first deployment's entries.
func TestDLQOtherSchedulerGroupsLeaveEntriesAlone(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	ours, theirs := fastDLQ(), fastDLQ()
	ours.DLQ.SchedulerGroup = eventbustest.UniqueID("ours")
	theirs.DLQ.SchedulerGroup = eventbustest.UniqueID("theirs")
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	group := eventbustest.UniqueID("fulfilment")
	var calls atomic.Int64
	bus := startDLQ(t, eventbustest.NewBus(t, ours, brokers...))
	other := eventbustest.NewBus(t, theirs, brokers...)
	// The other deployment's scheduler owns the DLQ topic before anything fails.
	if err := other.Client().Topics().Ensure(ctxT(t), "dlq."+topic); err != nil {
		t.Fatal(err)
	}
	if err := other.DLQ().Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitGroupAssigned(t, other, theirs.DLQ.SchedulerGroup, "dlq."+topic, 3)
	eventbustest.MustSubscribe(t, bus, topic, func(context.Context, eventbus.RawEvent) error {
		calls.Add(1)
		return errors.New("warehouse offline")
	}, eventbus.InGroup(group))
	id := eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme"})
	e := waitEntry(t, other.DLQ(), deadletter.ID(group, topic, "acme", id), hasStatus(deadletter.StatusMaxRetriesExceeded))
	if e.SchedulerGroup != ours.DLQ.SchedulerGroup {
		t.Errorf("entry's scheduler group %q, want %q", e.SchedulerGroup, ours.DLQ.SchedulerGroup)
	}
	if got := calls.Load(); got != 1+3 {
		t.Fatalf("handler ran %d times, want 4 (the failure and 3 retries, each sent once)", got)
	}
}

// waitGroupAssigned polls (bounded) until group has n partitions of topic
// assigned to its members.
func waitGroupAssigned(t *testing.T, bus *eventbus.Bus, group, topic string, n int) {
	t.Helper()
	adm, err := bus.Client().Admin()
	if err != nil {
		t.Fatal(err)
	}
	eventbustest.Eventually(t, fmt.Sprintf("group %s to get the %d partitions of %s", group, n, topic), func() error {
		described, err := adm.DescribeGroups(ctxT(t), group)
		g, ok := described[group]
		if err == nil && ok && len(g.AssignedPartitions()[topic]) == n {
			return nil
		}
		return fmt.Errorf("%d assigned (last error %v)", len(g.AssignedPartitions()[topic]), err)
	})
}

func TestDLQBadInput(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	q := bus.DLQ()
	ctx := ctxT(t)
	if _, err := q.Get(ctx, "nope"); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
	if err := q.Retry(ctx, "nope"); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("retry unknown: %v", err)
	}
	if err := q.Delete(ctx, "nope"); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("delete unknown: %v", err)
	}
	if _, _, err := q.List(ctx, deadletter.Query{Status: "broken"}); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Fatalf("bad status: %v", err)
	}
	// A topic filter is an original topic by the rules of the bus's
	// client, for every call: not a name that breaks them, not a dlq.*
	// topic (which would match nothing).
	for _, topic := range []string{"orders", "core.user.create", "dlq.core.user.created"} {
		query := deadletter.Query{Topic: topic}
		if _, _, err := q.RetryAll(ctx, query); !errors.Is(err, eventbus.ErrInvalidTopic) {
			t.Fatalf("RetryAll, topic %q: %v", topic, err)
		}
		if _, _, err := q.List(ctx, query); !errors.Is(err, eventbus.ErrInvalidTopic) {
			t.Fatalf("List, topic %q: %v", topic, err)
		}
		if _, err := q.Stats(ctx, query); !errors.Is(err, eventbus.ErrInvalidTopic) {
			t.Fatalf("Stats, topic %q: %v", topic, err)
		}
	}
	// Stats and RetryAll take every match: a query that orders or pages is
	// refused rather than half obeyed.
	for _, query := range []deadletter.Query{{Limit: 1}, {Offset: 1}, {Oldest: true}} {
		if _, err := q.Stats(ctx, query); !errors.Is(err, eventbus.ErrInvalidConfig) {
			t.Fatalf("Stats(%+v): %v", query, err)
		}
		if _, _, err := q.RetryAll(ctx, query); !errors.Is(err, eventbus.ErrInvalidConfig) {
			t.Fatalf("RetryAll(%+v): %v", query, err)
		}
	}
	if _, _, err := q.List(ctx, deadletter.Query{Limit: -1}); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Fatalf("negative limit: %v", err)
	}
}

// TestDLQReadyTellsWhyNot checks DeadLetterQueue.Ready, which readiness
// probes use: not started, ready once started, and stopped.
func TestDLQReadyTellsWhyNot(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	if err := bus.DLQ().Ready(); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Fatalf("Ready before Start = %v; want an error saying it is not started", err)
	}
	if err := bus.DLQ().Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := bus.DLQ().Ready(); err != nil {
		t.Fatalf("Ready after Start = %v; want nil", err)
	}
	if err := bus.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := bus.DLQ().Ready(); !errors.Is(err, eventbus.ErrShuttingDown) {
		t.Fatalf("Ready after Shutdown = %v; want ErrShuttingDown", err)
	}
}

// TestDLQStartsWithAnEmptiedPartition: a dlq.* partition whose records all
// went (retention, DeleteRecords: start offset = end offset > 0) must not
// keep a new process's dead letter queue from becoming ready, nor its
// subscriptions from starting.
func TestDLQStartsWithAnEmptiedPartition(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	ev := eventbus.RawEvent{ID: eventbustest.UniqueID("e"), Type: topic, TenantID: "acme", Timestamp: time.Now(), Data: []byte(`{}`)}
	if _, err := bus.DLQ().RouteToDLQ(ctxT(t), topic, ev, "mailer", errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	adm, err := bus.Client().Admin()
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctxT(t), "dlq."+topic)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteRecords(ctxT(t), ends.Offsets()); err != nil {
		t.Fatal(err)
	}

	other := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	ctx, cancel := context.WithTimeout(ctxT(t), 15*time.Second)
	defer cancel()
	if err := other.DLQ().Start(ctx); err != nil {
		t.Fatalf("a new process's DLQ with an emptied dlq.* partition: %v", err)
	}
	if _, err := eventbus.Subscribe(ctx, other, eventbus.Name[json.RawMessage](topic), func(context.Context, eventbus.RawEvent) error { return nil }); err != nil {
		t.Fatalf("Subscribe in that process: %v", err)
	}
}
