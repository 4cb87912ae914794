package dlq

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/wire"
)

// blockViewFetches makes the broker refuse the long-polling fetches of the
// views' readers (a reader that lags) until the returned release is
// called; it returns once a refused fetch shows that no fetch of a reader
// is in flight any more. The record reader's fetches never wait, and pass.
func blockViewFetches(t *testing.T, host *testHost, ctx context.Context) (release func()) {
	t.Helper()
	var blocked atomic.Bool
	blocked.Store(true)
	refused := make(chan struct{}, 1)
	cluster := host.broker.Cluster()
	cluster.ControlKey(kmsg.Fetch.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if f, ok := req.(*kmsg.FetchRequest); ok && f.MaxWaitMillis > 0 && blocked.Load() {
			select {
			case refused <- struct{}{}:
			default:
			}
			return nil, errors.New("injected: fetch refused"), true
		}
		return nil, nil, false
	})
	select {
	case <-refused:
	case <-ctx.Done():
		t.Fatalf("no fetch of a view's reader was refused: %v", ctx.Err())
	}
	return func() { blocked.Store(false) }
}

// applyPending runs one round of o by hand on the commands its view holds
// as pending.
func applyPending(t *testing.T, ctx context.Context, o *owner) {
	t.Helper()
	cmds := o.q.view.pendingCommands(o.tp, o.q.cfg.SchedulerGroup)
	if err := o.round(ctx, cmds, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// The owner applies a partition's commands in offset order, whichever
// process stored them. Here another process stores a failure of an event
// (it replaces the event's entry) while the owner's reader lags; then an
// operator of the owner's own process deletes the entry. The delete comes
// after the failure in the partition: once both are applied, the entry is
// gone, and the owner never applies the delete before the failure it has
// not read yet (which would bring the deleted entry back).
func TestOwnerAppliesCommandsInOffsetOrder(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{Config: deadletter.Config{RetryBackoff: time.Hour, DisableScheduler: true}})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	other := New(host, q.cfg) // a subscriber of another process: it keeps no view
	const topic = "core.user.created"
	r := eventRecord(topic, "acme")
	fail := func() string {
		id, err := other.RecordFailure(ctx, r, topic, "mailer", wire.EventIDOf(r), nil, Failure{Reason: "connection refused"})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	id := fail()
	tp := topicOf(q, id)
	o := newOwner(q, tp)
	t.Cleanup(o.close)
	waitFor(t, ctx, "the take-over", func() bool { return o.ready(ctx, time.Now()) })
	waitFor(t, ctx, "the failure read", func() bool { return len(q.view.pendingCommands(tp, q.cfg.SchedulerGroup)) == 1 })
	applyPending(t, ctx, o)
	e, err := q.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	release := blockViewFetches(t, host, ctx)
	fail() // the event failed again, in another process: not read here yet
	deleted := make(chan error, 1)
	go func() { deleted <- q.Delete(ctx, e) }()
	waitFor(t, ctx, "the delete stored", func() bool {
		ends, err := host.adm.ListEndOffsets(ctx, tp.topic)
		if err != nil {
			t.Fatal(err)
		}
		end, _ := ends.Lookup(tp.topic, tp.partition)
		return end.Offset >= q.view.progressOf(tp)+2
	})
	applyPending(t, ctx, o) // the owner's round while its reader lags
	release()
	// Let the owner work until it has read the partition to its end and
	// has nothing left to apply.
	waitFor(t, ctx, "every command applied", func() bool {
		applyPending(t, ctx, o)
		ends, err := host.adm.ListEndOffsets(ctx, tp.topic)
		if err != nil {
			t.Fatal(err)
		}
		end, _ := ends.Lookup(tp.topic, tp.partition)
		return len(deleted) > 0 && q.view.progressOf(tp) >= end.Offset && len(q.view.pendingCommands(tp, q.cfg.SchedulerGroup)) == 0
	})
	if err := <-deleted; err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got, err := q.Get(ctx, id); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("the entry deleted after its failure is back: %s (%v)", got.Status, err)
	}
	fresh := New(host, q.cfg)
	if got, err := fresh.Get(ctx, id); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("a fresh instance shows the entry deleted after its failure: %s (%v)", got.Status, err)
	}
}

// Issue 27, item 4, within one round: two operators retry the same entry
// and both commands are applied in one round, while its retry topic
// cannot be made. Neither retry is sent, so no attempt is spent: the
// second retry must not build on the version the first would have written
// had it been sent.
func TestRetriesNotSentInOneRoundSpendNoAttempt(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{Config: deadletter.Config{RetryBackoff: time.Hour, DisableScheduler: true}})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const topic = "core.user.created"
	r := eventRecord(topic, "acme")
	id, err := q.RecordFailure(ctx, r, topic, "mailer", wire.EventIDOf(r), nil, Failure{Reason: "connection refused"})
	if err != nil {
		t.Fatal(err)
	}
	tp := topicOf(q, id)
	o := newOwner(q, tp)
	t.Cleanup(o.close)
	waitFor(t, ctx, "the take-over", func() bool { return o.ready(ctx, time.Now()) })
	pending := func(n int) func() bool {
		return func() bool { return len(q.view.pendingCommands(tp, q.cfg.SchedulerGroup)) == n }
	}
	waitFor(t, ctx, "the failure read", pending(1))
	applyPending(t, ctx, o)
	e, err := q.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	retryTopic := RetryTopicFor("mailer", topic)
	host.ensureFault = func(topic string) error {
		if topic == retryTopic {
			return errors.New("injected: topic creation refused")
		}
		return nil
	}
	for range 2 {
		c := &command{Kind: CommandRetry, ID: id, Manual: true, At: time.Now().UTC()}
		if _, err := q.sendCommand(ctx, TopicFor("mailer", topic), e.SchedulerGroup, c); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "both retries read", pending(2))
	applyPending(t, ctx, o) // both in one round
	e, err = q.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if e.RetryCount != 0 || e.Status != deadletter.StatusPending {
		t.Fatalf("no retry was sent, yet the entry is %s after %d retries: %+v", e.Status, e.RetryCount, e.Attempts)
	}
}

// slowHost is a Host whose consuming clients wait markedFetchWait for
// data, a value no other client of the tests asks for: the broker tells
// their fetches apart.
type slowHost struct{ *testHost }

// markedFetchWait is the FetchMaxWait of slowHost's clients.
const markedFetchWait = 1234 * time.Millisecond

func (h slowHost) NewClient(opts ...kgo.Opt) (*kgo.Client, error) {
	return h.testHost.NewClient(append(opts, kgo.FetchMaxWait(markedFetchWait))...)
}

// A process that runs the queue reads its own answers: once RouteToDLQ
// (RouteFailure) or Delete returns, a read in the same process sees what
// the owner (another process) applied, even while this process's reader
// lags behind the owner's writes.
func TestAnsweredCommandIsReadInTheSameProcess(t *testing.T) {
	t.Parallel()
	owning, host, ctx := newTestQueue(t, Config{Config: deadletter.Config{RetryBackoff: time.Hour}})
	if err := owning.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const topic = "core.user.created"
	recordFailures(t, owning, ctx, topic, "mailer", 1) // the dlq.* topic exists
	cfg := owning.cfg
	cfg.DisableScheduler = true
	q := New(slowHost{host}, cfg) // serves the REST API; owns nothing
	t.Cleanup(func() { q.Stop(context.Background()) })
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Its reader fetches nothing from now on.
	cluster := host.broker.Cluster()
	refused := make(chan struct{}, 1)
	cluster.ControlKey(kmsg.Fetch.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if f, ok := req.(*kmsg.FetchRequest); ok && f.MaxWaitMillis == int32(markedFetchWait/time.Millisecond) {
			select {
			case refused <- struct{}{}:
			default:
			}
			return nil, errors.New("injected: fetch refused"), true
		}
		return nil, nil, false
	})
	select {
	case <-refused:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}

	r := eventRecord(topic, "acme")
	id, err := q.RouteFailure(ctx, r, topic, "mailer", wire.EventIDOf(r), Failure{Reason: "connection refused"})
	if err != nil {
		t.Fatalf("RouteFailure: %v", err)
	}
	e, err := q.Get(ctx, id)
	if err != nil {
		t.Fatalf("the entry RouteFailure waited for is not read in its process: %v", err)
	}
	if err := q.Delete(ctx, e); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got, err := q.Get(ctx, id); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("the entry Delete waited for is still read in its process: %s (%v)", got.Status, err)
	}
}

// partitionOf is the partition of topic's n that entry id's records go to.
func partitionOf(id string, n int) int32 {
	return int32(entryTopicPartitioner{kgo.StickyKeyPartitioner(nil).ForTopic("")}.Partition(&kgo.Record{Key: []byte(id)}, n))
}

// An operator adds partitions to a dlq.* topic while commands wait there.
// The owner of their partition applies each of them once: its writes (the
// entry's versions, the commands' tombstones) stay on that partition, so
// a command applied is never taken for pending again (a retry sent every
// round, for ever).
func TestCommandsAreAppliedOnceAfterPartitionsAreAdded(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{Config: deadletter.Config{RetryBackoff: time.Hour, DisableScheduler: true}})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const topic = "core.user.created"
	var r *kgo.Record
	var id string
	for { // an event whose entry moves when the topic has 6 partitions
		r = eventRecord(topic, "acme")
		id = deadletter.ID("mailer", topic, "acme", wire.EventIDOf(r))
		if partitionOf(id, 3) != partitionOf(id, 6) {
			break
		}
	}
	if _, err := q.RecordFailure(ctx, r, topic, "mailer", wire.EventIDOf(r), nil, Failure{Reason: "connection refused"}); err != nil {
		t.Fatal(err)
	}
	c := &command{Kind: CommandRetry, ID: id, Manual: true, At: time.Now().UTC()}
	if _, err := q.sendCommand(ctx, TopicFor("mailer", topic), q.cfg.SchedulerGroup, c); err != nil {
		t.Fatal(err)
	}
	tp := topicPartition{TopicFor("mailer", topic), partitionOf(id, 3)}
	pending := func() int { return len(q.view.pendingCommands(tp, q.cfg.SchedulerGroup)) }
	waitFor(t, ctx, "both commands read", func() bool { return pending() == 2 })

	resp, err := host.adm.CreatePartitions(ctx, 3, tp.topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	o := newOwner(q, tp)
	t.Cleanup(o.close)
	waitFor(t, ctx, "the take-over", func() bool { return o.ready(ctx, time.Now()) })
	applyPending(t, ctx, o)
	applyPending(t, ctx, o) // nothing is left to apply
	if n := pending(); n != 0 {
		t.Errorf("%d commands still pending after they were applied", n)
	}
	if got := readAll(t, ctx, host, RetryTopicFor("mailer", topic)); len(got) != 1 {
		t.Errorf("%d retries sent for one retry command, want 1", len(got))
	}
}

// A subscriber stores the failure of one delivery twice (its write was
// retried after an error though the broker had stored it, or the event
// came again before its offset was committed), and the owner sends the
// entry's first retry between the two. The second copy must not start
// the entry over: a retry's attempt number is never sent twice, so that
// an answer is recorded against the retry it answers.
func TestAFailureStoredTwiceSendsNoAttemptTwice(t *testing.T) {
	t.Parallel()
	q, host, ctx := newTestQueue(t, Config{Config: deadletter.Config{RetryBackoff: time.Second, DisableScheduler: true}})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const topic = "core.user.created"
	r := eventRecord(topic, "acme")
	fail := func() string {
		id, err := q.RecordFailure(ctx, r, topic, "mailer", wire.EventIDOf(r), nil, Failure{Reason: "connection refused"})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	id := fail()
	tp := topicOf(q, id)
	o := newOwner(q, tp)
	t.Cleanup(o.close)
	waitFor(t, ctx, "the take-over", func() bool { return o.ready(ctx, time.Now()) })
	pending := func(n int) func() bool {
		return func() bool { return len(q.view.pendingCommands(tp, q.cfg.SchedulerGroup)) == n }
	}
	waitFor(t, ctx, "the failure read", pending(1))
	applyPending(t, ctx, o)
	later := time.Now().Add(time.Hour) // past the backoff and the retry timeout
	if err := o.round(ctx, nil, []string{id}, later); err != nil {
		t.Fatal(err)
	}
	fail() // the same failure, stored again
	waitFor(t, ctx, "the copy read", pending(1))
	applyPending(t, ctx, o)
	if err := o.round(ctx, nil, []string{id}, later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, rec := range readAll(t, ctx, host, RetryTopicFor("mailer", topic)) {
		a, _ := wire.HeaderValue(rec.Headers, wire.HeaderRetryAttempt)
		if seen[string(a)] {
			t.Errorf("retry attempt %s of entry %s sent twice", a, id)
		}
		seen[string(a)] = true
	}
	if len(seen) != 2 {
		t.Errorf("%d retries sent, want 2 (attempts 1 and 2)", len(seen))
	}
}

// A subscriber stores the failure of a large event with a long error: the
// command fits in a record, but the entry version, which repeats the
// error in its history, does not. The owner must not fail on it round
// after round, holding back every other command of the partition.
func TestAnOversizeEntryDoesNotStallItsPartition(t *testing.T) {
	t.Parallel()
	q, _, ctx := newTestQueue(t, Config{Config: deadletter.Config{RetryBackoff: time.Hour, DisableScheduler: true}})
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const topic = "core.user.created"
	env := wire.Envelope{ID: uuid.NewString(), Type: topic, TenantID: "acme", Timestamp: time.Now().UTC(),
		Data: []byte(`"` + strings.Repeat("x", 500<<10) + `"`)}
	r := eventRecord(topic, "acme")
	r.Value, r.Headers = wire.Append(nil, &env), wire.AppendHeaders(nil, &env)
	big, err := q.RecordFailure(ctx, r, topic, "mailer", env.ID, nil, Failure{Reason: strings.Repeat("y", 300<<10)})
	if err != nil {
		t.Fatal(err)
	}
	tp := topicOf(q, big)
	var small string
	for small == "" { // an ordinary failure on the same partition
		r := eventRecord(topic, "acme")
		if id := deadletter.ID("mailer", topic, "acme", wire.EventIDOf(r)); partitionOf(id, 3) == tp.partition {
			if small, err = q.RecordFailure(ctx, r, topic, "mailer", wire.EventIDOf(r), nil, Failure{Reason: "connection refused"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	o := newOwner(q, tp)
	t.Cleanup(o.close)
	waitFor(t, ctx, "the take-over", func() bool { return o.ready(ctx, time.Now()) })
	waitFor(t, ctx, "both failures read", func() bool { return len(q.view.pendingCommands(tp, q.cfg.SchedulerGroup)) == 2 })
	applyPending(t, ctx, o)
	if _, err := q.Get(ctx, small); err != nil {
		t.Fatalf("the ordinary failure behind the large one: %v", err)
	}
	if e, err := q.Get(ctx, big); err != nil || len(e.FailureReason) >= 300<<10 {
		t.Fatalf("the large failure: %v, its reason %d bytes (want it recorded, its reason cut)", err, len(e.FailureReason))
	}
}
