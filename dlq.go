package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/dlq"
	"github.com/plexica/eventbus/internal/dlqindex"
	"github.com/plexica/eventbus/topic"
	"github.com/plexica/eventbus/wire"
)

// FailedEventStatus is where a dead-letter entry stands.
type FailedEventStatus string

// The statuses of a dead-letter entry.
const (
	// StatusPending: failed; an automatic retry is scheduled at NextRetryAt.
	StatusPending FailedEventStatus = FailedEventStatus(dlq.StatusPending)
	// StatusRetrying: a retry was sent to the failed group; its outcome is
	// not known yet. Unanswered at NextRetryAt (DLQConfig.RetryTimeout), it
	// times out: the next automatic retry is sent, or, after the last one
	// or a retry of a permanent failure, the entry is out of retries.
	StatusRetrying FailedEventStatus = FailedEventStatus(dlq.StatusRetrying)
	// StatusResolved: a retry succeeded.
	StatusResolved FailedEventStatus = FailedEventStatus(dlq.StatusResolved)
	// StatusMaxRetriesExceeded: every automatic retry failed (or the handler
	// said the failure is permanent); only a manual retry can resolve it.
	StatusMaxRetriesExceeded FailedEventStatus = FailedEventStatus(dlq.StatusMaxRetriesExceeded)
)

// Valid reports whether s is one of the four statuses.
func (s FailedEventStatus) Valid() bool {
	switch s {
	case StatusPending, StatusRetrying, StatusResolved, StatusMaxRetriesExceeded:
		return true
	}
	return false
}

// ReasonMalformed is the failure reason of a record whose value is not an event.
const ReasonMalformed = dlq.ReasonMalformed

// Retry headers: a retry re-publishes the original record with these to
// the failed group's own retry topic, which only that group reads. They
// name the entry, the group and the attempt (1 for the first retry); the
// entry's owner checks the answer against the entry. Anywhere else they
// mean nothing, and a caller's headers never may set them.
const (
	HeaderDLQID        = wire.HeaderDLQID
	HeaderRetryGroup   = wire.HeaderRetryGroup
	HeaderRetryAttempt = wire.HeaderRetryAttempt
)

// FailedEvent is one dead-letter entry: an event that one consumer group
// failed to handle, with everything needed to understand and retry it.
type FailedEvent struct {
	// ID is stable per consumer group, topic, tenant and event ID, and
	// URL-safe (see FailedEventID); entries stored before the topic and
	// tenant were part of it keep the ID they were stored with.
	ID string `json:"id"`
	// Origin is empty for the entries of this bus, OriginTypeScript for
	// those the TypeScript package wrote on a shared cluster: listed,
	// never retried automatically, retried or deleted by hand.
	Origin string `json:"origin,omitempty"`
	// OriginalEvent is the record value as published: the event's JSON, or
	// for a malformed record a JSON string holding its bytes.
	OriginalEvent json.RawMessage `json:"originalEvent"`
	// OriginalTopic is the topic the event was published to.
	OriginalTopic string `json:"originalTopic"`
	// OriginalKey is the record key (the partition key), kept for retries.
	OriginalKey []byte `json:"originalKey,omitempty"`
	// OriginalHeaders are the record's headers other than the bus's retry headers.
	OriginalHeaders []RecordHeader `json:"originalHeaders,omitempty"`
	EventID         string         `json:"eventId"`
	EventType       string         `json:"eventType,omitempty"`
	TenantID        string         `json:"tenantId,omitempty"`
	WorkspaceID     string         `json:"workspaceId,omitempty"`
	// FailureReason is the last failure's error text (ReasonMalformed for
	// a record that is not an event).
	FailureReason string    `json:"failureReason"`
	FailedAt      time.Time `json:"failedAt"`
	// RetryCount is the number of retries sent so far.
	RetryCount int `json:"retryCount"`
	MaxRetries int `json:"maxRetries"`
	// StackTrace is set for panics.
	StackTrace    string            `json:"stackTrace,omitempty"`
	ConsumerGroup string            `json:"consumerGroup"`
	Partition     int32             `json:"partition"`
	Offset        int64             `json:"offset"`
	Status        FailedEventStatus `json:"status"`
	// Permanent is set when the latest failure was a Permanent error, or the
	// record was not an event (ReasonMalformed): only a manual retry sends
	// it again. A later failure that is not permanent clears it.
	Permanent   bool       `json:"permanent,omitempty"`
	NextRetryAt *time.Time `json:"nextRetryAt,omitempty"`
	ResolvedAt  *time.Time `json:"resolvedAt,omitempty"`
	// Attempts lists every handling that failed or retry that was sent, oldest first.
	Attempts  []Attempt `json:"attempts"`
	UpdatedAt time.Time `json:"updatedAt"`
	// SchedulerGroup is the DLQConfig.SchedulerGroup of the bus that
	// recorded the last failure: only that group's members send the
	// entry's automatic retries. Empty (entries written before the field
	// existed) means the default group.
	SchedulerGroup string `json:"schedulerGroup,omitempty"`
}

// RecordHeader is a record header kept with a failed event.
type RecordHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Attempt is one step in a failed event's history.
type Attempt struct {
	At time.Time `json:"at"`
	// Kind is "failed", "retry" (automatic retry sent), "manual-retry",
	// "resolved", "retry-not-sent" (a retry whose send failed, Error
	// saying why: it spent no attempt) or "late-failed" (a failure that
	// answered an older retry than the entry's latest: recorded, it
	// changes nothing else).
	Kind string `json:"kind"`
	// Number is the retry the step sent or answered (0: the first
	// delivery).
	Number int    `json:"number,omitempty"`
	Error  string `json:"error,omitempty"`
}

// DLQQuery selects dead-letter entries: the filter of every read and of
// RetryAll, and, for List, the order and the page. Empty fields match all.
type DLQQuery struct {
	// Topic is an original topic (not its dlq.* topic).
	Topic    string
	TenantID string
	Status   FailedEventStatus
	// VerifiedTenant keeps only the entries whose tenant is known (see
	// FailedEvent.VerifiedTenant): what access scoped to a tenant may see.
	VerifiedTenant bool

	// Oldest sorts by failure time, oldest first; the default is newest
	// first. List only.
	Oldest bool
	// Offset skips that many matching entries; Limit returns at most that
	// many (0: all the rest). List only: Stats and RetryAll refuse a query
	// that sets Oldest, Offset or Limit, rather than ignore them.
	Offset, Limit int
}

// DLQStats summarizes the dead letter queue.
type DLQStats struct {
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"byStatus"`
	ByTopic  map[string]int `json:"byTopic"`
	ByReason map[string]int `json:"byReason"`
}

// FailedEventID is the dead-letter ID of the event eventID of tenant
// tenantID on topic, failed by consumer group group: stable, URL-safe, 32
// lowercase hex characters (never mistaken for a command-line flag). The
// tenant is the event's tenant-id header (its tenantId for a record
// without one), the topic the one it was published to. Tenant and topic
// are part of it because one group may serve many tenants (a PluginHost's)
// and topics, where event IDs need not be unique.
//
// Entries stored before the tenant and topic were part of the ID keep the
// ID they were stored with (a hash of group and event ID): they are read,
// retried and deleted by that ID as before.
func FailedEventID(group, topic, tenantID, eventID string) string {
	return dlq.EntryID(group, topic, tenantID, eventID)
}

// OriginTypeScript is the FailedEvent.Origin of an entry written by the
// TypeScript @plexica/event-bus on a shared cluster.
const OriginTypeScript = dlq.OriginTypeScript

// VerifiedTenant returns the tenant of e when it is known: when its record
// is an event (it decodes as one) and the event's tenant is the entry's
// (the record's tenant-id header). A malformed record has no tenant: its
// tenant-id header, if any, is a claim that nothing checks against its
// bytes, which may hold anyone's data. Nor has a record whose header and
// event disagree. Access scoped to a tenant uses it.
func (e FailedEvent) VerifiedTenant() (tenant string, known bool) {
	return dlq.VerifiedTenant(e.TenantID, e.OriginalEvent)
}

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
// operator asked for, and nothing more. RouteToDLQ, Ready and TopicRules
// read nothing.
type DeadLetterQueue struct {
	bus *Bus
	q   *dlq.Queue
}

func newDLQ(b *Bus) *DeadLetterQueue {
	c := b.cfg.DLQ
	return &DeadLetterQueue{bus: b, q: dlq.New(dlqHost{b}, dlq.Config{
		MaxRetries: c.maxRetries(), RetryBackoff: c.RetryBackoff, MaxRetryBackoff: c.MaxRetryBackoff,
		SchedulerGroup: c.SchedulerGroup, DisableScheduler: c.DisableScheduler, RetryTimeout: c.RetryTimeout,
		TopicCleanupPolicy: string(c.TopicCleanupPolicy),
		SessionTimeout:     b.cfg.Consumer.SessionTimeout, HeartbeatInterval: b.cfg.Consumer.HeartbeatInterval,
		Logger: b.logger, Tracer: b.tracer,
	})}
}

// DLQ returns the bus's dead letter queue.
func (b *Bus) DLQ() *DeadLetterQueue { return b.dlq }

// Start runs the dead letter queue in this process: it begins reading the
// dlq.* topics into an index that reads then answer from and, unless
// DLQConfig.DisableScheduler, joins DLQConfig.SchedulerGroup to send the
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

// TopicRules returns the topic-name rules of the bus's client.
func (q *DeadLetterQueue) TopicRules() *topic.Rules { return q.bus.client.cfg.TopicRules }

// Get returns one entry, or an error wrapping ErrFailedEventNotFound.
func (q *DeadLetterQueue) Get(ctx context.Context, id string) (FailedEvent, error) {
	e, err := q.q.Get(ctx, id)
	if err != nil {
		return FailedEvent{}, dlqError(err)
	}
	return failedEvent(&e), nil
}

// List returns the entries that match query, newest failure first unless
// query.Oldest, from query.Offset on and at most query.Limit of them (0:
// all), and how many match in all. Matching, counting and sorting use the
// view's index; only the returned entries are read from the brokers, so
// page through many with Offset and Limit.
func (q *DeadLetterQueue) List(ctx context.Context, query DLQQuery) (items []FailedEvent, total int, err error) {
	f, err := query.index()
	if err != nil {
		return nil, 0, err
	}
	if query.Offset < 0 || query.Limit < 0 {
		return nil, 0, fmt.Errorf("%w: offset %d and limit %d must not be negative", ErrInvalidConfig, query.Offset, query.Limit)
	}
	entries, total, err := q.q.Query(ctx, f, query.Oldest, query.Offset, query.Limit)
	if err != nil {
		return nil, 0, dlqError(err)
	}
	out := make([]FailedEvent, len(entries))
	for i := range entries {
		out[i] = failedEvent(&entries[i])
	}
	return out, total, nil
}

// index is the query's filter in the index's terms, or an error for a
// status that is not one of the four.
func (query DLQQuery) index() (dlqindex.Filter, error) {
	if query.Status != "" && !query.Status.Valid() {
		return dlqindex.Filter{}, fmt.Errorf("%w: status %q is not one of pending, retrying, resolved, max-retries-exceeded", ErrInvalidConfig, query.Status)
	}
	return dlqindex.Filter{Topic: query.Topic, Tenant: query.TenantID, Status: string(query.Status), TenantKnown: query.VerifiedTenant}, nil
}

// filterOnly is query.index for the calls that take every match (Stats,
// RetryAll): a query that orders or pages is refused.
func (query DLQQuery) filterOnly(call string) (dlqindex.Filter, error) {
	if query.Oldest || query.Offset != 0 || query.Limit != 0 {
		return dlqindex.Filter{}, fmt.Errorf("%w: %s takes every matching entry; Oldest, Offset and Limit are for List", ErrInvalidConfig, call)
	}
	return query.index()
}

// Stats counts the entries that match query (DLQQuery{} for all of them,
// or for example one tenant's) by status, topic and reason, from the
// view's index. The reasons that label ByReason are the first line of each
// failure reason, secrets scrubbed, at most 80 bytes.
func (q *DeadLetterQueue) Stats(ctx context.Context, query DLQQuery) (DLQStats, error) {
	f, err := query.filterOnly("Stats")
	if err != nil {
		return DLQStats{}, err
	}
	c, err := q.q.Stats(ctx, f)
	if err != nil {
		return DLQStats{}, dlqError(err)
	}
	return DLQStats{Total: c.Total, ByStatus: c.ByStatus, ByTopic: c.ByTopic, ByReason: c.ByReason}, nil
}

// RetryOption changes how DeadLetterQueue.Retry (and dlqhttp's
// Client.Retry) sends an entry again. The zero RetryOption changes nothing.
type RetryOption struct{ ifAllowed bool }

// RetryIfAllowed makes Retry send the entry's event again as an automatic
// retry would: it counts toward the entry's MaxRetries and fails with
// ErrRetryNotAllowed when the entry is resolved, out of retries, or was
// written by the TypeScript package.
func RetryIfAllowed() RetryOption { return RetryOption{ifAllowed: true} }

// Retry sends the entry's event again, by hand, to the consumer group that
// failed it, and only to that group, whatever the entry's status. An entry
// the TypeScript package wrote (Origin OriginTypeScript) is retried the way
// that package retries: every group reads the event again. With
// RetryIfAllowed it retries as the automatic schedule would instead.
func (q *DeadLetterQueue) Retry(ctx context.Context, id string, opts ...RetryOption) error {
	manual := true
	for _, o := range opts {
		if o.ifAllowed {
			manual = false
		}
	}
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
func (q *DeadLetterQueue) RetryAll(ctx context.Context, query DLQQuery) (succeeded, failed int, err error) {
	if query.Topic != "" {
		if err := q.bus.client.cfg.TopicRules.Validate(query.Topic); err != nil {
			return 0, 0, err
		}
	}
	f, err := query.filterOnly("RetryAll")
	if err != nil {
		return 0, 0, err
	}
	entries, _, err := q.q.Query(ctx, f, false, 0, 0)
	if err != nil {
		return 0, 0, dlqError(err)
	}
	for _, e := range entries {
		if e.Status == dlq.StatusResolved {
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
// TypeScript package wrote, an overlay that hides it).
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

// failedEvent is the public form of an entry.
func failedEvent(e *dlq.Entry) FailedEvent {
	out := FailedEvent{
		ID: e.ID, Origin: e.Origin,
		OriginalEvent: e.OriginalEvent, OriginalTopic: e.OriginalTopic, OriginalKey: e.OriginalKey,
		EventID: e.EventID, EventType: e.EventType, TenantID: e.TenantID, WorkspaceID: e.WorkspaceID,
		FailureReason: e.FailureReason, FailedAt: e.FailedAt,
		RetryCount: e.RetryCount, MaxRetries: e.MaxRetries, StackTrace: e.StackTrace,
		ConsumerGroup: e.ConsumerGroup, Partition: e.Partition, Offset: e.Offset,
		Status: FailedEventStatus(e.Status), Permanent: e.Permanent,
		NextRetryAt: e.NextRetryAt, ResolvedAt: e.ResolvedAt, UpdatedAt: e.UpdatedAt,
		SchedulerGroup: e.SchedulerGroup,
	}
	for _, h := range e.OriginalHeaders {
		out.OriginalHeaders = append(out.OriginalHeaders, RecordHeader(h))
	}
	out.Attempts = make([]Attempt, len(e.Attempts))
	for i, a := range e.Attempts {
		out.Attempts[i] = Attempt(a)
	}
	return out
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
