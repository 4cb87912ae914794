package dlq

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/wire"
)

// TestAttemptIsSpentOnlyWhenTheRetryIsSent: a retry whose send fails (the
// produce of the retry, or the creation of its topic) spends no attempt.
// The entry stays retryable soon (with backoff), not `retrying` for the
// retry timeout; on its last attempt it is not out of retries, since the
// last retry was never sent; once the send works, the retry goes out as
// that attempt.
func TestAttemptIsSpentOnlyWhenTheRetryIsSent(t *testing.T) {
	t.Parallel()
	for _, fault := range []string{"produce", "topic"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			q, host, ctx := newTestQueue(t, Config{DisableScheduler: true, MaxRetries: 1})
			const topic, group = "core.user.created", "mailer"
			var failing atomic.Bool
			errBroker := errors.New("injected: broker unavailable")
			if fault == "produce" {
				host.produceFault = func(rec *kgo.Record) error {
					if failing.Load() && !strings.HasPrefix(rec.Topic, "dlq.") {
						return errBroker
					}
					return nil
				}
			} else {
				host.ensureFault = func(t string) error {
					if failing.Load() && !strings.HasPrefix(t, "dlq.") {
						return errBroker
					}
					return nil
				}
			}
			if err := q.Start(ctx); err != nil {
				t.Fatal(err)
			}
			r := eventRecord(topic, "acme")
			id, err := q.RecordFailure(ctx, r, group, wire.EventIDOf(r), nil, Failure{Reason: "connection refused"})
			if err != nil {
				t.Fatal(err)
			}
			e, err := q.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			failing.Store(true)
			before := time.Now()
			if err := q.Retry(ctx, e, false); !errors.Is(err, errBroker) {
				t.Fatalf("Retry with the %s failing = %v", fault, err)
			}
			e, err = q.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if e.RetryCount != 0 || e.Status != StatusPending {
				t.Fatalf("after a retry that was never sent: retry count %d, status %s; want 0, pending (the attempt is not spent)", e.RetryCount, e.Status)
			}
			if e.NextRetryAt == nil || e.NextRetryAt.After(before.Add(time.Minute)) {
				t.Fatalf("after a retry that was never sent the next retry is at %v; want soon (backoff), not after the retry timeout", e.NextRetryAt)
			}
			if !isDue(&e, *e.NextRetryAt) {
				t.Fatal("the entry is not due at its next retry time")
			}
			// The send works again: the retry goes out as attempt 1.
			failing.Store(false)
			retries := retryReader(t, host, topic)
			if err := q.Retry(ctx, e, false); err != nil {
				t.Fatal(err)
			}
			sent := retries(ctx, 1)
			claim, ok, err := q.VerifyRetry(ctx, sent, topic, group)
			if err != nil || !ok || !claim.Outstanding {
				t.Fatalf("the retry sent once the fault cleared: verified %v, outstanding %v, err %v", ok, claim.Outstanding, err)
			}
			if e, err = q.Get(ctx, id); err != nil || e.RetryCount != 1 || e.Status != StatusRetrying {
				t.Fatalf("after the retry was sent: retry count %d, status %s, err %v", e.RetryCount, e.Status, err)
			}
		})
	}
}

// TestManualRetryNotSentKeepsTheOutstandingRetry: a manual retry whose
// send fails, of an entry whose retry is outstanding, leaves that retry
// outstanding: same attempt, same timeout.
func TestManualRetryNotSentKeepsTheOutstandingRetry(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{DisableScheduler: true})
	var failing atomic.Bool
	errBroker := errors.New("injected: broker unavailable")
	host.produceFault = func(rec *kgo.Record) error {
		if failing.Load() && !strings.HasPrefix(rec.Topic, "dlq.") {
			return errBroker
		}
		return nil
	}
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const topic, group = "core.user.created", "mailer"
	r := eventRecord(topic, "acme")
	id, err := q.RecordFailure(ctx, r, group, wire.EventIDOf(r), nil, Failure{Reason: "connection refused"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := q.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Retry(ctx, e, false); err != nil {
		t.Fatal(err)
	}
	sent, err := q.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	if err := q.Retry(ctx, sent, true); !errors.Is(err, errBroker) {
		t.Fatalf("manual Retry with the produce failing = %v", err)
	}
	e, err = q.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != StatusRetrying || e.RetryCount != 1 || e.NextRetryAt == nil || !e.NextRetryAt.Equal(*sent.NextRetryAt) {
		t.Fatalf("after a manual retry that was not sent: status %s, retry count %d, timeout %v; want retrying, 1, %v", e.Status, e.RetryCount, e.NextRetryAt, sent.NextRetryAt)
	}
	if last := e.Attempts[len(e.Attempts)-1]; last.Kind != AttemptRetryNotSent {
		t.Fatalf("the history ends with %q", last.Kind)
	}
}
