package dlq

import (
	"errors"
	"testing"
	"time"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/dlqindex"
)

// TestReadsBeforeStartStartNothing: Stats, Query and Get on a queue that
// was not started answer from the dlq.* topics, and leave no view and no
// scheduler behind (an entry due for an automatic retry stays unsent).
func TestReadsBeforeStartStartNothing(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{Config: deadletter.Config{RetryBackoff: time.Hour}})
	if err := q.Start(ctx); err != nil { // the entries' owner
		t.Fatal(err)
	}
	id := recordFailures(t, q, ctx, "core.user.created", "mailer", 1)[0]
	// A second process of the deployment, which never calls Start.
	reader := New(host, q.cfg)
	counts, err := reader.Stats(ctx, dlqindex.Filter{})
	if err != nil || counts.Total != 1 || counts.ByStatus[string(deadletter.StatusPending)] != 1 {
		t.Fatalf("Stats before Start: %+v (%v); want the pending entry", counts, err)
	}
	list, total, err := reader.Query(ctx, dlqindex.Filter{Topic: "core.user.created"}, false, 0, 0)
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != id {
		t.Fatalf("Query before Start: %d of %d (%v)", len(list), total, err)
	}
	e, err := reader.Get(ctx, id)
	if err != nil || e.Status != deadletter.StatusPending || e.RetryCount != 0 {
		t.Fatalf("Get before Start: %+v (%v)", e, err)
	}
	reader.mu.Lock()
	view, sched := reader.view, reader.sched
	reader.mu.Unlock()
	if view != nil || sched != nil {
		t.Fatalf("reads left a view (%v) or a scheduler (%v) running", view != nil, sched != nil)
	}
	if err := reader.Ready(); err == nil {
		t.Fatal("Ready after reads alone: want not started")
	}
	// Stopped, a queue refuses reads.
	reader.Stop(ctx)
	if _, err := reader.Stats(ctx, dlqindex.Filter{}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Stats after Stop: %v, want ErrStopped", err)
	}
}
