// Package dlq is the dead letter queue's machinery: the entries on the
// dlq.* topics (their record format, the TypeScript package's, and the
// overlays of ours on the latter), the view a process that runs the queue
// keeps of them, the scheduler of automatic retries, and the checks a
// subscriber makes on the retries it receives. The root package's
// DeadLetterQueue is its public face; Host is what the queue needs of the
// bus.
package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"

	"github.com/plexica/eventbus/internal/backoff"
	"github.com/plexica/eventbus/internal/dlqindex"
	"github.com/plexica/eventbus/internal/logread"
	"github.com/plexica/eventbus/internal/tracing"
	"github.com/plexica/eventbus/internal/wire"
)

// Errors the queue returns; the root package exports the first two as its
// own sentinels.
var (
	ErrNotFound        = errors.New("failed event not found")
	ErrRetryNotAllowed = errors.New("retry not allowed in this state")
	// ErrStopped: the queue was stopped (the bus shut down).
	ErrStopped = errors.New("dead letter queue stopped")
)

// DefaultSchedulerGroup is the scheduler group of an entry whose
// SchedulerGroup is empty, and of a Config that names none.
const DefaultSchedulerGroup = "plexica-eventbus-dlq-scheduler"

// Host is what the queue needs of the bus it belongs to.
type Host interface {
	// Produce writes rec and returns once the brokers acknowledged it.
	Produce(ctx context.Context, rec *kgo.Record) error
	// EnsureTopic creates topic, with configs, unless it exists.
	EnsureTopic(ctx context.Context, topic string, configs map[string]string) error
	// NewClient builds a franz-go client on the bus's connection settings
	// plus opts.
	NewClient(opts ...kgo.Opt) (*kgo.Client, error)
	// Conn is the bus's connected client; single records are read on it.
	Conn() (*kgo.Client, error)
	// Admin is the bus's admin client.
	Admin() (*kadm.Client, error)
	// RetrySent counts a retry sent for an event of topic.
	RetrySent(topic string, manual bool)
}

// Config is the queue's configuration, defaults applied (the root
// package's DLQConfig documents each setting).
type Config struct {
	MaxRetries                    int
	RetryBackoff, MaxRetryBackoff time.Duration
	SchedulerGroup                string
	DisableScheduler              bool
	RetryTimeout                  time.Duration
	SigningKey                    []byte
	TopicCleanupPolicy            string
	// RetentionCheck is how often the view lists the dlq.* partitions'
	// start offsets, to drop the entries retention removed
	// (DefaultRetentionCheck when 0).
	RetentionCheck time.Duration
	// SessionTimeout and HeartbeatInterval are the scheduler group's.
	SessionTimeout, HeartbeatInterval time.Duration
	Logger                            *slog.Logger
	// Tracer traces writes and retries (nil: off).
	Tracer *tracing.Tracer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// backoff is the delay before automatic retry n+1 after n were sent.
func (c *Config) backoff(n int) time.Duration {
	return backoff.Exponential(c.RetryBackoff, c.MaxRetryBackoff, n)
}

// Queue is one bus's dead letter queue. Only a process that calls Start
// keeps reading the dlq.* topics: it keeps an index of every entry
// (view.go), reads entries back from their records on demand, and, as a
// member of Config.SchedulerGroup, schedules the automatic retries of the
// DLQ partitions it owns (scheduler.go). A read (Query, Get, Stats) in a
// process that did not call Start reads the topics for that read alone
// (readView) and starts nothing. A process that only publishes and
// subscribes keeps no view: it writes its failures, and checks the
// retries it receives by reading the one record each names (verify.go).
type Queue struct {
	host Host
	cfg  Config

	mu      sync.Mutex // guards view, sched and stopped
	view    *view
	sched   *scheduler
	stopped bool

	knownTopics     sync.Map // dlq topics this process wrote to
	warnedCompacted sync.Map // dlq topics already warned about (legacy.go)

	// hookBeforeOutcome, when set by a test, runs just before a retry's
	// outcome is written.
	hookBeforeOutcome func()
	// readFault, when set by a test (SetReadFault), runs before each read
	// of the records retries name; an error it returns is the read's.
	readFault atomic.Pointer[func() error]

	readerOnce sync.Once
	reader     *logread.Reader // reads the records retries name
	readerErr  error
}

// New returns the queue of the bus host; it reads nothing until Start.
func New(host Host, cfg Config) *Queue {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SchedulerGroup == "" {
		cfg.SchedulerGroup = DefaultSchedulerGroup
	}
	return &Queue{host: host, cfg: cfg}
}

// Start begins reading the dlq.* topics and, unless disabled, scheduling
// retries; it returns once the view has caught up with what the topics
// held when it started. Calling it again only waits for that.
func (q *Queue) Start(ctx context.Context) error {
	view, err := q.startOnce()
	if err != nil {
		return err
	}
	return view.waitReady(ctx)
}

func (q *Queue) startOnce() (*view, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return nil, ErrStopped
	}
	if q.view != nil {
		return q.view, nil
	}
	view := newView(q)
	if err := view.start(); err != nil {
		return nil, err
	}
	q.view = view // before the scheduler starts: it reads the view
	if !q.cfg.DisableScheduler {
		sched := newScheduler(q)
		if err := sched.start(); err != nil {
			view.stop()
			q.view = nil
			return nil, err
		}
		q.sched = sched
	}
	return view, nil
}

// Stop stops the scheduler and the view. It holds q.mu only to mark the
// queue stopped: the scheduler it waits for may need q.mu (noticeTopic).
func (q *Queue) Stop(ctx context.Context) {
	q.mu.Lock()
	q.stopped = true
	sched, view := q.sched, q.view
	q.mu.Unlock()
	if sched != nil {
		sched.stop(ctx)
	}
	if view != nil {
		view.stop()
	}
}

// Ready reports whether the queue serves the full view: nil once Start
// has read the dlq.* topics up to where they stood when it began, else an
// error that says why not (ErrStopped, not started, still reading).
func (q *Queue) Ready() error {
	q.mu.Lock()
	view, stopped := q.view, q.stopped
	q.mu.Unlock()
	switch {
	case stopped:
		return ErrStopped
	case view == nil:
		return errors.New("the dead letter queue is not started in this process (DeadLetterQueue.Start)")
	}
	if caughtUp, total, ready := view.loading(); !ready {
		return fmt.Errorf("the dead letter queue is still reading the dlq.* topics (%d of %d partitions caught up)", caughtUp, total)
	}
	return nil
}

// currentView is the view, if this process started one.
func (q *Queue) currentView() *view {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.view
}

// readView returns the view a read answers from. In a process that called
// Start it is the running view, once it has caught up. In one that did
// not, it is a snapshot made for this read alone: the dlq.* topics read outside any group up to their
// current ends, then the reader closed. A read never starts the queue: it
// joins no group, sends no retry and leaves nothing running.
func (q *Queue) readView(ctx context.Context) (*view, error) {
	q.mu.Lock()
	v, stopped := q.view, q.stopped
	q.mu.Unlock()
	switch {
	case stopped:
		return nil, ErrStopped
	case v != nil:
		if err := v.waitReady(ctx); err != nil {
			return nil, err
		}
		return v, nil
	}
	return q.snapshot(ctx)
}

// snapshot reads the dlq.* topics up to their current end offsets into a
// view of its own, and stops its reader: the index stays, the entries are
// read back from their records as a started view's are.
func (q *Queue) snapshot(ctx context.Context) (*view, error) {
	v := newView(q)
	if err := v.start(); err != nil {
		return nil, err
	}
	err := v.waitReady(ctx)
	v.stop()
	if err != nil {
		return nil, err
	}
	return v, nil
}

// recordReader returns the reader of single DLQ records. It reads through
// the bus's connected client, which never long-polls: on a consuming
// client a read would queue behind that client's fetch.
func (q *Queue) recordReader() (*logread.Reader, error) {
	q.readerOnce.Do(func() {
		cl, err := q.host.Conn()
		if err != nil {
			q.readerErr = err
			return
		}
		q.reader = logread.New(cl)
	})
	return q.reader, q.readerErr
}

// SetReadFault makes fault run before each read of the dead-letter
// records that retries name (VerifyRetry and the checks of a retry's
// outcome); a non-nil error it returns fails that read. For tests that
// inject broker errors; nil removes it.
func (q *Queue) SetReadFault(fault func() error) {
	if fault == nil {
		q.readFault.Store(nil)
		return
	}
	q.readFault.Store(&fault)
}

// injectedFault returns the error of the test's read fault, if any.
func (q *Queue) injectedFault() error {
	if f := q.readFault.Load(); f != nil {
		return (*f)()
	}
	return nil
}

// Counts counts the entries by status, from the view's index (an empty
// map before Start: every status counts zero).
func (q *Queue) Counts() map[string]int {
	view := q.currentView()
	if view == nil {
		return map[string]int{}
	}
	return view.stats(dlqindex.Filter{}).ByStatus
}

// Query returns the entries that match f, sorted by failure time (newest
// first unless oldest), skipping offset and at most limit of them (0: all
// the rest), and how many match in all. Matching, counting and sorting use
// the index; only the page's entries are read from the brokers.
func (q *Queue) Query(ctx context.Context, f dlqindex.Filter, oldest bool, offset, limit int) ([]Entry, int, error) {
	view, err := q.readView(ctx)
	if err != nil {
		return nil, 0, err
	}
	refs := view.index.Query(f, oldest)
	total := len(refs)
	refs = refs[min(offset, total):]
	if limit > 0 {
		refs = refs[:min(limit, len(refs))]
	}
	out, err := view.read(ctx, refs)
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// Get returns one entry, or an error wrapping ErrNotFound.
func (q *Queue) Get(ctx context.Context, id string) (Entry, error) {
	view, err := q.readView(ctx)
	if err != nil {
		return Entry{}, err
	}
	e, ok, err := view.get(ctx, id)
	switch {
	case err != nil:
		return Entry{}, err
	case !ok:
		return Entry{}, notFound(id)
	}
	return e, nil
}

func notFound(id string) error {
	return fmt.Errorf("%w: no dead-letter entry %q (list them with List)", ErrNotFound, id)
}

// Stats counts the entries that match f, from the index.
func (q *Queue) Stats(ctx context.Context, f dlqindex.Filter) (dlqindex.Counts, error) {
	view, err := q.readView(ctx)
	if err != nil {
		return dlqindex.Counts{}, err
	}
	return view.stats(f), nil
}

// Retry sends entry e, just read, again to the group that failed it. A
// manual retry works in any status; otherwise the retry counts toward
// MaxRetries and fails with ErrRetryNotAllowed when the entry is resolved,
// out of retries, or was written by the TypeScript package. A TypeScript
// entry is retried the way that package retries (legacy.go).
func (q *Queue) Retry(ctx context.Context, e Entry, manual bool) error {
	if e.Origin == OriginTypeScript {
		if !manual {
			return fmt.Errorf("%w: entry %s was written by the TypeScript package; retry it manually", ErrRetryNotAllowed, e.ID)
		}
		topic, err := q.topicOf(ctx, e.ID)
		if err != nil {
			return err
		}
		return q.retryTypeScript(ctx, topic, e)
	}
	if !manual && (e.Status == StatusResolved || e.Status == StatusMaxRetriesExceeded || e.RetryCount >= e.MaxRetries) {
		return fmt.Errorf("%w: entry %s is %s after %d of %d retries; retry it manually", ErrRetryNotAllowed, e.ID, e.Status, e.RetryCount, e.MaxRetries)
	}
	return q.sendRetry(ctx, e, manual)
}

// Delete removes entry e, just read: a tombstone on its DLQ topic; for an
// entry the TypeScript package wrote, an overlay that hides it.
func (q *Queue) Delete(ctx context.Context, e Entry) error {
	if e.Origin == OriginTypeScript {
		topic, err := q.topicOf(ctx, e.ID)
		if err != nil {
			return err
		}
		return q.writeOverlay(ctx, topic, e, true)
	}
	_, err := q.write(ctx, &e, true)
	return err
}

// topicOf returns the dlq.* topic where the view (or, before Start, a
// snapshot of the topics) found entry id.
func (q *Queue) topicOf(ctx context.Context, id string) (string, error) {
	view, err := q.readView(ctx)
	if err != nil {
		return "", err
	}
	e, ok := view.index.Get(id)
	if !ok {
		return "", notFound(id)
	}
	return e.Pos.Topic, nil
}

// sendRetry marks the entry as retrying and re-publishes its event to its
// topic with the retry headers, so that only its group handles it.
//
// The attempt is spent only when the retry is sent: what can fail before
// the send (the retry topic's creation, the signature) is done before the
// entry is marked, and when the send itself fails the entry is written
// back as it was (retryNotSent): its retry count unchanged, retryable again
// after a backoff rather than after the retry timeout.
func (q *Queue) sendRetry(ctx context.Context, e Entry, manual bool) (err error) {
	// The retry belongs to the original event's trace.
	rec := &kgo.Record{Key: e.OriginalKey, Headers: make([]kgo.RecordHeader, 0, len(e.OriginalHeaders)+5)}
	for _, h := range e.OriginalHeaders {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
	}
	ctx, span := q.cfg.Tracer.StartInternal(q.cfg.Tracer.Extract(ctx, rec), "dlq retry "+e.OriginalTopic,
		attribute.String("plexica.dlq_id", e.ID), attribute.String("messaging.consumer.group.name", e.ConsumerGroup),
		attribute.Bool("plexica.manual", manual), attribute.Int("plexica.retry_attempt", e.RetryCount+1))
	defer func() { tracing.End(span, err) }()
	prior := e
	prior.Attempts = slices.Clip(prior.Attempts) // the appends below must not share its array
	now := q.cfg.Now().UTC()
	if !manual {
		// Sent automatically: its latest failure was not permanent (an entry
		// written before Permanent followed the latest failure may say so).
		e.Permanent = false
	}
	e.RetryCount++
	e.Status = StatusRetrying
	next := now.Add(q.cfg.RetryTimeout)
	e.NextRetryAt = &next
	e.ResolvedAt = nil
	kind := "retry"
	if manual {
		kind = "manual-retry"
	}
	e.Attempts = append(e.Attempts, Attempt{At: now, Kind: kind})
	e.UpdatedAt = now
	value := retryValue(&e)
	// The target topic is ensured as Publish ensures its topics: a retry to
	// a topic that is gone would otherwise wait out the delivery timeout.
	target := RetryTopicFor(e.ConsumerGroup, e.OriginalTopic)
	if err := q.host.EnsureTopic(ctx, target, nil); err != nil {
		return q.retryNotSent(ctx, prior, fmt.Errorf("send retry of %s: %w", e.ID, err))
	}
	var signature []kgo.RecordHeader
	if len(q.cfg.SigningKey) > 0 {
		if signature, err = q.signRetry(target, e, value); err != nil {
			return q.retryNotSent(ctx, prior, fmt.Errorf("sign retry of %s: %w", e.ID, err))
		}
	}
	written, err := q.write(ctx, &e, false)
	if err != nil {
		return err
	}
	q.cfg.Tracer.Inject(ctx, rec)
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: wire.HeaderDLQID, Value: []byte(e.ID)},
		kgo.RecordHeader{Key: wire.HeaderRetryGroup, Value: []byte(e.ConsumerGroup)},
		kgo.RecordHeader{Key: wire.HeaderRetryAttempt, Value: []byte(fmt.Sprint(e.RetryCount))},
	)
	if signature != nil {
		rec.Headers = append(rec.Headers, signature...)
	} else {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: wire.HeaderDLQPosition, Value: []byte(fmt.Sprintf("%d:%d", written.Partition, written.Offset))})
	}
	rec.Topic, rec.Value = target, value
	if err := q.host.Produce(ctx, rec); err != nil {
		// The version just written names an attempt that was not sent (or
		// whose fate is unknown): the entry as it was replaces it, so no
		// answer to that attempt can change the entry.
		return q.retryNotSent(ctx, prior, fmt.Errorf("send retry of %s to %s: %w", e.ID, target, err))
	}
	q.host.RetrySent(e.OriginalTopic, manual)
	return nil
}

// AttemptRetryNotSent is the Kind of an Attempt that records a retry whose
// send failed: it spent no attempt.
const AttemptRetryNotSent = "retry-not-sent"

// retryNotSent writes entry e back as it was before a retry of it that
// could not be sent, with that failure in its history, and returns cause.
// Its retry count is unchanged. An entry that waits for automatic retries
// (pending, or retrying after a timeout) is due again after a backoff that
// grows with the sends that failed in a row (1 s · 2^n, capped like the
// retries'), or at the time it was due anyway if that is later (a manual
// retry that failed moves no retry, nor an outstanding retry's timeout,
// earlier); one out of retries or resolved stays so.
func (q *Queue) retryNotSent(ctx context.Context, e Entry, cause error) error {
	now := q.cfg.Now().UTC()
	e.Attempts = append(e.Attempts, Attempt{At: now, Kind: AttemptRetryNotSent, Error: cause.Error()})
	e.UpdatedAt = now
	if e.Status == StatusPending || e.Status == StatusRetrying {
		failed := 0
		for i := len(e.Attempts) - 1; i >= 0 && e.Attempts[i].Kind == AttemptRetryNotSent; i-- {
			failed++
		}
		next := now.Add(q.cfg.backoff(failed - 1))
		if e.NextRetryAt == nil || e.NextRetryAt.Before(next) {
			e.NextRetryAt = &next
		}
	}
	if _, err := q.write(ctx, &e, false); err != nil {
		q.cfg.Logger.Warn("eventbus: could not record a dead-letter retry that was not sent", "dlq_id", e.ID, "err", err)
	}
	return cause
}

// write stores an entry (or its tombstone) on its DLQ topic and applies it
// to the local view once the broker acknowledged it. It returns the record
// written, which holds its partition and offset.
func (q *Queue) write(ctx context.Context, e *Entry, tombstone bool) (rec *kgo.Record, err error) {
	topic := TopicFor(e.ConsumerGroup, e.OriginalTopic)
	ctx, span := q.cfg.Tracer.StartInternal(ctx, "dlq write "+topic,
		attribute.String("plexica.dlq_id", e.ID), attribute.String("plexica.dlq_status", string(e.Status)),
		attribute.Bool("plexica.tombstone", tombstone))
	defer func() { tracing.End(span, err) }()
	if err := q.host.EnsureTopic(ctx, topic, map[string]string{"cleanup.policy": q.cfg.TopicCleanupPolicy}); err != nil {
		return nil, err
	}
	rec = &kgo.Record{Topic: topic, Key: []byte(e.ID)}
	if !tombstone {
		v, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		rec.Value = v
	}
	return rec, q.produceEntryRecord(ctx, rec, e.ID)
}

// produceEntryRecord writes one DLQ record and applies it to the local
// view once the broker acknowledged it.
func (q *Queue) produceEntryRecord(ctx context.Context, rec *kgo.Record, id string) error {
	if err := q.host.Produce(ctx, rec); err != nil {
		return fmt.Errorf("write dead-letter entry %s to %s: %w", id, rec.Topic, err)
	}
	if view := q.currentView(); view != nil {
		view.apply(rec, false)
	}
	if _, seen := q.knownTopics.LoadOrStore(rec.Topic, true); !seen {
		q.noticeTopic()
	}
	return nil
}

// noticeTopic makes the view and the scheduler look for new dlq.* topics
// now rather than at their next periodic metadata refresh.
func (q *Queue) noticeTopic() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.view != nil {
		q.view.cl.ForceMetadataRefresh()
	}
	if q.sched != nil {
		q.sched.cl.ForceMetadataRefresh()
	}
}
