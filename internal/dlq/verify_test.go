package dlq

import (
	"testing"

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
	claim, ok := q.VerifyRetry(ctx, retries(ctx, 1), topic, group)
	if !ok || !claim.Outstanding || claim.seen != claim.at.Offset {
		t.Fatalf("verified %v, outstanding %v, seen %d (at %d)", ok, claim.Outstanding, claim.seen, claim.at.Offset)
	}
	if !q.awaits(ctx, &claim) || claim.seen != claim.at.Offset {
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
	if !q.awaits(ctx, &claim) || claim.seen != copied.Offset {
		t.Fatalf("after a copy: seen %d, want the copy's offset %d", claim.seen, copied.Offset)
	}
	if !q.awaits(ctx, &claim) || claim.seen != copied.Offset {
		t.Fatalf("nothing after the copy: seen %d, want %d", claim.seen, copied.Offset)
	}

	// A newer version ends the claim; seen stays at the last outstanding one.
	newer := *claim.entry
	newer.Status = StatusResolved
	if _, err := q.write(ctx, &newer, false); err != nil {
		t.Fatal(err)
	}
	if q.awaits(ctx, &claim) || claim.seen != copied.Offset {
		t.Fatalf("after a newer version: outstanding, or seen %d moved from %d", claim.seen, copied.Offset)
	}
}
