package dlq

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/logread"
	"github.com/plexica/eventbus/wire"
)

// retrying is an entry waiting for the answer to retry n.
func retrying(n int) *Entry {
	at := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	next := at.Add(5 * time.Minute)
	return &Entry{ID: "e1", Status: deadletter.StatusRetrying, RetryCount: n, MaxRetries: 3, NextRetryAt: &next,
		Attempts: []Attempt{{At: at, Kind: "failed"}, {At: at, Kind: "retry", Number: n}}}
}

// otherGroups makes e an entry of another scheduler group than the test
// queue's.
func otherGroups(e *Entry) *Entry {
	e.SchedulerGroup = "billing-dlq-scheduler"
	return e
}

// resolvedBy is an entry that retry n resolved after retries were sent.
func resolvedBy(n, retries int) *Entry {
	e := retrying(retries)
	at := e.Attempts[0].At
	e.Status, e.NextRetryAt, e.ResolvedAt = deadletter.StatusResolved, nil, &at
	e.Attempts = append(e.Attempts, Attempt{At: at, Kind: "resolved", Number: n})
	return e
}

// The owner's answers, order by order (issue 27's items 1, 2 and 5): an
// answer or a retry for an entry that is gone changes nothing (a delete is
// never undone), the answer to the outstanding retry moves the entry on,
// a late answer is recorded against the retry it answers.
func TestDecide(t *testing.T) {
	q := New(nil, Config{Config: deadletter.Config{MaxRetries: 3, RetryBackoff: time.Second, MaxRetryBackoff: time.Hour, RetryTimeout: 5 * time.Minute}})
	now := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	fail := &Failure{Reason: "smtp down"}
	for _, c := range []struct {
		name    string
		cur     *Entry
		cmd     command
		result  string // prefix
		status  Status // of the next version ("" when none is written)
		retries int
		last    string // the last attempt's kind
		remove  bool
		retry   bool
	}{
		{name: "a success answering a deleted entry's retry", cur: nil, cmd: command{Kind: CommandResolved, ID: "e1", Attempt: 1}, result: resultNotFound},
		{name: "a failure answering a deleted entry's retry", cur: nil, cmd: command{Kind: CommandFailed, ID: "e1", Attempt: 1, Failure: fail}, result: resultNotFound},
		{name: "a retry of a deleted entry", cur: nil, cmd: command{Kind: CommandRetry, ID: "e1", Manual: true}, result: resultNotFound},
		{name: "a delete of a deleted entry", cur: nil, cmd: command{Kind: CommandDelete, ID: "e1"}, result: resultNotFound},
		{name: "the outstanding retry succeeds", cur: retrying(1), cmd: command{Kind: CommandResolved, ID: "e1", Attempt: 1}, result: resultOK, status: deadletter.StatusResolved, retries: 1, last: "resolved"},
		{name: "the outstanding retry fails", cur: retrying(1), cmd: command{Kind: CommandFailed, ID: "e1", Attempt: 1, Failure: fail}, result: resultOK, status: deadletter.StatusPending, retries: 1, last: "failed"},
		{name: "the last retry fails", cur: retrying(3), cmd: command{Kind: CommandFailed, ID: "e1", Attempt: 3, Failure: fail}, result: resultOK, status: deadletter.StatusMaxRetriesExceeded, retries: 3, last: "failed"},
		{name: "a late failure of an older retry", cur: retrying(2), cmd: command{Kind: CommandFailed, ID: "e1", Attempt: 1, Failure: fail}, result: resultOK, status: deadletter.StatusRetrying, retries: 2, last: AttemptLateFailed},
		{name: "a late success of an older retry", cur: retrying(2), cmd: command{Kind: CommandResolved, ID: "e1", Attempt: 1}, result: resultOK, status: deadletter.StatusResolved, retries: 2, last: "resolved"},
		{name: "a permanent failure of a manual retry", cur: retrying(1), cmd: command{Kind: CommandFailed, ID: "e1", Attempt: 1, Failure: &Failure{Reason: "bad", Permanent: true}}, result: resultOK, status: deadletter.StatusMaxRetriesExceeded, retries: 1, last: "failed"},
		{name: "an automatic retry out of retries", cur: retrying(3), cmd: command{Kind: CommandRetry, ID: "e1"}, result: resultNotAllowed},
		{name: "a manual retry out of retries", cur: retrying(3), cmd: command{Kind: CommandRetry, ID: "e1", Manual: true}, result: resultOK, status: deadletter.StatusRetrying, retries: 4, last: "manual-retry", retry: true},
		{name: "a delete", cur: retrying(1), cmd: command{Kind: CommandDelete, ID: "e1"}, result: resultOK, remove: true},
		{name: "a success of a newer retry once resolved", cur: resolvedBy(1, 2), cmd: command{Kind: CommandResolved, ID: "e1", Attempt: 2}, result: resultOK, status: deadletter.StatusResolved, retries: 2, last: "resolved"},
		{name: "an answer for another scheduler group's entry", cur: otherGroups(retrying(1)), cmd: command{Kind: CommandResolved, ID: "e1", Attempt: 1}, result: resultNotAllowed},
		{name: "a delete of another scheduler group's entry", cur: otherGroups(retrying(1)), cmd: command{Kind: CommandDelete, ID: "e1"}, result: resultNotAllowed},
		{name: "a redelivered answer", cur: resolvedBy(1, 1), cmd: command{Kind: CommandResolved, ID: "e1", Attempt: 1}, result: resultOK},
		{name: "a redelivered failure", cur: retrying(1), cmd: command{Kind: CommandFailed, ID: "e1", Attempt: 0 + 1, Failure: fail}, result: resultOK, status: deadletter.StatusPending, retries: 1, last: "failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := 0
			if c.cur != nil {
				before = len(c.cur.Attempts)
			}
			ch := q.decide(c.cur, &c.cmd, now)
			if !strings.HasPrefix(ch.result, c.result) || ch.remove != c.remove || ch.retry != c.retry {
				t.Fatalf("result %q, remove %t, retry %t; want %q, %t, %t", ch.result, ch.remove, ch.retry, c.result, c.remove, c.retry)
			}
			if c.status == "" {
				if ch.next != nil {
					t.Fatalf("wrote %+v; want nothing", ch.next)
				}
				return
			}
			e := ch.next
			if e == nil || e.Status != c.status || e.RetryCount != c.retries || e.Attempts[len(e.Attempts)-1].Kind != c.last {
				t.Fatalf("next version %+v; want %s after %d retries, last step %s", e, c.status, c.retries, c.last)
			}
			if n := e.Attempts[len(e.Attempts)-1].Number; c.cmd.Attempt > 0 && n != c.cmd.Attempt {
				t.Errorf("the answer is recorded against retry %d, want %d", n, c.cmd.Attempt)
			}
			if c.cur != nil && len(c.cur.Attempts) != before {
				t.Errorf("decide changed the entry it was given: %+v", c.cur.Attempts)
			}
		})
	}
	// A retrying entry whose retry timed out becomes retryable: its next
	// retry, or out of retries.
	if ch := q.decideDue(*retrying(1), now); !ch.retry || ch.next.RetryCount != 2 {
		t.Errorf("a timed-out retry: %+v, want retry 2 sent", ch.next)
	}
	if ch := q.decideDue(*retrying(3), now); ch.retry || ch.next.Status != deadletter.StatusMaxRetriesExceeded {
		t.Errorf("a timed-out last retry: %+v, want out of retries", ch.next)
	}
}

// started returns a queue that runs (the entries' owner) and the ID of an
// entry it applied, pending; its automatic retries are an hour away.
func started(t *testing.T) (*Queue, *testHost, context.Context, string) {
	t.Helper()
	q, host, ctx := newTestQueue(t, Config{Config: deadletter.Config{RetryBackoff: time.Hour}})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return q, host, ctx, recordFailures(t, q, ctx, "core.user.created", "mailer", 1)[0]
}

// Issue 27, item 1: whatever the order of a delete and the answer to a
// retry that was sent before it, the entry stays deleted, and no retry is
// sent after the delete.
func TestDeleteIsNeverUndone(t *testing.T) {
	t.Parallel()
	for _, order := range []string{"delete then answer", "answer then delete"} {
		t.Run(order, func(t *testing.T) {
			t.Parallel()
			q, _, ctx, id := started(t)
			e, err := q.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Retry(ctx, e, true); err != nil {
				t.Fatal(err)
			}
			e, _ = q.Get(ctx, id)
			if e.Status != deadletter.StatusRetrying || e.RetryCount != 1 {
				t.Fatalf("after the retry: %s, %d retries", e.Status, e.RetryCount)
			}
			// Hold the owner, so that both commands wait in the partition in
			// the order chosen, then let it apply them.
			hold := make(chan struct{})
			q.setHookBeforeCommit(func(string, int32) { <-hold })
			claim := Claim{ID: id, Attempt: 1, Topic: "core.user.created"}
			deleted := make(chan error, 1)
			del := func() { go func() { deleted <- q.Delete(ctx, e) }() }
			answer := func() {
				r := eventRecord("core.user.created", "acme")
				if _, err := q.RecordFailure(ctx, r, r.Topic, "mailer", wire.EventIDOf(r), &claim, Failure{Reason: "still down"}); err != nil {
					t.Fatal(err)
				}
			}
			if order == "delete then answer" {
				del()
				waitFor(t, ctx, "the delete stored", func() bool { return len(q.view.pendingCommands(topicOf(q, id), q.cfg.SchedulerGroup)) >= 1 })
				answer()
			} else {
				answer()
				waitFor(t, ctx, "the answer stored", func() bool { return len(q.view.pendingCommands(topicOf(q, id), q.cfg.SchedulerGroup)) >= 1 })
				del()
			}
			close(hold)
			if err := <-deleted; err != nil {
				t.Fatalf("Delete: %v", err)
			}
			waitFor(t, ctx, "both commands applied", func() bool { return len(q.view.pendingCommands(topicOf(q, id), q.cfg.SchedulerGroup)) == 0 })
			if got, err := q.Get(ctx, id); !errors.Is(err, deadletter.ErrNotFound) {
				t.Fatalf("the deleted entry came back: %+v (%v)", got, err)
			}
			// A fresh instance sees it deleted too.
			fresh := New(q.host, q.cfg)
			if got, err := fresh.Get(ctx, id); !errors.Is(err, deadletter.ErrNotFound) {
				t.Fatalf("a fresh instance shows the deleted entry: %+v (%v)", got, err)
			}
		})
	}
}

// topicOf is where entry id's commands wait: its dlq.* partition.
func topicOf(q *Queue, id string) topicPartition {
	ref, _ := q.view.ref(id)
	if ref.Pos.Topic != "" {
		return topicPartition{ref.Pos.Topic, ref.Pos.Partition}
	}
	n := entryTopicPartitioner{kgo.StickyKeyPartitioner(nil).ForTopic("")}.Partition(&kgo.Record{Key: []byte(id)}, 3)
	return topicPartition{"dlq.core.user.created", int32(n)}
}

// Issue 27, item 4: an attempt is spent only when its retry is sent. When
// the retry topic cannot be made, the entry records the retry that was not
// sent and keeps its count; once the topic can be made, the retry goes out
// as attempt 1.
func TestAttemptIsSpentOnlyWhenTheRetryIsSent(t *testing.T) {
	t.Parallel()
	q, host, ctx, id := started(t)
	retryTopic := RetryTopicFor("mailer", "core.user.created")
	host.ensureFault = func(topic string) error {
		if topic == retryTopic {
			return errors.New("injected: topic creation refused")
		}
		return nil
	}
	e, _ := q.Get(ctx, id)
	if err := q.Retry(ctx, e, true); err == nil || !strings.Contains(err.Error(), "not-sent") {
		t.Fatalf("Retry with its topic refused: %v, want not-sent", err)
	}
	e, _ = q.Get(ctx, id)
	if e.RetryCount != 0 || e.Status != deadletter.StatusPending || e.Attempts[len(e.Attempts)-1].Kind != AttemptRetryNotSent {
		t.Fatalf("after a retry that was not sent: %s, %d retries, history %+v", e.Status, e.RetryCount, e.Attempts)
	}
	host.ensureFault = nil
	if err := q.Retry(ctx, e, true); err != nil {
		t.Fatal(err)
	}
	e, _ = q.Get(ctx, id)
	if e.RetryCount != 1 || e.Status != deadletter.StatusRetrying {
		t.Fatalf("after the retry: %s, %d retries", e.Status, e.RetryCount)
	}
	// The retry lies on the group's retry topic, once, as attempt 1.
	got := readAll(t, ctx, host, retryTopic)
	if len(got) != 1 {
		t.Fatalf("%d records on the retry topic, want 1", len(got))
	}
	if a, _ := wire.HeaderValue(got[0].Headers, wire.HeaderRetryAttempt); string(a) != "1" {
		t.Fatalf("the retry says attempt %q, want 1", a)
	}
}

// readAll reads topic's committed records up to its end.
func readAll(t *testing.T, ctx context.Context, host *testHost, topic string) []*kgo.Record {
	t.Helper()
	ends, err := host.adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []*kgo.Record
	for _, o := range ends.Offsets()[topic] {
		if o.At == 0 {
			continue
		}
		_, err := logread.New(host.cl).Scan(ctx, topic, o.Partition, 0, 0, func(r *kgo.Record) bool {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Issue 27, "fenced so that a former owner cannot write after a
// rebalance": once another process took a partition over, whatever the
// former owner still tries to write there fails, and nothing of it is
// seen.
func TestFormerOwnerIsFenced(t *testing.T) {
	t.Parallel()
	q, host, ctx, id := started(t)
	tp := topicOf(q, id)
	// Two more processes of the deployment, with views and no group: the
	// test hands the partition from one to the other.
	cfg := q.cfg
	cfg.DisableScheduler = true
	former, next := New(host, cfg), New(host, cfg)
	for _, p := range []*Queue{former, next} {
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop(context.Background()) })
	}
	q.Stop(ctx) // the group's owner goes away; these two take over by hand
	o1 := newOwner(former, tp)
	waitFor(t, ctx, "the former owner's take-over", func() bool { return o1.ready(ctx, time.Now()) })
	o2 := newOwner(next, tp)
	waitFor(t, ctx, "the next owner's take-over", func() bool { return o2.ready(ctx, time.Now()) })

	e, err := next.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	stale := e
	stale.Status = deadletter.StatusResolved
	if err := o1.commit(ctx, []change{{id: id, next: &stale, result: resultOK}}, time.Now()); err == nil {
		t.Fatal("the former owner wrote after the take-over")
	}
	// The next owner's write lands; a fresh view sees it, not the stale one.
	fresh := e
	fresh.Status = deadletter.StatusMaxRetriesExceeded
	if err := o2.commit(ctx, []change{{id: id, next: &fresh, result: resultOK}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	reader := New(host, cfg)
	if got, err := reader.Get(ctx, id); err != nil || got.Status != deadletter.StatusMaxRetriesExceeded {
		t.Fatalf("a fresh view reads %+v (%v); want the next owner's version", got, err)
	}
}
