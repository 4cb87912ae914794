package dlq

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/wire"
)

// TestAwaitsReadsOnlyAfterWhatItSaw: a claim's checks read the entry's
// partition only after the newest version an earlier check found
// outstanding. A copy of the retrying version keeps the retry outstanding
// (and becomes the point the next check reads from); a newer version ends
// it.
func TestAwaitsReadsOnlyAfterWhatItSaw(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{DisableScheduler: true})
	const topic, group = "core.user.created", "mailer"
	original := eventRecord(topic, "acme")
	id, err := q.RecordFailure(ctx, original, group, wire.EventIDOf(original), nil, Failure{Reason: "boom", Permanent: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(ctx); err != nil {
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
	claim, ok, err := q.VerifyRetry(ctx, retries(ctx, 1), topic, group)
	if err != nil || !ok || !claim.Outstanding || claim.seen != claim.at.Offset {
		t.Fatalf("verified %v, outstanding %v, seen %d (at %d)", ok, claim.Outstanding, claim.seen, claim.at.Offset)
	}
	if ok, err := q.awaits(ctx, &claim); !ok || err != nil || claim.seen != claim.at.Offset {
		t.Fatalf("nothing after the retry's version: seen %d, want %d", claim.seen, claim.at.Offset)
	}

	// A copy of the retrying version (compaction's, another writer's).
	reader, err := q.recordReader()
	if err != nil {
		t.Fatal(err)
	}
	got, err := reader.Read(ctx, claim.at.Topic, claim.at.Partition, []int64{claim.at.Offset})
	if err != nil || got[claim.at.Offset] == nil {
		t.Fatalf("read the retry's version: %v", err)
	}
	copied := &kgo.Record{Topic: claim.at.Topic, Partition: claim.at.Partition, Key: got[claim.at.Offset].Key, Value: got[claim.at.Offset].Value}
	if err := host.Produce(ctx, copied); err != nil {
		t.Fatal(err)
	}
	if ok, err := q.awaits(ctx, &claim); !ok || err != nil || claim.seen != copied.Offset {
		t.Fatalf("after a copy: seen %d, want the copy's offset %d", claim.seen, copied.Offset)
	}
	if ok, err := q.awaits(ctx, &claim); !ok || err != nil || claim.seen != copied.Offset {
		t.Fatalf("nothing after the copy: seen %d, want %d", claim.seen, copied.Offset)
	}

	// A newer version ends the claim; seen stays at the last outstanding one.
	newer := *claim.entry
	newer.Status = StatusResolved
	if _, err := q.write(ctx, &newer, false); err != nil {
		t.Fatal(err)
	}
	if ok, err := q.awaits(ctx, &claim); ok || err != nil || claim.seen != copied.Offset {
		t.Fatalf("after a newer version: outstanding, or seen %d moved from %d", claim.seen, copied.Offset)
	}
}

// TestVerifyRetryTellsAReadErrorFromNoEntry: a read that fails is an
// error wrapping ErrEntryUnreadable, never "no such entry"; once reads
// work the same retry verifies. Headers that name a partition the DLQ
// topic does not have are no entry (the cluster's answer), not an error.
func TestVerifyRetryTellsAReadErrorFromNoEntry(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{DisableScheduler: true})
	const topic, group = "core.user.created", "mailer"
	original := eventRecord(topic, "acme")
	id, err := q.RecordFailure(ctx, original, group, wire.EventIDOf(original), nil, Failure{Reason: "boom", Permanent: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(ctx); err != nil {
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
	retry := retries(ctx, 1)

	injected := errors.New("injected: connection reset")
	q.SetReadFault(func() error { return injected })
	if _, ok, err := q.VerifyRetry(ctx, retry, topic, group); ok || !errors.Is(err, ErrEntryUnreadable) || !errors.Is(err, injected) {
		t.Fatalf("VerifyRetry while reads fail: ok %v, err %v; want ErrEntryUnreadable", ok, err)
	}
	if _, ok, err := q.VerifyRetry(ctx, retry, topic, "audit"); ok || !errors.Is(err, ErrEntryUnreadable) {
		t.Fatalf("another group's VerifyRetry while reads fail: ok %v, err %v; want ErrEntryUnreadable", ok, err)
	}
	q.SetReadFault(nil)
	claim, ok, err := q.VerifyRetry(ctx, retry, topic, group)
	if err != nil || !ok || !claim.Outstanding {
		t.Fatalf("VerifyRetry once reads work: ok %v, outstanding %v, err %v", ok, claim.Outstanding, err)
	}
	// The outcome's check fails too while reads fail: nothing is written.
	q.SetReadFault(func() error { return injected })
	if err := q.Resolve(ctx, claim); !errors.Is(err, ErrEntryUnreadable) {
		t.Fatalf("Resolve while reads fail: %v, want ErrEntryUnreadable", err)
	}
	q.SetReadFault(nil)
	if err := q.Resolve(ctx, claim); err != nil {
		t.Fatal(err)
	}

	forged := &kgo.Record{Topic: retry.Topic, Key: retry.Key, Value: retry.Value}
	for _, h := range retry.Headers {
		if h.Key == wire.HeaderDLQPosition {
			h.Value = []byte("99:0")
		}
		forged.Headers = append(forged.Headers, h)
	}
	if _, ok, err := q.VerifyRetry(ctx, forged, topic, group); ok || err != nil {
		t.Fatalf("VerifyRetry of a position on no partition: ok %v, err %v; want no entry, no error", ok, err)
	}
}

func TestUnreadable(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]bool{
		kerr.UnknownTopicOrPartition:                          false,
		fmt.Errorf("read: %w", kerr.TopicAuthorizationFailed): false,
		kerr.NotLeaderForPartition:                            true,
		kerr.RequestTimedOut:                                  true,
		errors.New("dial tcp: connection refused"):            true,
	} {
		if got := unreadable(err); got != want {
			t.Errorf("unreadable(%v) = %v, want %v", err, got, want)
		}
	}
}
