package dlq

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/dlqindex"
	"github.com/plexica/eventbus/wire"
)

// recordFailures records n failures of events of topic by group, waits
// until q applied them if it runs (their owner), and returns their
// entries' IDs.
func recordFailures(t *testing.T, q *Queue, ctx context.Context, topic, group string, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for range n {
		r := eventRecord(topic, "acme")
		id, err := q.RecordFailure(ctx, r, r.Topic, group, wire.EventIDOf(r), nil, Failure{Reason: "connection refused"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if q.currentView() == nil {
			break // the commands are stored; nobody here applies them
		}
		waitFor(t, ctx, "entry "+id+" applied", func() bool { _, err := q.Get(ctx, id); return err == nil })
	}
	return ids
}

// waitFor polls ok (bounded by ctx) until it holds.
func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("waited for %s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// deleteAllRecords moves the start offset of every partition of topic to
// its end, as retention does once every record has expired.
func deleteAllRecords(t *testing.T, host *testHost, ctx context.Context, topic string) {
	t.Helper()
	ends, err := host.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := host.adm.DeleteRecords(ctx, ends.Offsets())
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Error(); err != nil {
		t.Fatal(err)
	}
}

// TestReadinessDoesNotWaitOnAnEmptiedPartition: while the view loads,
// retention removes every record of the dlq.* partitions it must read up
// to. Those partitions cannot deliver anything more; the view must become
// ready all the same.
func TestReadinessDoesNotWaitOnAnEmptiedPartition(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{Config: deadletter.Config{DisableScheduler: true}})
	const topic = "core.user.created"
	recordFailures(t, q, ctx, topic, "mailer", 6)
	// The view's reader fetches nothing until the records are gone: the
	// broker drops its fetch connections meanwhile.
	var blocked atomic.Bool
	blocked.Store(true)
	cluster := host.broker.Cluster()
	cluster.ControlKey(kmsg.Fetch.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if blocked.Load() {
			return nil, errors.New("injected: fetch refused"), true
		}
		return nil, nil, false
	})
	if _, err := q.startOnce(); err != nil { // the end offsets to reach are known once it returns
		t.Fatal(err)
	}
	if err := q.Ready(); err == nil {
		t.Fatal("the view is ready before reading anything")
	}
	deleteAllRecords(t, host, ctx, "dlq."+topic)
	blocked.Store(false)
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := q.Start(waitCtx); err != nil {
		t.Fatalf("the view never became ready: %v (Ready: %v)", err, q.Ready())
	}
}

// TestRetentionRemovesEntriesFromTheView: retention removes the records of
// entries the view holds. A fresh instance shows none of them; the view of
// a running one must drop them too.
func TestRetentionRemovesEntriesFromTheView(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{Config: deadletter.Config{RetryBackoff: time.Hour}, RetentionCheck: 20 * time.Millisecond})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const topic = "core.user.created"
	recordFailures(t, q, ctx, topic, "mailer", 6)
	if st, err := q.Stats(ctx, dlqindex.Filter{}); err != nil || st.Total != 6 {
		t.Fatalf("Stats before retention: %+v, %v", st, err)
	}
	deleteAllRecords(t, host, ctx, "dlq."+topic)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := q.Stats(ctx, dlqindex.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if st.Total == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the view still shows %d entries whose records retention removed", st.Total)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeletedEntriesLeaveNothingInTheView: once the view's reader has read
// the tombstones of deleted entries, its index holds nothing of them;
// until then the entries are gone from what it serves.
func TestDeletedEntriesLeaveNothingInTheView(t *testing.T) {
	t.Parallel()
	q, _, ctx := newTestQueue(t, Config{Config: deadletter.Config{RetryBackoff: time.Hour}})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range recordFailures(t, q, ctx, "core.user.created", "mailer", 5) {
		e, err := q.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Delete(ctx, e); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Get(ctx, id); !errors.Is(err, deadletter.ErrNotFound) {
			t.Fatalf("Get of a deleted entry = %v", err)
		}
	}
	view := q.currentView()
	deadline := time.Now().Add(10 * time.Second)
	for view.index.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the index still holds %d of 5 deleted entries after the reader read their tombstones", view.index.Len())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
