package eventbus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/backoff"
	"github.com/plexica/eventbus/internal/dlq"
	"github.com/plexica/eventbus/internal/tracing"
	"github.com/plexica/eventbus/wire"
)

// This file is what one record means to a subscription: filters, decoding,
// the handler, and the failure policy. The engine (internal/consumer)
// decides when and on which goroutine it runs.

// handleRecord delivers one record to the subscription and reports whether
// it is finished (handled, filtered out, skipped, or its failure stored in
// the dead letter queue) and may be committed. ctx is the handler's
// context; stopping is done once the record's partition is being released,
// when retries give up and the record is left unfinished.
func (s *subscription) handleRecord(ctx, stopping context.Context, r *kgo.Record) bool {
	b := s.bus
	var claim *dlq.Claim
	if s.retryTopic != "" && r.Topic == s.retryTopic {
		// The group's own retry topic (internal/dlq/topics.go): only the
		// dead letter queue's owner writes there, and only this group
		// reads it. Retry headers anywhere else mean nothing.
		c, ok := dlq.ParseRetry(r, s.topic, s.groupID)
		if !ok {
			b.logger.Warn("eventbus: a record on a retry topic is no retry of this group's; skipped",
				"group", s.groupID, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset)
			return true
		}
		claim = &c
	}
	scope := wire.ScopeOf(r.Headers)
	if scope.Known && (!scope.Matches(s.tenantID, s.workspaceID) || (s.accept != nil && !s.accept(scope.TenantID))) {
		return true // another tenant's event: skip without decoding
	}
	ctx, span := b.tracer.StartProcess(ctx, r, s.groupLabel)
	env, err := wire.Decode(r.Value)
	if err == nil {
		// One rule for every subscription (Bus.Subscribe, PluginClient,
		// PluginHost): the headers filtered the record, so an event that
		// claims another tenant or workspace than its headers is not an
		// event of this topic's tenants but a malformed record.
		if why := scope.Mismatch(&env); why != "" {
			err = fmt.Errorf("%w: %s", wire.ErrMalformed, why)
		}
	}
	if err != nil {
		b.cfg.Metrics.observeHandled(s.topic, s.groupLabel, time.Now(), err)
		cause := fmt.Errorf("%s: %w", deadletter.ReasonMalformed, err)
		tracing.End(span, cause)
		if s.delivery.OnFailure == Skip {
			return s.skip(r, wire.EventIDOf(r), cause)
		}
		return s.recordFailure(ctx, stopping, r, wire.EventIDOf(r), claim, cause)
	}
	if (!scope.Known || !scope.WorkspaceKnown) && !matchesFilter(env, s) {
		tracing.End(span, nil)
		return true
	}
	ev := rawEvent(env)
	start := time.Now()
	err = callHandler(ctx, s.handler, ev)
	b.cfg.Metrics.observeHandled(s.topic, s.groupLabel, start, err)
	tracing.End(span, err)
	if err != nil {
		var perm *PermanentError
		switch {
		case s.delivery.OnFailure == Skip:
			return s.skip(r, env.ID, err)
		case s.delivery.OnFailure == RetryInPlace && !errors.As(err, &perm):
			if err = s.retryInPlace(ctx, stopping, r, ev, err); err != nil && !errors.As(err, &perm) {
				return false // released before it succeeded: not committed
			}
		}
		if err != nil {
			return s.recordFailure(ctx, stopping, r, env.ID, claim, err)
		}
	}
	if claim != nil {
		return s.untilStored(ctx, stopping, r, func(ctx context.Context) error { return b.dlq.q.Resolve(ctx, s.groupID, *claim) })
	}
	return true
}

func matchesFilter(env wire.Envelope, s *subscription) bool {
	return (s.tenantID == "" || env.TenantID == s.tenantID) &&
		(s.workspaceID == "" || env.WorkspaceID == s.workspaceID) &&
		(s.accept == nil || s.accept([]byte(env.TenantID)))
}

// skip logs a failure that the subscription's policy lets pass.
func (s *subscription) skip(r *kgo.Record, eventID string, cause error) bool {
	s.bus.logger.Warn("eventbus: handler failed; event skipped (OnFailure: Skip)",
		"group", s.groupID, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "event_id", eventID, "err", cause)
	return true
}

// retryInPlace calls the handler again, backing off, while it fails with
// an error worth retrying. It returns nil once the handler succeeded, the
// Permanent error that ends the retries, or a non-nil error when the
// partition was released first. Only the event's key (or partition, with
// OrderPerPartition) waits meanwhile.
func (s *subscription) retryInPlace(ctx, stopping context.Context, r *kgo.Record, ev RawEvent, err error) error {
	delays := backoff.Delays{Base: s.bus.cfg.Consumer.RetryBackoff, Max: s.bus.cfg.Consumer.MaxRetryBackoff}
	for {
		wait := delays.Next()
		s.bus.logger.Warn("eventbus: handler failed; retrying in place (OnFailure: RetryInPlace)",
			"group", s.groupID, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "event_id", ev.ID, "retry_in", wait, "err", err)
		if !backoff.Sleep(stopping, wait) {
			return stopping.Err()
		}
		start := time.Now()
		err = callHandler(ctx, s.handler, ev)
		s.bus.cfg.Metrics.observeHandled(s.topic, s.groupLabel, start, err)
		var perm *PermanentError
		if err == nil || errors.As(err, &perm) {
			return err
		}
		if stopping.Err() != nil {
			return stopping.Err()
		}
	}
}

// recordFailure stores a failed handling in the dead letter queue (a
// command to the entry's owner); the record may be committed once the
// broker acknowledged that.
func (s *subscription) recordFailure(spanCtx, stopping context.Context, r *kgo.Record, eventID string, claim *dlq.Claim, cause error) bool {
	s.bus.logger.Warn("eventbus: handler failed; event sent to the dead letter queue",
		"group", s.groupID, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "event_id", eventID, "err", cause)
	stored := s.untilStored(spanCtx, stopping, r, func(ctx context.Context) error {
		_, err := s.bus.dlq.q.RecordFailure(ctx, r, s.topic, s.groupID, eventID, claim, failureOf(cause))
		return err
	})
	if stored {
		s.bus.cfg.Metrics.observeDeadLettered(s.topic, s.groupLabel)
	}
	return stored
}

// untilStored runs a dead-letter write until the broker acknowledged it,
// backing off between failures, and reports false when the partition was
// released first (the record is then not committed and comes again). The
// write runs as a child of spanCtx's span, until the release.
func (s *subscription) untilStored(spanCtx, stopping context.Context, r *kgo.Record, write func(context.Context) error) bool {
	ctx := stopping
	if s.bus.tracer != nil {
		ctx = trace.ContextWithSpan(ctx, trace.SpanFromContext(spanCtx))
	}
	delays := backoff.Delays{Base: s.bus.cfg.Consumer.RetryBackoff, Max: s.bus.cfg.Consumer.MaxRetryBackoff}
	for {
		err := write(ctx)
		if err == nil {
			return true
		}
		if stopping.Err() != nil {
			return false
		}
		wait := delays.Next()
		s.bus.logger.Error("eventbus: could not write to the dead letter queue; holding the event's key",
			"group", s.groupID, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "retry_in", wait, "err", err)
		if !backoff.Sleep(stopping, wait) {
			return false
		}
	}
}

// callHandler runs a handler, turning a panic into a *PanicError.
func callHandler(ctx context.Context, h Handler, ev RawEvent) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return h(withIncomingEvent(ctx, ev), ev)
}
