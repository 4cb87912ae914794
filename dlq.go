package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/dlq"
	"github.com/plexica/eventbus/internal/dlqindex"
	"github.com/plexica/eventbus/topic"
	"github.com/plexica/eventbus/wire"
)

// DeadLetterQueue lists, counts, retries and deletes the entries kept in
// the dlq.* topics (see the package documentation, "Failures and the dead
// letter queue"). Nothing runs until Start: only a process that calls it
// keeps an index of every entry (about 500 bytes per entry, map included),
// kept current as the topics change, and schedules automatic retries.
//
// The reads (Get, List, Stats) work in any process. After Start they
// answer from the index. Before it they answer from the topics: each read
// reads every dlq.* partition up to its current end, outside any consumer
// group, answers, and keeps nothing; it never joins the scheduler group or
// sends a retry. That costs a read of the whole queue per call: a process
// that reads often (a REST API, a dashboard) calls Start. Retry, RetryAll
// and Delete read their entries the same way, then write what the
// operator asked for, and nothing more. RouteToDLQ and Ready read
// nothing.
//
// Its words are the deadletter package's (deadletter.Entry,
// deadletter.Query, deadletter.Stats, ...), which dlqhttp's REST API and
// Client speak too.
type DeadLetterQueue struct {
	bus *Bus
	q   *dlq.Queue
}

func newDLQ(b *Bus) *DeadLetterQueue {
	return &DeadLetterQueue{bus: b, q: dlq.New(dlqHost{b}, dlq.Config{
		Config:         b.cfg.DLQ,
		SessionTimeout: b.cfg.Consumer.SessionTimeout, HeartbeatInterval: b.cfg.Consumer.HeartbeatInterval,
		InstanceID: b.cfg.Consumer.InstanceID,
		Logger:     b.logger, Tracer: b.tracer,
	})}
}

// DLQ returns the bus's dead letter queue.
func (b *Bus) DLQ() *DeadLetterQueue { return b.dlq }

// Start runs the dead letter queue in this process: it begins reading the
// dlq.* topics into an index that reads then answer from and, unless
// deadletter.Config.DisableScheduler, joins its SchedulerGroup to send the
// automatic retries of the partitions it is given. It returns once the
// index has caught up with what the topics held when it started. Nothing
// else starts it: not reads, not subscribing. A deployment needs at least
// one process that calls it (eventbus serve does) for automatic retries to
// be sent. Calling it again only waits for the index to catch up. It
// stops with Bus.Shutdown.
func (q *DeadLetterQueue) Start(ctx context.Context) error {
	return dlqError(q.q.Start(ctx))
}

// Ready reports whether this bus serves the full dead letter queue: nil
// once Start has read the dlq.* topics up to where they stood when it
// began, else an error that says why not (not started here, still reading,
// stopped). A readiness probe of a process that serves the DLQ uses it.
func (q *DeadLetterQueue) Ready() error { return dlqError(q.q.Ready()) }

// dlqError turns the queue's ErrStopped into the bus's ErrShuttingDown.
func dlqError(err error) error {
	if errors.Is(err, dlq.ErrStopped) {
		return shuttingDown()
	}
	return err
}

// Get returns one entry, or an error wrapping deadletter.ErrNotFound.
func (q *DeadLetterQueue) Get(ctx context.Context, id string) (deadletter.Entry, error) {
	e, err := q.q.Get(ctx, id)
	if err != nil {
		return deadletter.Entry{}, dlqError(err)
	}
	return e, nil
}

// List returns the entries that match query, newest failure first unless
// query.Oldest, from query.Offset on and at most query.Limit of them (0:
// all), and how many match in all. Matching, counting and sorting use the
// view's index; only the returned entries are read from the brokers, so
// page through many with Offset and Limit.
func (q *DeadLetterQueue) List(ctx context.Context, query deadletter.Query) (items []deadletter.Entry, total int, err error) {
	f, err := q.filter(query)
	if err != nil {
		return nil, 0, err
	}
	if query.Offset < 0 || query.Limit < 0 {
		return nil, 0, fmt.Errorf("%w: offset %d and limit %d must not be negative", ErrInvalidConfig, query.Offset, query.Limit)
	}
	items, total, err = q.q.Query(ctx, f, query.Oldest, query.Offset, query.Limit)
	if err != nil {
		return nil, 0, dlqError(err)
	}
	if items == nil {
		items = []deadletter.Entry{}
	}
	return items, total, nil
}

// filter is query's filter in the index's terms, or an error for a status
// that is not one of the four or a topic that is not an original topic by
// the rules of the bus's client (ClientConfig.TopicRules).
func (q *DeadLetterQueue) filter(query deadletter.Query) (dlqindex.Filter, error) {
	if query.Status != "" && !query.Status.Valid() {
		return dlqindex.Filter{}, fmt.Errorf("%w: status %q is not one of pending, retrying, resolved, max-retries-exceeded", ErrInvalidConfig, query.Status)
	}
	if query.Topic != "" {
		t, err := q.bus.client.cfg.TopicRules.Parse(query.Topic)
		if err != nil {
			return dlqindex.Filter{}, err
		}
		if t.Kind == topic.KindDLQ {
			return dlqindex.Filter{}, fmt.Errorf("%w: %q is a dead-letter topic; give the original topic (%s)", ErrInvalidTopic, query.Topic, strings.TrimPrefix(query.Topic, "dlq."))
		}
	}
	return dlqindex.Filter{Topic: query.Topic, Tenant: query.TenantID, Status: string(query.Status), TenantKnown: query.VerifiedTenant}, nil
}

// filterOnly is filter for the calls that take every match (Stats,
// RetryAll): a query that orders or pages is refused.
func (q *DeadLetterQueue) filterOnly(call string, query deadletter.Query) (dlqindex.Filter, error) {
	if query.Oldest || query.Offset != 0 || query.Limit != 0 {
		return dlqindex.Filter{}, fmt.Errorf("%w: %s takes every matching entry; Oldest, Offset and Limit are for List", ErrInvalidConfig, call)
	}
	return q.filter(query)
}

// Stats counts the entries that match query (deadletter.Query{} for all
// of them, or for example one tenant's) by status, topic and reason, from
// the view's index. The reasons that label ByReason are the first line of
// each failure reason, secrets scrubbed, at most 80 bytes.
func (q *DeadLetterQueue) Stats(ctx context.Context, query deadletter.Query) (deadletter.Stats, error) {
	f, err := q.filterOnly("Stats", query)
	if err != nil {
		return deadletter.Stats{}, err
	}
	s, err := q.q.Stats(ctx, f)
	if err != nil {
		return deadletter.Stats{}, dlqError(err)
	}
	return s, nil
}

// Retry sends the entry's event again, by hand, to the consumer group that
// failed it, and only to that group, whatever the entry's status. An entry
// the TypeScript package wrote (Origin deadletter.OriginTypeScript) is
// retried the way that package retries: every group reads the event
// again. With deadletter.RetryIfAllowed it retries as the automatic
// schedule would instead. It returns an error wrapping
// deadletter.ErrNotFound for an unknown entry, deadletter.ErrRetryNotAllowed
// for an automatic retry the entry does not allow, and
// deadletter.ErrNotApplied when the entry's owner did not apply it in time.
func (q *DeadLetterQueue) Retry(ctx context.Context, id string, opts ...deadletter.RetryOption) error {
	manual := !slices.Contains(opts, deadletter.RetryIfAllowed())
	e, err := q.q.Get(ctx, id)
	if err != nil {
		return dlqError(err)
	}
	return q.q.Retry(ctx, e, manual)
}

// RetryAll manually retries every unresolved entry that matches query (for
// example one topic's entries of one tenant) and returns how many retries
// were sent and how many could not be. A query that sets Oldest, Offset or
// Limit is refused, and so is a Topic that is not a valid topic name.
func (q *DeadLetterQueue) RetryAll(ctx context.Context, query deadletter.Query) (succeeded, failed int, err error) {
	f, err := q.filterOnly("RetryAll", query)
	if err != nil {
		return 0, 0, err
	}
	entries, _, err := q.q.Query(ctx, f, false, 0, 0)
	if err != nil {
		return 0, 0, dlqError(err)
	}
	for _, e := range entries {
		if e.Status == deadletter.StatusResolved {
			continue
		}
		if err := q.q.Retry(ctx, e, true); err != nil {
			q.bus.logger.Warn("eventbus: retry failed", "dlq_id", e.ID, "err", err)
			failed++
			continue
		}
		succeeded++
	}
	return succeeded, failed, nil
}

// Delete removes an entry (a tombstone on its DLQ topic; for an entry the
// TypeScript package wrote, an overlay that hides it). Its errors are
// Retry's.
func (q *DeadLetterQueue) Delete(ctx context.Context, id string) error {
	e, err := q.q.Get(ctx, id)
	if err != nil {
		return dlqError(err)
	}
	return q.q.Delete(ctx, e)
}

// RouteToDLQ records that group failed to handle event (published on
// topic) because of cause, as the bus does itself when a handler fails, and
// returns the entry's ID. It returns once the failure is stored for the
// entry's owner; in a process that runs the queue (Start), once the owner
// applied it, so that a read that follows sees the entry.
func (q *DeadLetterQueue) RouteToDLQ(ctx context.Context, topic string, event RawEvent, group string, cause error) (string, error) {
	if _, err := q.bus.client.cfg.TopicRules.Parse(topic); err != nil {
		return "", err
	}
	data := event.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	env := event.envelope(data)
	p, err := q.bus.prepare(topic, event.Data, PublishMetadata{
		TenantID: env.TenantID, WorkspaceID: env.WorkspaceID, Source: env.Source, UserID: env.UserID,
		CorrelationID: env.CorrelationID, CausationID: env.CausationID, Version: env.Version,
	}, []PublishOption{WithEventID(orDefault(event.ID, newUUID())), WithTimestamp(event.Timestamp)})
	if err != nil {
		return "", err
	}
	rec := p.record
	rec.Partition, rec.Offset = -1, -1
	return q.q.RouteFailure(ctx, rec, topic, group, event.ID, failureOf(cause))
}

// failureOf classifies a handler's error for the dead letter queue.
func failureOf(cause error) dlq.Failure {
	f := dlq.Failure{Reason: cause.Error()}
	var pe *PanicError
	if errors.As(cause, &pe) {
		f.Stack = string(pe.Stack)
	}
	var perm *PermanentError
	var after *RetryAfterError
	switch {
	case errors.As(cause, &perm), errors.Is(cause, wire.ErrMalformed):
		f.Permanent = true
	case errors.As(cause, &after):
		f.RetryAfter, f.HasRetryAfter = after.Delay, true
	}
	return f
}

// stop stops the scheduler and the view.
func (q *DeadLetterQueue) stop(ctx context.Context) { q.q.Stop(ctx) }

// dlqHost is the bus as the dead letter queue's machinery uses it.
type dlqHost struct{ b *Bus }

func (h dlqHost) Produce(ctx context.Context, rec *kgo.Record) error {
	producer, err := h.b.producer("")
	if err != nil {
		return err
	}
	return h.b.produce(ctx, []prepared{{record: rec, producer: producer}}, nil)
}

func (h dlqHost) EnsureTopic(ctx context.Context, name string, configs map[string]string) error {
	var opts []topic.Option
	for k, v := range configs {
		opts = append(opts, topic.WithConfig(k, v))
	}
	return h.b.client.topics.Ensure(ctx, name, opts...)
}

func (h dlqHost) EnsureRetryTopic(ctx context.Context, name string) error {
	return h.b.client.topics.Ensure(ctx, name, topic.WithPartitions(dlq.RetryTopicPartitions))
}

func (h dlqHost) NewClient(opts ...kgo.Opt) (*kgo.Client, error) { return h.b.client.newKgo(opts...) }
func (h dlqHost) Conn() (*kgo.Client, error)                     { return h.b.client.adminKgo() }
func (h dlqHost) Admin() (*kadm.Client, error)                   { return h.b.client.Admin() }

func (h dlqHost) RetrySent(topic string, manual bool) {
	h.b.cfg.Metrics.observeRetrySent(topic, manual)
}
