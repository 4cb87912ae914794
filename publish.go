package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/plexica/eventbus/internal/tracing"
	"github.com/plexica/eventbus/topic"
	"github.com/plexica/eventbus/wire"
)

// PublishOption changes how one event is published.
type PublishOption func(*publishOptions)

type publishOptions struct {
	key         []byte
	keySet      bool
	headers     []kgo.RecordHeader
	compression Compression
	eventID     string
	timestamp   time.Time
}

// WithPartitionKey sets the record key, which picks the partition (Kafka's
// murmur2, as Java and KafkaJS clients use). Default: the tenant ID, so each
// tenant's events keep their order.
func WithPartitionKey(key string) PublishOption {
	return func(o *publishOptions) { o.key, o.keySet = []byte(key), true }
}

// WithHeader adds a record header after the bus's own. A header may not
// replace one the bus writes (event-id, event-type, tenant-id, workspace-id,
// correlation-id, timestamp).
//
// The dead letter queue's retry headers (dlq-id, retry-group,
// retry-attempt, dlq-entry, dlq-signature, dlq-position) are refused with
// ErrInvalidEvent.
func WithHeader(key, value string) PublishOption {
	return func(o *publishOptions) {
		o.headers = append(o.headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
	}
}

// WithCompression picks the codec for this event (default: Config.Compression).
func WithCompression(c Compression) PublishOption {
	return func(o *publishOptions) { o.compression = c }
}

// WithEventID sets the event ID instead of a new UUIDv7, for example to
// republish an event under its own ID.
func WithEventID(id string) PublishOption {
	return func(o *publishOptions) { o.eventID = id }
}

// WithTimestamp sets the event's timestamp instead of now: any time in
// years 0000-9999 (UTC), so events can be replayed under their original
// time; others fail with ErrInvalidEvent. The Kafka record itself carries
// the send time, which brokers use for retention.
func WithTimestamp(t time.Time) PublishOption {
	return func(o *publishOptions) { o.timestamp = t }
}

// Publish publishes one event of type eventType (which is also its topic)
// with data encoded as JSON, and returns its ID once the broker acknowledged
// it. Bad input fails before anything is sent, wrapping ErrInvalidTopic,
// ErrTenantRequired, ErrEventTooLarge or ErrInvalidEvent; an open circuit
// breaker fails fast with ErrCircuitOpen. When the brokers do not
// acknowledge within Config.DeliveryTimeout (or cannot create the topic
// within it, the first time the bus publishes to it) the error wraps
// ErrBrokerUnavailable; a broker's rejection of the event itself wraps
// ErrEventTooLarge or ErrInvalidEvent. When ctx ends first the error wraps
// ctx's error instead; the event may still be written, but ctx's end
// never fails other callers' events.
func (b *Bus) Publish(ctx context.Context, eventType string, data any, meta PublishMetadata, opts ...PublishOption) (string, error) {
	if err := b.enterPublish(ctx); err != nil {
		return "", err
	}
	defer b.leavePublish()
	p, err := b.prepare(eventType, data, meta, opts)
	if err != nil {
		return "", err
	}
	start := time.Now()
	ctx, span := b.tracer.StartPublish(ctx, p.record, p.causationID)
	if err := b.checkTracedSize(p.record); err != nil {
		tracing.End(span, err)
		return "", err
	}
	err = b.breaker.run(func() error {
		if err := callerEnded(ctx); err != nil {
			return err
		}
		if err := b.ensureTopics(ctx, eventType); err != nil {
			return err
		}
		return b.produce(ctx, []prepared{p}, nil)
	})
	tracing.End(span, err)
	b.cfg.Metrics.observePublish(eventType, 1, start, err)
	if err != nil {
		if isUnknownTopic(err) {
			b.topicGone(eventType)
		}
		return "", b.publishError(eventType, err)
	}
	return p.id, nil
}

// PublishAsync validates and encodes an event as Publish does, hands it to
// the producer and returns without waiting for the broker: done is called
// once, from the producer's goroutine, with the event's ID and nil when the
// broker acknowledged it or the error when it did not. Use it to keep many
// events in flight from one goroutine; done must not block.
//
// Bad input (and an open breaker, or a shutdown) is returned at once and
// done is not called. The first event of a topic waits for the topic to be
// ensured, bounded by ctx and Config.DeliveryTimeout. Once handed to the
// producer the event is bounded by Config.DeliveryTimeout, not by ctx:
// cancelling an event in flight would fail the events of its partition
// behind it.
func (b *Bus) PublishAsync(ctx context.Context, eventType string, data any, meta PublishMetadata, done func(id string, err error), opts ...PublishOption) error {
	if done == nil {
		return fmt.Errorf("%w: PublishAsync needs a done callback (use Publish to wait instead)", ErrInvalidConfig)
	}
	if err := b.enterPublish(ctx); err != nil {
		return err
	}
	defer b.leavePublish()
	p, err := b.prepare(eventType, data, meta, opts)
	if err != nil {
		return err
	}
	start := time.Now()
	// The producer's own record delivery timeout (Config.DeliveryTimeout)
	// bounds the wait; no timer per event.
	ctx, span := b.tracer.StartPublish(ctx, p.record, p.causationID)
	fail := func(err error) error {
		tracing.End(span, err)
		return err
	}
	if err := b.checkTracedSize(p.record); err != nil {
		return fail(err)
	}
	report, err := b.breaker.allow()
	if err != nil {
		return fail(err)
	}
	if err := callerEnded(ctx); err != nil {
		report(err)
		return fail(err)
	}
	if err := b.ensureTopics(ctx, eventType); err != nil {
		report(err)
		return fail(b.publishError(eventType, err))
	}
	// The event does not carry ctx's cancellation (see produce).
	timedOut, own := b.deliveryTimedOut(), context.WithoutCancel(ctx)
	p.producer.Produce(own, p.record, func(_ *kgo.Record, err error) {
		err = deliveryError(own, own, err, timedOut) // ctx no longer matters
		report(err)
		tracing.End(span, err)
		b.cfg.Metrics.observePublish(eventType, 1, start, err)
		if err != nil {
			if isUnknownTopic(err) {
				go b.topicGone(eventType)
			}
			err = b.publishError(eventType, err)
		}
		done(p.id, err)
	})
	return nil
}

// Publish publishes data, of the type its name carries (see Name), as the
// event name on target (a *Bus, a *PluginClient or a *PluginHost), and
// returns the event ID once the brokers acknowledged it:
//
//	ctx = eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: "acme"})
//	id, err := eventbus.Publish(ctx, bus, catalog.UserCreated, catalog.UserCreatedData{...})
//
// The metadata comes from the event context of ctx on every target (see
// Event context in the package documentation; in a handler it is the event
// being handled). On a Bus name is the topic and the context must name a
// tenant (ErrTenantRequired). On a PluginClient name is one of the plugin's
// own events, resolved as Subscribe resolves names ("contact.created" and
// "plugin.<id>.contact.created" are plugin.<id>.contact.created), published
// for the client's tenant; a context of another tenant or workspace, or a
// core.*, dlq.* or another plugin's name, fails with ErrPluginScope. On a
// PluginHost it is the same, for the tenant of the context, which the host
// must serve (ErrTenantRequired, ErrPluginScope). Delivery, sizes and
// failures are as for Bus.Publish, the untyped form with explicit
// metadata that relays use.
func Publish[T any](ctx context.Context, target Publisher, name Name[T], data T, opts ...PublishOption) (string, error) {
	if target == nil {
		return "", fmt.Errorf("%w: Publish(%q) needs a target (a *Bus, *PluginClient or *PluginHost)", ErrInvalidConfig, string(name))
	}
	bus, topic, meta, err := target.resolvePublish(ctx, string(name))
	if err != nil {
		return "", err
	}
	return bus.Publish(ctx, topic, data, meta, opts...)
}

// BatchEvent is one event of a PublishBatch.
type BatchEvent struct {
	EventType string
	Data      any
	Metadata  PublishMetadata
	Options   []PublishOption
}

// PublishResult is the outcome of one event of a batch.
type PublishResult struct {
	// EventID is the event's ID (set even when publishing it failed).
	EventID string
	// Err is nil when the broker acknowledged the event.
	Err error
}

// BatchError reports the events of a batch that the broker did not
// acknowledge. errors.Is finds the causes through it.
type BatchError struct {
	Failed, Total int
	Results       []PublishResult
}

func (e *BatchError) Error() string {
	first := ""
	for i, r := range e.Results {
		if r.Err != nil {
			first = fmt.Sprintf("; first: event %d: %v", i, r.Err)
			break
		}
	}
	return fmt.Sprintf("%d of %d events were not published%s", e.Failed, e.Total, first)
}

// Unwrap returns each failed event's error.
func (e *BatchError) Unwrap() []error {
	var errs []error
	for _, r := range e.Results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errs
}

// enterBatch starts a batch of n events: more than MaxBatchSize fail with
// ErrBatchTooLarge, an empty batch has nothing to do (false, nil), and
// otherwise the publish gate is entered (true; the caller defers
// leavePublish).
func (b *Bus) enterBatch(ctx context.Context, n int) (bool, error) {
	if n > MaxBatchSize {
		return false, fmt.Errorf("%w: %d events given, at most %d per batch; split it into several calls",
			ErrBatchTooLarge, n, MaxBatchSize)
	}
	if n == 0 {
		return false, nil
	}
	if err := b.enterPublish(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// PublishBatch publishes up to MaxBatchSize events. Every event is validated
// before any is sent: one bad event fails the whole call with nothing sent,
// and the error names its index. Otherwise all are sent together and the
// call returns when each was acknowledged or failed; results[i] is event i's
// outcome, and a non-nil error (a *BatchError) says how many failed.
func (b *Bus) PublishBatch(ctx context.Context, events []BatchEvent) ([]PublishResult, error) {
	if ok, err := b.enterBatch(ctx, len(events)); !ok {
		return nil, err
	}
	defer b.leavePublish()
	prepared := make([]prepared, len(events))
	topics := make([]string, 0, 1)
	for i, ev := range events {
		p, err := b.prepare(ev.EventType, ev.Data, ev.Metadata, ev.Options)
		if err != nil {
			return nil, fmt.Errorf("batch event %d of %d (nothing was sent): %w", i, len(events), err)
		}
		prepared[i] = p
		if !slices.Contains(topics, ev.EventType) {
			topics = append(topics, ev.EventType)
		}
	}
	return b.publishPrepared(ctx, prepared, topics)
}

// publishPrepared sends a batch of validated events (of topics) through the
// breaker, as PublishBatch documents.
func (b *Bus) publishPrepared(ctx context.Context, prepared []prepared, topics []string) ([]PublishResult, error) {
	if err := keyOrderKept(prepared); err != nil {
		return nil, err
	}
	spans := make([]trace.Span, len(prepared))
	for i := range prepared {
		_, spans[i] = b.tracer.StartPublish(ctx, prepared[i].record, prepared[i].causationID)
	}
	for i := range prepared {
		if err := b.checkTracedSize(prepared[i].record); err != nil {
			for _, span := range spans {
				tracing.End(span, err)
			}
			return nil, fmt.Errorf("batch event %d of %d (nothing was sent): %w", i, len(prepared), err)
		}
	}
	results := make([]PublishResult, len(prepared))
	for i := range prepared {
		results[i].EventID = prepared[i].id
	}
	failed := 0
	start := time.Now()
	defer func() {
		for i := range results {
			tracing.End(spans[i], results[i].Err)
			b.cfg.Metrics.observePublish(prepared[i].record.Topic, 1, start, results[i].Err)
		}
	}()
	err := b.breaker.run(func() error {
		err := callerEnded(ctx)
		if err == nil {
			err = b.ensureTopics(ctx, topics...)
		}
		if err != nil {
			for i := range results {
				results[i].Err = err
			}
			failed = len(results)
			return err
		}
		errs := make([]error, len(prepared))
		_ = b.produce(ctx, prepared, errs) // each event's outcome is in errs
		for i := range results {
			results[i].Err = errs[i]
		}
		var firstErr error
		var gone []string // topics found deleted
		for i := range results {
			if results[i].Err != nil {
				if isUnknownTopic(results[i].Err) && !slices.Contains(gone, prepared[i].record.Topic) {
					gone = append(gone, prepared[i].record.Topic)
					b.topicGone(prepared[i].record.Topic)
				}
				results[i].Err = b.publishError(prepared[i].record.Topic, results[i].Err)
				failed++
				// The breaker hears of the cluster's unavailability if
				// any event met it.
				if firstErr == nil || (!errors.Is(firstErr, ErrBrokerUnavailable) && errors.Is(results[i].Err, ErrBrokerUnavailable)) {
					firstErr = results[i].Err
				}
			}
		}
		return firstErr
	})
	if failed > 0 {
		return results, &BatchError{Failed: failed, Total: len(prepared), Results: results}
	}
	if err != nil { // the breaker refused the whole batch
		for i := range results {
			results[i].Err = err
		}
		return results, &BatchError{Failed: len(prepared), Total: len(prepared), Results: results}
	}
	return results, nil
}

// produce sends records and waits until the broker acknowledged each, or
// until ctx or Config.DeliveryTimeout ends. errs, when not nil, receives
// each record's own outcome; the return value is the first failure, or
// the deadline's error when waiting stopped early.
//
// The records do not carry the caller's cancellation, only the delivery
// timeout: franz-go fails the records buffered behind a cancelled
// in-flight record of the same partition with that record's context
// error, so one caller's deadline would fail other callers' events. A
// caller whose ctx ends stops waiting; its records stay in the producer
// until acknowledged or timed out, and may still be written.
func (b *Bus) produce(parent context.Context, ps []prepared, errs []error) error {
	timedOut := b.deliveryTimedOut()
	ctx, cancel := context.WithTimeoutCause(context.WithoutCancel(parent), b.cfg.DeliveryTimeout, timedOut)
	var mu sync.Mutex
	var first error
	left, abandoned := len(ps), false
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		if left == 0 {
			cancel()
		} // else the last outcome cancels: cancelling now would fail the records
	}()
	finished := make([]bool, len(ps))
	done := make(chan struct{})
	for i := range ps {
		ps[i].producer.Produce(ctx, ps[i].record, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if left--; left == 0 {
				cancel() // every record has its outcome: release the timer
			}
			if err == nil {
				b.breaker.delivered() // the cluster takes writes
			}
			if abandoned {
				return
			}
			finished[i] = true
			err = deliveryError(parent, ctx, err, timedOut)
			if errs != nil {
				errs[i] = err
			}
			if err != nil && first == nil {
				first = err
			}
			if left == 0 {
				close(done)
			}
		})
	}
	var stopped context.Context
	select {
	case <-done:
		return first
	case <-ctx.Done():
		stopped = ctx
	case <-parent.Done():
		stopped = parent
	}
	mu.Lock()
	defer mu.Unlock()
	if left == 0 {
		// Every record's outcome arrived as the wait ended: the outcomes,
		// not the deadline, say what happened.
		return first
	}
	abandoned = true
	err := deliveryError(parent, ctx, context.Cause(stopped), timedOut)
	for i := range errs {
		if !finished[i] {
			errs[i] = err
		}
	}
	return err
}

// deliveryTimedOut is the error of a publish that the brokers did not
// acknowledge within Config.DeliveryTimeout.
func (b *Bus) deliveryTimedOut() error {
	return fmt.Errorf("%w: the brokers did not acknowledge within Config.DeliveryTimeout (%s)", ErrBrokerUnavailable, b.cfg.DeliveryTimeout)
}

// deliveryError says why a record was not acknowledged, so that errors.Is
// tells the caller's own context (context.DeadlineExceeded or Canceled)
// from brokers that did not answer in time or cannot take writes
// (ErrBrokerUnavailable), and a broker's rejection of the event itself
// (ErrEventTooLarge, ErrInvalidEvent). Only ErrBrokerUnavailable counts
// toward the breaker. own is the context the record was produced with
// (its cause is timedOut when the delivery timeout ended it).
func deliveryError(caller, own context.Context, err, timedOut error) error {
	switch {
	case err == nil:
		return nil
	case caller.Err() != nil:
		return fmt.Errorf("the broker had not acknowledged when the caller's context ended (the event may still be written): %w", context.Cause(caller))
	case errors.Is(err, ErrBrokerUnavailable):
		return err
	case errors.Is(err, kgo.ErrRecordTimeout), errors.Is(context.Cause(own), timedOut):
		return fmt.Errorf("%w (%v)", timedOut, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// Not this record's deadline: franz-go failed it together with
		// an earlier record of its partition whose context ended.
		return fmt.Errorf("the producer failed the event together with an earlier event of its partition that was cancelled or timed out "+
			"(not this event's deadline); publish it again: %v", err)
	}
	if rejected := rejectedEvent(err); rejected != nil {
		return rejected
	}
	if isUnavailable(err) {
		return fmt.Errorf("%w: %w", ErrBrokerUnavailable, err)
	}
	return err
}

// callerEnded returns an error when ctx ended before anything was sent.
func callerEnded(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("the caller's context had ended before the event was sent (nothing was sent): %w", context.Cause(ctx))
}

// Publish gate states: open to every publish, draining (Shutdown waits for
// running handlers, which may still publish), closed.
const (
	gateOpen int32 = iota
	gateDraining
	gateClosed
)

type handlerKey struct{}

// handlerContext marks ctx as a running handler's of this bus: its
// publishes are let through while Shutdown drains the handlers.
func (b *Bus) handlerContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, handlerKey{}, b)
}

// enterPublish counts a publish in unless the bus is shutting down: once
// Shutdown began, only the bus's running handlers (see handlerContext)
// may publish, until it stopped waiting for them. leavePublish must follow.
func (b *Bus) enterPublish(ctx context.Context) error {
	b.inflight.Add(1)
	switch b.gate.Load() {
	case gateOpen:
		return nil
	case gateDraining:
		if by, _ := ctx.Value(handlerKey{}).(*Bus); by == b {
			return nil
		}
	}
	b.leavePublish()
	return shuttingDown()
}

// leavePublish counts a publish out, waking Shutdown when it was the last.
func (b *Bus) leavePublish() {
	if b.inflight.Add(-1) == 0 && b.gate.Load() == gateClosed {
		select {
		case b.idle <- struct{}{}:
		default:
		}
	}
}

// waitPublishes waits until no publish is in flight, or ctx ends; it
// returns how many were left.
func (b *Bus) waitPublishes(ctx context.Context) int64 {
	for {
		n := b.inflight.Load()
		if n == 0 {
			return 0
		}
		select {
		case <-b.idle:
		case <-ctx.Done():
			return n
		}
	}
}

func shuttingDown() error {
	return fmt.Errorf("%w: Shutdown was called; publish before shutting down or build a new Bus", ErrShuttingDown)
}

// publishError adds context to a broker-side publish failure.
func (b *Bus) publishError(eventType string, err error) error {
	switch {
	case errors.Is(err, ErrCircuitOpen), isCallerError(err):
		return err
	case errors.Is(err, kgo.ErrClientClosed):
		return fmt.Errorf("%w: publish %s: Shutdown closed the producer before the broker acknowledged the event, "+
			"which may or may not have been written; give Shutdown a context that lasts until in-flight events are acknowledged",
			ErrShuttingDown, eventType)
	}
	return fmt.Errorf("publish %s: %w", eventType, err)
}

// isUnknownTopic reports whether err says the brokers do not know the
// topic: it was deleted while in use (and perhaps created again since).
func isUnknownTopic(err error) bool {
	return errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID)
}

// topicGone makes the next publish to topic check it and create it again,
// and the producers forget what they knew of it: franz-go never adopts the
// ID of a recreated topic until the topic is purged from it. It blocks on
// the producers' metadata loop, so a produce callback runs it on its own
// goroutine.
func (b *Bus) topicGone(topic string) {
	b.client.topics.Forget(topic)
	b.producers.Range(func(_, v any) bool {
		v.(*kgo.Client).PurgeTopicsFromProducing(topic)
		return true
	})
}

func (b *Bus) ensureTopics(ctx context.Context, topics ...string) error {
	if b.cfg.DisableTopicCreation {
		return nil
	}
	for _, t := range topics {
		if err := b.client.topics.Ensure(ctx, t, topic.WithCreationTimeout(b.cfg.DeliveryTimeout)); err != nil {
			return err
		}
	}
	return nil
}

// prepared is an event validated and encoded, ready to send.
type prepared struct {
	id          string
	causationID string
	record      *kgo.Record
	producer    *kgo.Client
}

// prepare validates one event and builds its record; it sends nothing.
func (b *Bus) prepare(eventType string, data any, meta PublishMetadata, opts []PublishOption) (prepared, error) {
	if err := b.client.valid.validate(eventType); err != nil {
		return prepared{}, err
	}
	if strings.HasPrefix(eventType, "dlq.") {
		return prepared{}, fmt.Errorf("%w: %q is a dead-letter topic; the bus writes those itself (publish to %q instead)",
			ErrInvalidTopic, eventType, strings.TrimPrefix(eventType, "dlq."))
	}
	if strings.TrimSpace(meta.TenantID) == "" {
		return prepared{}, fmt.Errorf("%w: event %q has no PublishMetadata.TenantID; every event belongs to a tenant (e.g. TenantID: \"tenant-acme\")",
			ErrTenantRequired, eventType)
	}
	if err := validateScope(meta); err != nil {
		return prepared{}, fmt.Errorf("event %q: %w", eventType, err)
	}
	var o publishOptions
	for _, opt := range opts {
		opt(&o)
	}
	for _, h := range o.headers {
		switch {
		case wire.IsReservedHeader(h.Key):
			return prepared{}, fmt.Errorf("%w: header %q is written by the bus and cannot be set by WithHeader; use another name",
				ErrInvalidEvent, h.Key)
		case wire.IsRetryHeader(h.Key):
			return prepared{}, fmt.Errorf("%w: header %q is the dead letter queue's own (it marks a retry); use another header name, and retry failed events with DeadLetterQueue.Retry",
				ErrInvalidEvent, h.Key)
		}
	}
	producer, err := b.producer(o.compression)
	if err != nil {
		return prepared{}, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	payload, err := encodeData(data)
	if err != nil {
		return prepared{}, fmt.Errorf("%w: data of %q does not encode to JSON: %v", ErrInvalidEvent, eventType, err)
	}
	env := wire.Envelope{
		ID:            o.eventID,
		Type:          eventType,
		TenantID:      meta.TenantID,
		WorkspaceID:   meta.WorkspaceID,
		Timestamp:     o.timestamp,
		Data:          payload,
		Source:        orDefault(meta.Source, b.cfg.Source),
		UserID:        meta.UserID,
		CorrelationID: meta.CorrelationID,
		CausationID:   meta.CausationID,
		Version:       orDefault(meta.Version, "1.0"),
	}
	if env.ID == "" {
		env.ID = newUUID()
	}
	if env.CorrelationID == "" {
		env.CorrelationID = newUUID()
	}
	if env.Timestamp.IsZero() {
		env.Timestamp = time.Now()
	}
	env.Timestamp = env.Timestamp.Truncate(time.Millisecond)
	if !wire.TimeInRange(env.Timestamp) {
		return prepared{}, fmt.Errorf("%w: event %q has timestamp %s, outside years 0000-9999 that the wire format (JavaScript's toISOString) can carry; give a time in that range",
			ErrInvalidEvent, eventType, env.Timestamp.UTC().Format(time.RFC3339))
	}
	headers := wire.AppendHeaders(make([]kgo.RecordHeader, 0, 6+len(o.headers)), &env)
	headers = append(headers, o.headers...)
	key := headers[2].Value // the tenant ID
	if o.keySet {
		key = o.key
	}
	value := wire.Append(make([]byte, 0, wire.Size(&env)), &env)
	// The record's own timestamp is left to the producer (the send time):
	// franz-go starts a record's delivery clock at it, so an event replayed
	// under its original time would otherwise time out at once, and
	// brokers apply time-based retention to it. The event's time travels in
	// its value and timestamp header.
	record := &kgo.Record{Topic: eventType, Key: key, Value: value, Headers: headers}
	// Checked again with the trace context once a span is started.
	if err := b.checkSize(record); err != nil {
		return prepared{}, err
	}
	return prepared{id: env.ID, causationID: env.CausationID, producer: producer, record: record}, nil
}

// recordBatchHeader is the size of a Kafka record batch's header (v2),
// which a broker counts against max.message.bytes.
const recordBatchHeader = 61

// eventWireSize is the size of r as a broker measures it against
// max.message.bytes: a record batch that carries r alone, uncompressed
// (its header, the record's framing, key, value and headers).
func eventWireSize(r *kgo.Record) int {
	l := 1 + 1 + 1 + // attributes, timestamp delta 0, offset delta 0
		kbin.VarintLen(int32(len(r.Key))) + len(r.Key) +
		kbin.VarintLen(int32(len(r.Value))) + len(r.Value) +
		kbin.VarintLen(int32(len(r.Headers)))
	for _, h := range r.Headers {
		l += kbin.VarintLen(int32(len(h.Key))) + len(h.Key) + kbin.VarintLen(int32(len(h.Value))) + len(h.Value)
	}
	return recordBatchHeader + kbin.VarintLen(int32(l)) + l
}

// checkSize checks an event's record, with every header it will be sent
// with (the trace context included), against Config.MaxEventBytes.
func (b *Bus) checkSize(r *kgo.Record) error {
	if size := eventWireSize(r); size > b.cfg.MaxEventBytes {
		return tooLarge(r.Topic, size, b.cfg.MaxEventBytes)
	}
	return nil
}

// checkTracedSize checks r again once tracing added its headers.
func (b *Bus) checkTracedSize(r *kgo.Record) error {
	if b.tracer == nil {
		return nil // prepare checked the record as it is sent
	}
	return b.checkSize(r)
}

func tooLarge(eventType string, size, limit int) error {
	return fmt.Errorf("%w: event %q takes %d bytes on the wire (value, key, headers and their framing in a record batch), over the %d-byte limit (Config.MaxEventBytes); store large payloads elsewhere and publish a reference",
		ErrEventTooLarge, eventType, size, limit)
}

// keyOrderKept refuses a batch that would send events of one topic and key
// through producers of different codecs: each producer has its own
// connection, so their order within the key would not be kept.
func keyOrderKept(ps []prepared) error {
	mixed := false
	for i := range ps {
		if ps[i].producer != ps[0].producer {
			mixed = true
			break
		}
	}
	if !mixed {
		return nil
	}
	type topicKey struct{ topic, key string }
	seen := make(map[topicKey]*kgo.Client, len(ps))
	for i, p := range ps {
		k := topicKey{p.record.Topic, string(p.record.Key)}
		if prev, ok := seen[k]; ok && prev != p.producer {
			return fmt.Errorf("%w: batch event %d of %d (nothing was sent) has another compression than an earlier event of %s with the same key; "+
				"the order within a key holds only within one codec: give events of one key the same WithCompression, or publish them in separate calls",
				ErrInvalidEvent, i, len(ps), p.record.Topic)
		}
		seen[k] = p.producer
	}
	return nil
}

// encodeData encodes an event payload as JSON. Raw JSON is checked, not re-encoded.
func encodeData(data any) (json.RawMessage, error) {
	switch d := data.(type) {
	case nil:
		return json.RawMessage("null"), nil
	case json.RawMessage:
		if !json.Valid(d) {
			return nil, errors.New("json.RawMessage is not valid JSON")
		}
		return d, nil
	}
	return json.Marshal(data)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
