package eventbus

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestRetryOutcomeCrossingANewerRetry: an operator retries an entry again
// in the instant between the check that the first retry is still
// outstanding and the write of its outcome. The outcome then erases the
// operator's version, which is written again after it, so that the second
// retry stands and its outcome is the entry's: two retries, both failed.
func TestRetryOutcomeCrossingANewerRetry(t *testing.T) {
	bus, ctx := internalBus(t, Config{DLQ: DLQConfig{SchedulerGroup: "crossing-" + newUUID()}})
	q := bus.DLQ()
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const topic, group = "core.user.created", "mailer"
	var entryID string
	var once sync.Once
	crossed := make(chan error, 1)
	q.testHookBeforeOutcome = func() {
		once.Do(func() { crossed <- q.RetryFailedEvent(ctx, entryID) }) // the operator's second retry
	}
	if _, err := bus.Subscribe(ctx, topic, func(context.Context, RawEvent) error {
		return Permanent(errors.New("mailbox rejected"))
	}, SubscribeOptions{GroupID: group}); err != nil {
		t.Fatal(err)
	}
	eventID, err := bus.Publish(ctx, topic, "hello", PublishMetadata{TenantID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	entryID = FailedEventID(group, eventID)
	waitFor := func(what string, ok func(FailedEvent) bool) FailedEvent {
		t.Helper()
		for {
			e, err := q.FailedEvent(ctx, entryID)
			if err == nil && ok(e) {
				return e
			}
			if ctx.Err() != nil {
				t.Fatalf("waited for %s: last %+v (%v)", what, e, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("the first failure", func(e FailedEvent) bool { return e.Status == StatusMaxRetriesExceeded })
	if err := q.RetryFailedEvent(ctx, entryID); err != nil {
		t.Fatal(err)
	}
	if err := <-crossed; err != nil {
		t.Fatal(err)
	}
	e := waitFor("both retries' failures", func(e FailedEvent) bool {
		return e.RetryCount == 2 && e.Status == StatusMaxRetriesExceeded
	})
	var kinds []string
	for _, a := range e.Attempts {
		kinds = append(kinds, a.Kind)
	}
	if len(kinds) == 0 || kinds[len(kinds)-1] != "failed" {
		t.Fatalf("history %v: the second retry's failure is not the last step", kinds)
	}
}
