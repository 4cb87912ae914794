package dlq

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/wire"
)

// TestRetryOutcomeCrossingANewerRetry: an operator retries an entry again
// in the instant between the check that the first retry is still
// outstanding and the write of its outcome. The outcome then erases the
// operator's version, which is written again after it, so that the second
// retry stands and its outcome is the entry's: two retries, both failed.
func TestRetryOutcomeCrossingANewerRetry(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{DisableScheduler: true})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const topic, group = "core.user.created", "mailer"
	rejected := Failure{Reason: "mailbox rejected", Permanent: true}
	original := eventRecord(topic, "acme")
	eventID := wire.EventIDOf(original)
	id, err := q.RecordFailure(ctx, original, group, eventID, nil, rejected)
	if err != nil {
		t.Fatal(err)
	}
	retry := func() {
		t.Helper()
		e, err := q.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Retry(ctx, e, true); err != nil {
			t.Fatal(err)
		}
	}
	retries := retryReader(t, host, topic)
	retry()
	first := retries(ctx, 1)
	claim, ok, err := q.VerifyRetry(ctx, first, topic, group)
	if err != nil || !ok || !claim.Outstanding {
		t.Fatalf("the first retry: verified %v, outstanding %v", ok, claim.Outstanding)
	}
	var once sync.Once
	q.hookBeforeOutcome = func() { once.Do(retry) } // the operator's second retry
	if _, err := q.RecordFailure(ctx, first, group, eventID, &claim, rejected); err != nil {
		t.Fatal(err)
	}
	second := retries(ctx, 2)
	claim, ok, err = q.VerifyRetry(ctx, second, topic, group)
	if err != nil || !ok || !claim.Outstanding {
		t.Fatalf("the second retry: verified %v, outstanding %v: the first retry's outcome erased it", ok, claim.Outstanding)
	}
	if _, err := q.RecordFailure(ctx, second, group, eventID, &claim, rejected); err != nil {
		t.Fatal(err)
	}
	e, err := q.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, a := range e.Attempts {
		kinds = append(kinds, a.Kind)
	}
	if e.RetryCount != 2 || e.Status != StatusMaxRetriesExceeded || kinds[len(kinds)-1] != "failed" {
		t.Fatalf("entry after both retries failed: retry count %d, status %s, history %v", e.RetryCount, e.Status, kinds)
	}
}

// retryReader reads topic from its start; the function it returns waits
// for the retry record of the given attempt.
func retryReader(t *testing.T, host *testHost, topic string) func(context.Context, int) *kgo.Record {
	t.Helper()
	cl, err := host.NewClient(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return func(ctx context.Context, attempt int) *kgo.Record {
		t.Helper()
		for ctx.Err() == nil {
			var found *kgo.Record
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				if a, ok := wire.HeaderValue(r.Headers, wire.HeaderRetryAttempt); ok && string(a) == strconv.Itoa(attempt) {
					found = r
				}
			})
			if found != nil {
				return found
			}
		}
		t.Fatalf("retry %d never arrived", attempt)
		return nil
	}
}
