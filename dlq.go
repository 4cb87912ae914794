package eventbus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"

	"github.com/plexica/eventbus/internal/backoff"
	"github.com/plexica/eventbus/internal/dlqindex"
	"github.com/plexica/eventbus/internal/logread"
	"github.com/plexica/eventbus/internal/wire"
)

// FailedEventStatus is where a dead-letter entry stands.
type FailedEventStatus string

// The statuses of a dead-letter entry.
const (
	// StatusPending: failed; an automatic retry is scheduled at NextRetryAt.
	StatusPending FailedEventStatus = "pending"
	// StatusRetrying: a retry was sent to the failed group; its outcome is not known yet.
	StatusRetrying FailedEventStatus = "retrying"
	// StatusResolved: a retry succeeded.
	StatusResolved FailedEventStatus = "resolved"
	// StatusMaxRetriesExceeded: every automatic retry failed (or the handler
	// said the failure is permanent); only a manual retry can resolve it.
	StatusMaxRetriesExceeded FailedEventStatus = "max-retries-exceeded"
)

// Valid reports whether s is one of the four statuses.
func (s FailedEventStatus) Valid() bool {
	switch s {
	case StatusPending, StatusRetrying, StatusResolved, StatusMaxRetriesExceeded:
		return true
	}
	return false
}

var allStatuses = [...]FailedEventStatus{StatusPending, StatusRetrying, StatusResolved, StatusMaxRetriesExceeded}

// countByStatus counts the view's entries by status (zeros before Start).
func (q *DeadLetterQueue) countByStatus() map[FailedEventStatus]int {
	counts := map[FailedEventStatus]int{}
	view := q.currentView()
	if view == nil {
		return counts
	}
	for st, n := range view.stats(FailedEventFilter{}).ByStatus {
		counts[FailedEventStatus(st)] = n
	}
	return counts
}

// ReasonMalformed is the failure reason of a record whose value is not an event.
const ReasonMalformed = "malformed"

// Retry headers: a retry re-publishes the original record with these, and
// every subscription skips, before decoding, a retry meant for another group.
const (
	HeaderDLQID        = "dlq-id"
	HeaderRetryGroup   = "retry-group"
	HeaderRetryAttempt = "retry-attempt"
	// HeaderDLQEntry and HeaderDLQSignature carry, with DLQConfig.SigningKey,
	// the retried entry and its HMAC.
	HeaderDLQEntry     = "dlq-entry"
	HeaderDLQSignature = "dlq-signature"
	// HeaderDLQPosition carries, without a signing key, where the entry
	// version the retry was sent as lies on its dlq.* topic
	// ("<partition>:<offset>"): the subscriber reads that one record to
	// check the retry, and keeps no dead-letter view.
	HeaderDLQPosition = "dlq-position"
)

// isDLQHeader reports whether key is one of the headers the dead letter
// queue sets on a retry (never kept with an entry, never set by callers).
func isDLQHeader(key string) bool {
	switch key {
	case HeaderDLQID, HeaderRetryGroup, HeaderRetryAttempt, HeaderDLQEntry, HeaderDLQSignature, HeaderDLQPosition:
		return true
	}
	return false
}

// FailedEvent is one dead-letter entry: an event that one consumer group
// failed to handle, with everything needed to understand and retry it.
type FailedEvent struct {
	// ID is stable per consumer group and event ID, and URL-safe.
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
	// Permanent is set when the handler returned a Permanent error, or the
	// record was not an event (ReasonMalformed): only a manual retry sends
	// it again.
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
	// Kind is "failed", "retry" (automatic retry sent), "manual-retry" or "resolved".
	Kind  string `json:"kind"`
	Error string `json:"error,omitempty"`
}

// FailedEventFilter selects dead-letter entries; empty fields match all.
type FailedEventFilter struct {
	Topic    string
	TenantID string
	Status   FailedEventStatus
	// VerifiedTenant keeps only the entries whose tenant is known (see
	// FailedEvent.VerifiedTenant): what access scoped to a tenant may see.
	VerifiedTenant bool
}

// FailedEventQuery selects one page of dead-letter entries.
type FailedEventQuery struct {
	FailedEventFilter
	// Oldest sorts by failure time, oldest first; the default is newest first.
	Oldest bool
	// Offset skips that many matching entries; Limit returns at most that
	// many (0: all the rest).
	Offset, Limit int
}

// DLQStats summarizes the dead letter queue.
type DLQStats struct {
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"byStatus"`
	ByTopic  map[string]int `json:"byTopic"`
	ByReason map[string]int `json:"byReason"`
}

// DLQConfig tunes the dead letter queue.
type DLQConfig struct {
	// MaxRetries is the number of automatic retries. Default 3.
	MaxRetries int
	// RetryBackoff is the delay before the first automatic retry; retry n
	// waits RetryBackoff·2^n. Default 1 s.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the delay. Default 1 h.
	MaxRetryBackoff time.Duration
	// SchedulerGroup is the consumer group over the dlq.* topics whose
	// members schedule automatic retries: each DLQ partition's owner is its
	// only scheduler. An entry is scheduled only by the group named in its
	// FailedEvent.SchedulerGroup (the group of the bus whose handler
	// failed), so deployments that share a cluster under different names
	// never retry each other's entries. Every instance of one deployment
	// must use the same name. Default DefaultSchedulerGroup.
	SchedulerGroup string
	// DisableScheduler stops this process from scheduling automatic retries
	// (other instances still do).
	DisableScheduler bool
	// RetryTimeout is how long a sent retry may stay unanswered before it
	// is sent again (the process that was to handle it may have died).
	// Default 5 min.
	RetryTimeout time.Duration
	// SigningKey, when set (at least 32 bytes, the same in every process of
	// a deployment), signs the retries this process sends: an HMAC-SHA256
	// over the entry they carry (headers dlq-entry and dlq-signature). A
	// subscriber then checks a retry, and records what came of it, from the
	// record alone. Without a key a retry names where its entry lies
	// (dlq-position), and the subscriber reads that record and the few
	// after it. Either way a process that only publishes and subscribes
	// keeps no dead-letter view. Default none.
	SigningKey []byte
	// TopicCleanupPolicy is the cleanup.policy of the dlq.* topics this bus
	// creates: "compact,delete" (the default: the newest version of each
	// entry is kept, for at most the 30-day retention) or "delete" (every
	// version is kept until retention removes it). Use "delete" on a
	// cluster shared with services that use the TypeScript package: it
	// keys its entries by tenant, so compaction would keep only each
	// tenant's newest. Topics that already exist are left as they are.
	TopicCleanupPolicy string
}

// DefaultSchedulerGroup is the DLQ scheduler group used when
// DLQConfig.SchedulerGroup is empty.
const DefaultSchedulerGroup = "plexica-eventbus-dlq-scheduler"

func (c *DLQConfig) setDefaults() error {
	if c.MaxRetries == 0 {
		c.MaxRetries = 3
	}
	if c.MaxRetries < 0 {
		return fmt.Errorf("%w: DLQ.MaxRetries %d is negative", ErrInvalidConfig, c.MaxRetries)
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = time.Second
	}
	if c.MaxRetryBackoff <= 0 {
		c.MaxRetryBackoff = time.Hour
	}
	if c.SchedulerGroup == "" {
		c.SchedulerGroup = DefaultSchedulerGroup
	}
	if c.RetryTimeout <= 0 {
		c.RetryTimeout = 5 * time.Minute
	}
	switch c.TopicCleanupPolicy {
	case "":
		c.TopicCleanupPolicy = "compact,delete"
	case "compact,delete", "delete":
	default:
		return fmt.Errorf("%w: DLQ.TopicCleanupPolicy %q is not \"compact,delete\" (the default) or \"delete\" (for clusters shared with TypeScript services)", ErrInvalidConfig, c.TopicCleanupPolicy)
	}
	if len(c.SigningKey) > 0 && len(c.SigningKey) < 32 {
		return fmt.Errorf("%w: DLQ.SigningKey has %d bytes; give at least 32 random bytes, the same in every process of the deployment", ErrInvalidConfig, len(c.SigningKey))
	}
	return nil
}

// backoff is the delay before automatic retry n+1 after n were sent.
func (c *DLQConfig) backoff(n int) time.Duration {
	return backoff.Exponential(c.RetryBackoff, c.MaxRetryBackoff, n)
}

// FailedEventID is the dead-letter ID of an event failed by a group:
// stable, URL-safe, 32 lowercase hex characters (never mistaken for a
// command-line flag).
func FailedEventID(group, eventID string) string {
	sum := sha256.Sum256([]byte(group + "\x00" + eventID))
	return hex.EncodeToString(sum[:16])
}

// DeadLetterQueue holds the events consumer groups failed to handle. Its
// source of truth is the dlq.<topic> topics (compacted, 30-day retention,
// keyed by entry ID). Only a process that calls Start (eventbus serve does,
// and every DLQ call starts it) reads them: it keeps an index of every
// entry, reads entries back from their records on demand, and, as a member
// of DLQConfig.SchedulerGroup, schedules the automatic retries of the DLQ
// partitions it owns. A process that only publishes and subscribes keeps
// no dead-letter view: it writes its failures, and checks the retries it
// receives by reading the one record each names.
type DeadLetterQueue struct {
	bus    *Bus
	cfg    DLQConfig
	logger *slog.Logger

	mu      sync.Mutex // guards view, sched and stopped
	view    *dlqView
	sched   *dlqScheduler
	stopped bool
	now     func() time.Time

	knownTopics sync.Map // dlq topics this process wrote to

	// testHookBeforeOutcome, when set by a test, runs just before a
	// retry's outcome is written.
	testHookBeforeOutcome func()

	readerOnce sync.Once
	reader     *logread.Reader // reads the records retries name
	readerErr  error
}

func newDLQ(b *Bus) *DeadLetterQueue {
	return &DeadLetterQueue{bus: b, cfg: b.cfg.DLQ, logger: b.logger, now: time.Now}
}

// DLQ returns the bus's dead letter queue.
func (b *Bus) DLQ() *DeadLetterQueue { return b.dlq }

// Start begins reading the dlq.* topics and, unless disabled, scheduling
// retries; it returns once the view has caught up with what the topics held
// when it started. Any DLQ call starts it; subscribing never does. A
// deployment needs at least one process that runs it (eventbus serve does)
// for automatic retries to be sent. Calling it again is a no-op.
func (q *DeadLetterQueue) Start(ctx context.Context) error {
	view, err := q.startOnce()
	if err != nil {
		return err
	}
	return view.waitReady(ctx)
}

// currentView is the view, if this process started one.
func (q *DeadLetterQueue) currentView() *dlqView {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.view
}

// recordReader returns the reader of single DLQ records.
func (q *DeadLetterQueue) recordReader() (*logread.Reader, error) {
	q.readerOnce.Do(func() {
		cl, err := q.bus.client.adminKgo()
		if err != nil {
			q.readerErr = err
			return
		}
		q.reader = logread.New(cl)
	})
	return q.reader, q.readerErr
}

// Ready reports whether this bus serves the full dead letter queue: nil
// once Start has read the dlq.* topics up to where they stood when it
// began, else an error that says why not (not started here, still reading,
// stopped). A readiness probe of a process that serves the DLQ uses it.
func (q *DeadLetterQueue) Ready() error {
	q.mu.Lock()
	view, stopped := q.view, q.stopped
	q.mu.Unlock()
	switch {
	case stopped:
		return shuttingDown()
	case view == nil:
		return errors.New("the dead letter queue is not started in this process (DeadLetterQueue.Start)")
	}
	if caughtUp, total, ready := view.loading(); !ready {
		return fmt.Errorf("the dead letter queue is still reading the dlq.* topics (%d of %d partitions caught up)", caughtUp, total)
	}
	return nil
}

func (q *DeadLetterQueue) startOnce() (*dlqView, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return nil, shuttingDown()
	}
	if q.view != nil {
		return q.view, nil
	}
	view := newDLQView(q)
	if err := view.start(); err != nil {
		return nil, err
	}
	q.view = view // before the scheduler starts: it reads the view
	if !q.cfg.DisableScheduler {
		sched := newDLQScheduler(q)
		if err := sched.start(); err != nil {
			view.stop()
			q.view = nil
			return nil, err
		}
		q.sched = sched
	}
	return view, nil
}

// stop stops the scheduler and the view. It holds q.mu only to mark the
// queue stopped: the scheduler it waits for may need q.mu (noticeTopic).
func (q *DeadLetterQueue) stop(ctx context.Context) {
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

// TopicRules returns the topic-name rules of the bus's client.
func (q *DeadLetterQueue) TopicRules() *TopicRules { return q.bus.client.cfg.TopicRules }

// started starts the view (if need be) and waits until it is ready.
func (q *DeadLetterQueue) started(ctx context.Context) (*dlqView, error) {
	if err := q.Start(ctx); err != nil {
		return nil, err
	}
	return q.currentView(), nil
}

// FailedEvents returns the entries that match filter, newest failure
// first. It reads every one of them from the brokers: to page through
// many, use QueryFailedEvents.
func (q *DeadLetterQueue) FailedEvents(ctx context.Context, filter FailedEventFilter) ([]FailedEvent, error) {
	out, _, err := q.QueryFailedEvents(ctx, FailedEventQuery{FailedEventFilter: filter})
	return out, err
}

// QueryFailedEvents returns one page of the entries that match query, and
// how many match in all. Matching, counting and sorting use the view's
// index; only the page's entries are read from the brokers.
func (q *DeadLetterQueue) QueryFailedEvents(ctx context.Context, query FailedEventQuery) ([]FailedEvent, int, error) {
	if query.Status != "" && !query.Status.Valid() {
		return nil, 0, fmt.Errorf("%w: status %q is not one of pending, retrying, resolved, max-retries-exceeded", ErrInvalidConfig, query.Status)
	}
	if query.Offset < 0 || query.Limit < 0 {
		return nil, 0, fmt.Errorf("%w: offset %d and limit %d must not be negative", ErrInvalidConfig, query.Offset, query.Limit)
	}
	view, err := q.started(ctx)
	if err != nil {
		return nil, 0, err
	}
	refs := view.query(query.FailedEventFilter, query.Oldest)
	total := len(refs)
	refs = refs[min(query.Offset, total):]
	if query.Limit > 0 {
		refs = refs[:min(query.Limit, len(refs))]
	}
	out, err := view.read(ctx, refs)
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// FailedEvent returns one entry, or an error wrapping ErrFailedEventNotFound.
func (q *DeadLetterQueue) FailedEvent(ctx context.Context, id string) (FailedEvent, error) {
	view, err := q.started(ctx)
	if err != nil {
		return FailedEvent{}, err
	}
	e, ok, err := view.get(ctx, id)
	switch {
	case err != nil:
		return FailedEvent{}, err
	case !ok:
		return FailedEvent{}, notFound(id)
	}
	return e, nil
}

func notFound(id string) error {
	return fmt.Errorf("%w: no dead-letter entry %q (list them with FailedEvents)", ErrFailedEventNotFound, id)
}

// Stats counts the entries by status, topic and reason.
func (q *DeadLetterQueue) Stats(ctx context.Context) (DLQStats, error) {
	return q.StatsFor(ctx, FailedEventFilter{})
}

// StatsFor counts the entries that match filter (for example one
// tenant's), from the view's index. The reasons that label ByReason are
// the first line of each failure reason, secrets scrubbed, at most 80
// bytes.
func (q *DeadLetterQueue) StatsFor(ctx context.Context, filter FailedEventFilter) (DLQStats, error) {
	if filter.Status != "" && !filter.Status.Valid() {
		return DLQStats{}, fmt.Errorf("%w: status %q is not one of pending, retrying, resolved, max-retries-exceeded", ErrInvalidConfig, filter.Status)
	}
	view, err := q.started(ctx)
	if err != nil {
		return DLQStats{}, err
	}
	return view.stats(filter), nil
}

// reasonClass shortens a failure reason to a bounded label: its first line,
// at most 80 bytes.
func reasonClass(r string) string {
	if i := strings.IndexByte(r, '\n'); i >= 0 {
		r = r[:i]
	}
	if len(r) > 80 {
		r = r[:80]
	}
	return r
}

// RetryFailedEvent sends the entry's event again, by hand, to the consumer
// group that failed it, and only to that group, whatever the entry's status.
// An entry the TypeScript package wrote (Origin OriginTypeScript) is retried
// the way that package retries: every group reads the event again.
func (q *DeadLetterQueue) RetryFailedEvent(ctx context.Context, id string) error {
	return q.retry(ctx, id, true)
}

// RetryFailedEventIfAllowed sends the entry's event again as an automatic
// retry would: it counts toward the entry's MaxRetries and fails with
// ErrRetryNotAllowed when the entry is resolved, out of retries, or was
// written by the TypeScript package.
func (q *DeadLetterQueue) RetryFailedEventIfAllowed(ctx context.Context, id string) error {
	return q.retry(ctx, id, false)
}

func (q *DeadLetterQueue) retry(ctx context.Context, id string, manual bool) error {
	e, err := q.FailedEvent(ctx, id)
	if err != nil {
		return err
	}
	return q.retryEntry(ctx, e, manual)
}

// retryEntry retries e, an entry just read.
func (q *DeadLetterQueue) retryEntry(ctx context.Context, e FailedEvent, manual bool) error {
	id := e.ID
	if e.Origin == OriginTypeScript {
		if !manual {
			return fmt.Errorf("%w: entry %s was written by the TypeScript package; retry it manually", ErrRetryNotAllowed, id)
		}
		ref, ok := q.currentView().ref(id)
		if !ok {
			return notFound(id)
		}
		return q.retryTypeScript(ctx, ref.Pos.Topic, e)
	}
	if !manual && (e.Status == StatusResolved || e.Status == StatusMaxRetriesExceeded || e.RetryCount >= e.MaxRetries) {
		return fmt.Errorf("%w: entry %s is %s after %d of %d retries; retry it manually", ErrRetryNotAllowed, id, e.Status, e.RetryCount, e.MaxRetries)
	}
	return q.sendRetry(ctx, e, manual)
}

// RetryAllForTopic manually retries every unresolved entry of topic and
// returns how many retries were sent and how many could not be.
func (q *DeadLetterQueue) RetryAllForTopic(ctx context.Context, topic string) (succeeded, failed int, err error) {
	if err := q.bus.client.cfg.TopicRules.ValidateTopic(topic); err != nil {
		return 0, 0, err
	}
	entries, err := q.FailedEvents(ctx, FailedEventFilter{Topic: topic})
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		if e.Status == StatusResolved {
			continue
		}
		if err := q.retryEntry(ctx, e, true); err != nil {
			q.logger.Warn("eventbus: retry failed", "dlq_id", e.ID, "err", err)
			failed++
			continue
		}
		succeeded++
	}
	return succeeded, failed, nil
}

// DeleteFailedEvent removes an entry (a tombstone on its DLQ topic; for an
// entry the TypeScript package wrote, an overlay that hides it).
func (q *DeadLetterQueue) DeleteFailedEvent(ctx context.Context, id string) error {
	e, err := q.FailedEvent(ctx, id)
	if err != nil {
		return err
	}
	if e.Origin == OriginTypeScript {
		ref, ok := q.currentView().ref(id)
		if !ok {
			return notFound(id)
		}
		return q.writeOverlay(ctx, ref.Pos.Topic, e, true)
	}
	_, err = q.write(ctx, &e, true)
	return err
}

// RouteToDLQ records that group failed to handle event (published on
// topic) because of cause, as the bus does itself when a handler fails. It
// returns the entry's ID.
func (q *DeadLetterQueue) RouteToDLQ(ctx context.Context, topic string, event RawEvent, group string, cause error) (string, error) {
	if _, err := q.bus.client.cfg.TopicRules.ParseTopic(topic); err != nil {
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
	e := q.newEntry(rec, group, event.ID)
	q.applyFailure(e, cause, q.now().UTC())
	_, err = q.write(ctx, e, false)
	return e.ID, err
}

// newEntry builds the entry for a record that group failed; applyFailure
// then records the failure itself.
func (q *DeadLetterQueue) newEntry(r *kgo.Record, group, eventID string) *FailedEvent {
	now := q.now().UTC()
	e := &FailedEvent{
		ID:             FailedEventID(group, eventID),
		OriginalTopic:  r.Topic,
		OriginalKey:    r.Key,
		EventID:        eventID,
		ConsumerGroup:  group,
		Partition:      r.Partition,
		Offset:         r.Offset,
		MaxRetries:     q.cfg.MaxRetries,
		FailedAt:       now,
		SchedulerGroup: q.cfg.SchedulerGroup,
	}
	if json.Valid(r.Value) {
		e.OriginalEvent = append(json.RawMessage(nil), r.Value...)
	} else {
		e.OriginalEvent, _ = json.Marshal(string(r.Value))
	}
	for _, h := range r.Headers {
		switch {
		case isDLQHeader(h.Key):
		case h.Key == wire.HeaderEventType:
			e.EventType = string(h.Value)
			e.OriginalHeaders = append(e.OriginalHeaders, RecordHeader{h.Key, string(h.Value)})
		case h.Key == wire.HeaderTenantID:
			e.TenantID = string(h.Value)
			e.OriginalHeaders = append(e.OriginalHeaders, RecordHeader{h.Key, string(h.Value)})
		case h.Key == wire.HeaderWorkspaceID:
			e.WorkspaceID = string(h.Value)
			e.OriginalHeaders = append(e.OriginalHeaders, RecordHeader{h.Key, string(h.Value)})
		default:
			e.OriginalHeaders = append(e.OriginalHeaders, RecordHeader{h.Key, string(h.Value)})
		}
	}
	return e
}

// applyFailure records a failed handling on e and decides what comes next.
func (q *DeadLetterQueue) applyFailure(e *FailedEvent, cause error, now time.Time) {
	e.FailureReason = cause.Error()
	e.StackTrace = ""
	var pe *PanicError
	if errors.As(cause, &pe) {
		e.StackTrace = string(pe.Stack)
	}
	e.Attempts = append(e.Attempts, Attempt{At: now, Kind: "failed", Error: e.FailureReason})
	e.UpdatedAt = now
	e.ResolvedAt = nil
	var perm *PermanentError
	var after *RetryAfterError
	switch {
	case errors.As(cause, &perm), errors.Is(cause, wire.ErrMalformed):
		// A record that is not an event fails the same way every time:
		// its bytes are re-published only by a manual retry.
		e.Permanent = true
		e.Status, e.NextRetryAt = StatusMaxRetriesExceeded, nil
	case e.RetryCount >= e.MaxRetries:
		e.Status, e.NextRetryAt = StatusMaxRetriesExceeded, nil
	case errors.As(cause, &after):
		next := now.Add(after.Delay)
		e.Status, e.NextRetryAt = StatusPending, &next
	default:
		next := now.Add(q.cfg.backoff(e.RetryCount))
		e.Status, e.NextRetryAt = StatusPending, &next
	}
}

// sendRetry marks the entry as retrying and re-publishes its event to its
// topic with the retry headers, so that only its group handles it.
func (q *DeadLetterQueue) sendRetry(ctx context.Context, e FailedEvent, manual bool) (err error) {
	// The retry belongs to the original event's trace.
	rec := &kgo.Record{Key: e.OriginalKey, Headers: make([]kgo.RecordHeader, 0, len(e.OriginalHeaders)+5)}
	for _, h := range e.OriginalHeaders {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
	}
	ctx, span := q.bus.tracing.startInternal(q.bus.tracing.extract(ctx, rec), "dlq retry "+e.OriginalTopic,
		attribute.String("plexica.dlq_id", e.ID), attribute.String("messaging.consumer.group.name", e.ConsumerGroup),
		attribute.Bool("plexica.manual", manual), attribute.Int("plexica.retry_attempt", e.RetryCount+1))
	defer func() { endSpan(span, err) }()
	now := q.now().UTC()
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
	written, err := q.write(ctx, &e, false)
	if err != nil {
		return err
	}
	value := retryValue(e)
	q.bus.tracing.inject(ctx, rec)
	rec.Headers = append(rec.Headers,
		kgo.RecordHeader{Key: HeaderDLQID, Value: []byte(e.ID)},
		kgo.RecordHeader{Key: HeaderRetryGroup, Value: []byte(e.ConsumerGroup)},
		kgo.RecordHeader{Key: HeaderRetryAttempt, Value: []byte(fmt.Sprint(e.RetryCount))},
	)
	producer, err := q.bus.producer("")
	if err != nil {
		return err
	}
	// The target topic is ensured as Publish ensures its topics: a retry to
	// a topic that is gone would otherwise wait out the delivery timeout.
	target := retryTopicFor(e.ConsumerGroup, e.OriginalTopic)
	if err := q.bus.client.topics.EnsureTopic(ctx, target); err != nil {
		return fmt.Errorf("send retry of %s: %w", e.ID, err)
	}
	if len(q.cfg.SigningKey) > 0 {
		rec.Headers = append(rec.Headers, q.signRetry(target, e, value)...)
	} else {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderDLQPosition, Value: []byte(fmt.Sprintf("%d:%d", written.Partition, written.Offset))})
	}
	rec.Topic, rec.Value = target, value
	if err := q.bus.produce(ctx, []prepared{{record: rec, producer: producer}}, nil); err != nil {
		return fmt.Errorf("send retry of %s to %s: %w", e.ID, target, err)
	}
	q.bus.cfg.Metrics.observeRetrySent(e.OriginalTopic, manual)
	return nil
}

// retryValue is the record value a retry of e carries: the original
// record's (a malformed record's bytes are kept as a JSON string).
func retryValue(e FailedEvent) []byte {
	var s string
	if json.Unmarshal(e.OriginalEvent, &s) == nil {
		return []byte(s)
	}
	return []byte(e.OriginalEvent)
}

// write stores an entry (or its tombstone) on its DLQ topic and applies it
// to the local view once the broker acknowledged it. It returns the record
// written, which holds its partition and offset.
func (q *DeadLetterQueue) write(ctx context.Context, e *FailedEvent, tombstone bool) (rec *kgo.Record, err error) {
	topic := dlqTopicFor(e.ConsumerGroup, e.OriginalTopic)
	ctx, span := q.bus.tracing.startInternal(ctx, "dlq write "+topic,
		attribute.String("plexica.dlq_id", e.ID), attribute.String("plexica.dlq_status", string(e.Status)),
		attribute.Bool("plexica.tombstone", tombstone))
	defer func() { endSpan(span, err) }()
	if err := q.bus.client.topics.EnsureTopic(ctx, topic, WithTopicConfig("cleanup.policy", q.cfg.TopicCleanupPolicy)); err != nil {
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
func (q *DeadLetterQueue) produceEntryRecord(ctx context.Context, rec *kgo.Record, id string) error {
	producer, err := q.bus.producer("")
	if err != nil {
		return err
	}
	if err := q.bus.produce(ctx, []prepared{{record: rec, producer: producer}}, nil); err != nil {
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
func (q *DeadLetterQueue) noticeTopic() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.view != nil {
		q.view.cl.ForceMetadataRefresh()
	}
	if q.sched != nil {
		q.sched.cl.ForceMetadataRefresh()
	}
}

// retryClaim is a record's retry headers once checked against the entry
// they name (see verifyRetry).
type retryClaim struct {
	id      string // the dead-letter entry
	group   string // the consumer group the retry is for
	attempt int
	// outstanding: the entry still waits for this attempt (no newer
	// version of it exists). Only then may the group's handling change the
	// entry; a retry already answered (or headers replayed by another
	// writer) is an ordinary event to that group.
	outstanding bool
	// entry is the entry as the retry's sender wrote it.
	entry *FailedEvent
	// at is where that version lies (unsigned retries): the outcome is
	// checked against it again just before it is written.
	at *dlqindex.Position
	// seen is the offset of the newest version of the entry the last check
	// saw (at's, or a later copy of it).
	seen int64
}

// maxOutstandingScan bounds how much of a DLQ partition is read after a
// retry's entry to learn whether a newer version of it was written.
const maxOutstandingScan = 8 << 20

// verifyRetry checks the retry headers of r (dlq-id, retry-group,
// retry-attempt) against the entry they name: one with that ID, on r's
// topic, for r's event and value, of the group they name, sent as that
// attempt. Other groups skip such a retry; the named group lets it change
// the entry only while that attempt is outstanding (claim.outstanding).
// Anything else, such as headers that some writer to the topic set itself,
// leaves the record an ordinary event that changes no entry. topic is the
// topic the retry is for: r's own, or the one a plugin's retry topic
// stands for. For a reader of another group than the retry's, whether the
// attempt is outstanding does not matter (it skips the retry either way)
// and is not looked up.
//
// With a signing key the record carries the entry and its signature
// (dlq_signing.go). Without one it carries where the entry version it was
// sent as lies (dlq-position): the subscriber reads that record, and the
// ones after it for a newer version, from the entry's dlq.* topic, whose
// name it derives itself: nobody but the writers of that topic can place
// an entry there.
func (q *DeadLetterQueue) verifyRetry(ctx context.Context, r *kgo.Record, topic, readerGroup string) (retryClaim, bool) {
	id, hasID := wire.HeaderValue(r.Headers, HeaderDLQID)
	group, hasGroup := wire.HeaderValue(r.Headers, HeaderRetryGroup)
	a, hasAttempt := wire.HeaderValue(r.Headers, HeaderRetryAttempt)
	attempt, err := strconv.Atoi(string(a))
	if !hasID || !hasGroup || !hasAttempt || err != nil || attempt < 1 {
		return retryClaim{}, false
	}
	if len(q.cfg.SigningKey) > 0 {
		return q.verifySigned(r, topic, id, group, attempt)
	}
	pos, _ := wire.HeaderValue(r.Headers, HeaderDLQPosition)
	ps, os, ok := strings.Cut(string(pos), ":")
	partition, perr := strconv.ParseInt(ps, 10, 32)
	offset, oerr := strconv.ParseInt(os, 10, 64)
	if !ok || perr != nil || oerr != nil || partition < 0 || offset < 0 {
		return retryClaim{}, false
	}
	reader, err := q.recordReader()
	if err != nil {
		return retryClaim{}, false
	}
	dlqTopic := dlqTopicFor(string(group), topic)
	got, err := reader.Read(ctx, dlqTopic, int32(partition), []int64{offset})
	rec := got[offset]
	if err != nil || rec == nil || string(rec.Key) != string(id) || rec.Value == nil {
		return retryClaim{}, false
	}
	var e FailedEvent
	if json.Unmarshal(rec.Value, &e) != nil || e.ID != string(id) || e.Origin != "" || e.OriginalTopic != topic ||
		retryTopicFor(e.ConsumerGroup, e.OriginalTopic) != r.Topic || e.ConsumerGroup != string(group) ||
		e.EventID != eventIDOf(r) || e.RetryCount != attempt || e.Status != StatusRetrying || !bytes.Equal(retryValue(e), r.Value) {
		return retryClaim{}, false
	}
	if e.ConsumerGroup != readerGroup {
		return retryClaim{id: e.ID, group: e.ConsumerGroup, attempt: attempt}, true
	}
	at := &dlqindex.Position{Topic: dlqTopic, Partition: int32(partition), Offset: offset}
	claim := retryClaim{id: e.ID, group: e.ConsumerGroup, attempt: attempt, entry: &e, at: at}
	claim.outstanding = q.awaits(ctx, &claim)
	return claim, true
}

// newest returns the newest record of entry id after position from on its
// partition (nil when there is none), and whether the read reached the
// partition's end (within maxOutstandingScan).
func (q *DeadLetterQueue) newest(ctx context.Context, id string, from dlqindex.Position, until int64) (*kgo.Record, bool) {
	reader, err := q.recordReader()
	if err != nil {
		return nil, false
	}
	var last *kgo.Record
	complete, err := reader.Scan(ctx, from.Topic, from.Partition, from.Offset+1, maxOutstandingScan, func(r *kgo.Record) bool {
		if until >= 0 && r.Offset >= until {
			return false
		}
		if string(r.Key) == id {
			last = r
		}
		return true
	})
	return last, err == nil && (complete || until >= 0)
}

// awaits reports whether the claim's entry still waits for its attempt:
// its newest version is a retrying one of that attempt (the version the
// retry was sent as, or a copy of it). A retry already answered, retried
// again, deleted, or replayed by another writer awaits nothing.
func (q *DeadLetterQueue) awaits(ctx context.Context, claim *retryClaim) bool {
	if claim.at == nil {
		return true // a signed retry: checked by its signature alone
	}
	last, complete := q.newest(ctx, claim.id, *claim.at, -1)
	if !complete {
		return false
	}
	if last == nil {
		claim.seen = claim.at.Offset
		return true
	}
	claim.seen = last.Offset
	var e FailedEvent
	if last.Value == nil || json.Unmarshal(last.Value, &e) != nil {
		return false
	}
	return e.ID == claim.id && e.Status == StatusRetrying && e.RetryCount == claim.attempt
}

// stillOutstanding checks, just before a retry's outcome is written, that
// its entry has not moved on while the handler ran (another retry sent,
// the entry deleted): the outcome of a superseded retry is dropped, since
// writing it would erase the newer version.
func (q *DeadLetterQueue) stillOutstanding(ctx context.Context, claim *retryClaim) bool {
	if q.awaits(ctx, claim) {
		return true
	}
	q.logger.Warn("eventbus: a retry's entry moved on while the retry was handled; its outcome is left to the newer attempt",
		"dlq_id", claim.id, "attempt", claim.attempt)
	return false
}

// writeOutcome writes a retry's outcome, e. Another writer (an operator's
// retry, say) may have written the entry between the check that the retry
// is still outstanding and this write, which then erased that version: it
// is written again, after ours, so that the newer attempt stands.
func (q *DeadLetterQueue) writeOutcome(ctx context.Context, claim *retryClaim, e *FailedEvent) error {
	if q.testHookBeforeOutcome != nil {
		q.testHookBeforeOutcome()
	}
	written, err := q.write(ctx, e, false)
	if err != nil || claim.at == nil {
		return err
	}
	from := *claim.at
	from.Offset = claim.seen
	between, _ := q.newest(ctx, claim.id, from, written.Offset)
	if between == nil {
		return nil
	}
	q.logger.Warn("eventbus: a retry's outcome crossed a newer write of its entry; the newer version is written again",
		"dlq_id", claim.id, "attempt", claim.attempt)
	again := &kgo.Record{Topic: between.Topic, Key: between.Key, Value: between.Value}
	return q.produceEntryRecord(ctx, again, claim.id)
}

// recordFailure stores that group failed r: the next step of the entry a
// verified retry (claim non-nil) came from, or else a new entry (which
// replaces an earlier entry of the same group and event, if any).
func (q *DeadLetterQueue) recordFailure(ctx context.Context, r *kgo.Record, group, eventID string, claim *retryClaim, cause error) error {
	var e FailedEvent
	if claim != nil && claim.entry != nil {
		if !q.stillOutstanding(ctx, claim) {
			return nil
		}
		e = *claim.entry
		e.RetryCount = max(e.RetryCount, claim.attempt)
	} else {
		e = *q.newEntry(r, group, eventID)
	}
	e.SchedulerGroup = q.cfg.SchedulerGroup
	q.applyFailure(&e, cause, q.now().UTC())
	if claim != nil && claim.entry != nil {
		return q.writeOutcome(ctx, claim, &e)
	}
	_, err := q.write(ctx, &e, false)
	return err
}

// resolve marks the entry a successful verified retry came from as
// resolved.
func (q *DeadLetterQueue) resolve(ctx context.Context, claim retryClaim) error {
	if claim.entry == nil || !q.stillOutstanding(ctx, &claim) {
		return nil
	}
	e := *claim.entry
	now := q.now().UTC()
	e.Status, e.NextRetryAt, e.ResolvedAt, e.UpdatedAt = StatusResolved, nil, &now, now
	e.Attempts = append(e.Attempts, Attempt{At: now, Kind: "resolved"})
	return q.writeOutcome(ctx, &claim, &e)
}
