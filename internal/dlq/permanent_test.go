package dlq

import (
	"slices"
	"testing"
	"time"

	"github.com/plexica/eventbus/internal/wire"
)

// dueIDs returns the IDs of the entries the view finds due at now, in any
// partition and scheduler group.
func dueIDs(q *Queue, now time.Time) []string {
	var ids []string
	for _, got := range q.currentView().due(now, func(topicPartition, string) bool { return true }) {
		ids = append(ids, got...)
	}
	return ids
}

// TestPermanentFollowsTheLatestFailure: a permanent failure, retried by
// hand, fails again with an error that is not permanent. The entry then
// waits for automatic retries like any other (pending, not permanent, due
// at its next retry time), instead of staying permanent and never due.
func TestPermanentFollowsTheLatestFailure(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{DisableScheduler: true})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const topic, group = "core.user.created", "mailer"
	r := eventRecord(topic, "acme")
	eventID := wire.EventIDOf(r)
	id, err := q.RecordFailure(ctx, r, group, eventID, nil, Failure{Reason: "invalid address", Permanent: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err := q.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	retries := retryReader(t, host, topic)
	if err := q.Retry(ctx, e, true); err != nil {
		t.Fatal(err)
	}
	sent := retries(ctx, 1)
	claim, ok, err := q.VerifyRetry(ctx, sent, topic, group)
	if err != nil || !ok || !claim.Outstanding {
		t.Fatalf("the manual retry: verified %v, outstanding %v, err %v", ok, claim.Outstanding, err)
	}
	if _, err := q.RecordFailure(ctx, sent, group, eventID, &claim, Failure{Reason: "connection refused"}); err != nil {
		t.Fatal(err)
	}
	if e, err = q.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e.Permanent || e.Status != StatusPending || e.NextRetryAt == nil {
		t.Fatalf("after a transient failure of a manual retry: permanent %v, status %s, next retry %v; want false, pending, set", e.Permanent, e.Status, e.NextRetryAt)
	}
	if at := *e.NextRetryAt; !isDue(&e, at) || !slices.Contains(dueIDs(q, at), id) {
		t.Fatal("the entry is never due: a permanent failure it no longer has still holds it")
	}
}

// TestUnansweredRetryOfAPermanentEntryTimesOut: a manual retry of a
// permanent entry that is never answered times out like any retry, to a
// state that can be retried: out of retries (only a manual retry sends a
// permanent failure again), not `retrying` for ever.
func TestUnansweredRetryOfAPermanentEntryTimesOut(t *testing.T) {
	t.Parallel()
	q, _, ctx := newTestQueue(t, Config{DisableScheduler: true})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r := eventRecord("core.user.created", "acme")
	id, err := q.RecordFailure(ctx, r, "mailer", wire.EventIDOf(r), nil, Failure{Reason: "invalid address", Permanent: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err := q.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Retry(ctx, e, true); err != nil {
		t.Fatal(err)
	}
	if e, err = q.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e.Status != StatusRetrying || e.NextRetryAt == nil {
		t.Fatalf("after the manual retry: status %s, timeout %v", e.Status, e.NextRetryAt)
	}
	timedOut := e.NextRetryAt.Add(time.Second)
	if !isDue(&e, timedOut) || !slices.Contains(dueIDs(q, timedOut), id) {
		t.Fatal("the unanswered retry of a permanent entry never times out: it stays retrying for ever")
	}
	newScheduler(q).schedule(ctx, e, timedOut)
	if e, err = q.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e.Status != StatusMaxRetriesExceeded || e.RetryCount != 1 {
		t.Fatalf("after the timeout: status %s, retry count %d; want max-retries-exceeded after 1 (no automatic retry of a permanent failure)", e.Status, e.RetryCount)
	}
}
