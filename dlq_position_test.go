package eventbus_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// TestUnsignedRetriesNeedNoViewInSubscribers: without a signing key too, a
// process that only subscribes keeps no dead-letter view. Its failures are
// dead-lettered and retried by the process that runs the DLQ, and it checks
// each retry by reading the one entry record the retry names. A retry
// replayed after it was answered changes no entry.
func TestUnsignedRetriesNeedNoViewInSubscribers(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	cfg := fastDLQ()
	cfg.DLQ.MaxRetries = 1
	service := eventbustest.NewBus(t, cfg, brokers...)
	ops := startDLQ(t, eventbustest.NewBus(t, cfg, brokers...))
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	mailer, audit := eventbustest.UniqueID("mailer"), eventbustest.UniqueID("audit")
	var healthy atomic.Bool
	var mailerCalls atomic.Int64
	mailerRec, auditRec := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, service, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		mailerCalls.Add(1)
		if !healthy.Load() && strings.Contains(string(ev.Data), "fail") {
			return errors.New("smtp down")
		}
		return mailerRec.Handle(ctx, ev)
	}, eventbus.InGroup(mailer))
	eventbustest.MustSubscribe(t, service, topic, auditRec.Handle, eventbus.InGroup(audit))

	// Fails, is retried once (only the mailer sees the retry), fails again: out of retries.
	id := eventbustest.MustPublish(t, service, topic, "fail", eventbus.PublishMetadata{TenantID: "acme"})
	entryID := eventbus.FailedEventID(mailer, topic, "acme", id)
	e := waitEntry(t, ops.DLQ(), entryID, hasStatus(eventbus.StatusMaxRetriesExceeded))
	if e.RetryCount != 1 || mailerCalls.Load() != 2 {
		t.Fatalf("entry %+v after %d handlings; want one retry, handled twice", e, mailerCalls.Load())
	}
	if err := service.DLQ().Ready(); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Fatalf("the subscribing process's DLQ: %v; want it never started (no view)", err)
	}

	// The retry as it went out, replayed once the handler is healthy: an
	// ordinary event to the mailer that resolves nothing.
	retry := findRetry(t, brokers, topic, entryID)
	if _, ok := headerValue(retry, eventbus.HeaderDLQPosition); !ok {
		t.Fatalf("retry without %s: %+v", eventbus.HeaderDLQPosition, retry.Headers)
	}
	healthy.Store(true)
	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	replay := &kgo.Record{Topic: retry.Topic, Key: retry.Key, Value: retry.Value, Headers: retry.Headers}
	if err := raw.ProduceSync(ctxT(t), replay).FirstErr(); err != nil {
		t.Fatal(err)
	}
	mailerRec.WaitForID(t, id)
	// A later event of the same key is handled after the replay is finished.
	after := eventbustest.MustPublish(t, service, topic, "after", eventbus.PublishMetadata{TenantID: "acme"})
	mailerRec.WaitForID(t, after)
	if got, err := ops.DLQ().Get(ctxT(t), entryID); err != nil || got.Status != eventbus.StatusMaxRetriesExceeded || got.ResolvedAt != nil {
		t.Fatalf("the replayed retry changed the entry: %+v (%v)", got, err)
	}

	// A manual retry now is outstanding: it resolves the entry.
	if err := ops.DLQ().Retry(ctxT(t), entryID); err != nil {
		t.Fatal(err)
	}
	resolved := waitEntry(t, ops.DLQ(), entryID, hasStatus(eventbus.StatusResolved))

	// The same old retry replayed once more, and failing this time: its
	// entry has moved on, so the failure leaves it as it is (a fresh entry
	// would erase its history).
	healthy.Store(false)
	if err := raw.ProduceSync(ctxT(t), &kgo.Record{Topic: retry.Topic, Key: retry.Key, Value: retry.Value, Headers: retry.Headers}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	last := eventbustest.MustPublish(t, service, topic, "last", eventbus.PublishMetadata{TenantID: "acme"})
	mailerRec.WaitForID(t, last)
	if got, err := ops.DLQ().Get(ctxT(t), entryID); err != nil || got.Status != eventbus.StatusResolved || got.RetryCount != resolved.RetryCount || len(got.Attempts) != len(resolved.Attempts) {
		t.Fatalf("a failing replay of an answered retry changed the entry: %+v (%v); was %+v", got, err, resolved)
	}
	auditRec.WaitForID(t, last)
	if n := len(auditRec.Events()); n != 3 {
		t.Fatalf("audit handled %d events; want the original and the two later ones, no retry", n)
	}
	if err := service.DLQ().Ready(); err == nil {
		t.Fatal("the subscribing process started a dead-letter view")
	}
}

// findRetry reads topic from the start for the retry of entry id.
func findRetry(t *testing.T, brokers []string, topic, id string) *kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t)
	for ctx.Err() == nil {
		var found *kgo.Record
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if v, ok := headerValue(r, eventbus.HeaderDLQID); ok && v == id {
				found = r
			}
		})
		if found != nil {
			return found
		}
	}
	t.Fatalf("no retry of %s on %s", id, topic)
	return nil
}

func headerValue(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// TestRetryOutcomeYieldsToANewerRetry: a retry whose entry moves on while
// its handler runs (an operator retries the entry again meanwhile) leaves
// its outcome to the newer attempt; writing it would erase that attempt.
func TestRetryOutcomeYieldsToANewerRetry(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	service := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	ops := startDLQ(t, eventbustest.NewBus(t, eventbus.Config{}, brokers...))
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("mailer")
	var calls atomic.Int64
	inFirstRetry, release := make(chan struct{}), make(chan struct{})
	eventbustest.MustSubscribe(t, service, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		if calls.Add(1) == 2 { // the first retry: held until the operator retried again
			close(inFirstRetry)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return eventbus.Permanent(errors.New("mailbox rejected"))
	}, eventbus.InGroup(group))

	id := eventbustest.MustPublish(t, service, topic, "hello", eventbus.PublishMetadata{TenantID: "acme"})
	entryID := eventbus.FailedEventID(group, topic, "acme", id)
	waitEntry(t, ops.DLQ(), entryID, hasStatus(eventbus.StatusMaxRetriesExceeded))
	if err := ops.DLQ().Retry(ctxT(t), entryID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inFirstRetry:
	case <-ctxT(t).Done():
		t.Fatal("the first retry never reached the handler")
	}
	if err := ops.DLQ().Retry(ctxT(t), entryID); err != nil { // the entry moves on
		t.Fatal(err)
	}
	close(release)
	e := waitEntry(t, ops.DLQ(), entryID, func(e eventbus.FailedEvent) bool {
		return e.RetryCount == 2 && e.Status == eventbus.StatusMaxRetriesExceeded
	})
	var kinds []string
	for _, a := range e.Attempts {
		kinds = append(kinds, a.Kind)
	}
	if want := []string{"failed", "manual-retry", "manual-retry", "failed"}; !slices.Equal(kinds, want) {
		t.Fatalf("history %v, want %v (the first retry's failure yields to the second retry's)", kinds, want)
	}
}
