package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/deadletter"
)

// A scheduler with Config.InstanceID is a static member of its group, and
// a process that takes its place under the same ID (a restart after a
// crash) owns the partitions at once, while what the former process left
// behind may still be open: its owner's transaction, begun and never
// ended. That transaction holds back the read-committed view, so the
// commands stored after it are seen only once it ends; the new owner must
// not wait for the brokers to abort it at its timeout (which a dynamic
// member's session timeout, 45 s by default, outlasts, but a static
// restart does not). It fences it at once: the transaction never becomes
// visible, even if the former producer still tries to commit it, and a
// delete sent after it is applied before the transaction could time out.
func TestStaticRestartFencesTheFormerOwnersOpenTransaction(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{Config: deadletter.Config{RetryBackoff: time.Hour}, InstanceID: "pod-0"})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	id := recordFailures(t, q, ctx, "core.user.created", "mailer", 1)[0]
	tp := topicOf(q, id)
	described, err := host.adm.DescribeGroups(ctx, q.cfg.SchedulerGroup)
	if err != nil {
		t.Fatal(err)
	}
	members := described[q.cfg.SchedulerGroup].Members
	if len(members) != 1 || members[0].InstanceID == nil || *members[0].InstanceID != "pod-0" {
		t.Fatalf("the scheduler group's members: %+v, want one static member pod-0", members)
	}
	stale, err := q.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	q.Stop(ctx) // a static member does not leave: its place waits for its return

	// What the crashed process's owner left: a transaction on the
	// partition, under its transactional ID, holding a version of the
	// entry, neither committed nor aborted.
	former, err := host.NewClient(
		kgo.TransactionalID(newOwner(q, tp).transactionalID()),
		kgo.TransactionTimeout(q.cfg.transactionTimeout()),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(former.Close)
	stale.Status = deadletter.StatusResolved
	v, err := json.Marshal(&stale)
	if err != nil {
		t.Fatal(err)
	}
	opened := time.Now() // the transaction starts after this: it times out after opened + its timeout
	if err := former.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: tp.topic, Partition: tp.partition, Key: []byte(id), Value: v, Headers: []kgo.RecordHeader{indexHeader(&stale)}}
	if err := former.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// The restart: the same scheduler group and instance ID.
	next := New(host, q.cfg)
	t.Cleanup(func() { next.Stop(context.Background()) })
	if err := next.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := next.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != deadletter.StatusPending {
		t.Fatalf("the restarted view reads %s, want the committed pending version", e.Status)
	}
	dctx, cancel := context.WithDeadline(ctx, opened.Add(q.cfg.transactionTimeout()))
	defer cancel()
	if err := next.Delete(dctx, e); err != nil {
		t.Fatalf("the restarted owner did not apply a delete before the former owner's open transaction could time out: %v", err)
	}
	if err := former.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the former owner committed its transaction after the restarted one took over")
	}
	cfg := q.cfg
	cfg.DisableScheduler = true
	reader := New(host, cfg)
	if got, err := reader.Get(ctx, id); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("a fresh view reads %+v (%v); want the entry deleted", got, err)
	}
}
