// Package tracing starts the bus's OpenTelemetry spans and carries their
// context in W3C trace-context record headers (traceparent, tracestate),
// so that one trace spans publish → handle → dead letter → retry, across
// processes. A nil *Tracer (no tracer provider configured) does nothing.
package tracing

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/plexica/eventbus/wire"
)

// Tracer starts spans for records and carries their context in the
// records' headers.
type Tracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// New returns the tracer of tp, or nil (tracing off) when tp is nil.
func New(tp trace.TracerProvider) *Tracer {
	if tp == nil {
		return nil
	}
	return &Tracer{
		tracer: tp.Tracer("github.com/plexica/eventbus"),
		prop:   propagation.TraceContext{},
	}
}

// eventAttributes are the span attributes of one record.
func eventAttributes(r *kgo.Record) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.destination.name", r.Topic),
	}
	for _, h := range r.Headers {
		switch h.Key {
		case wire.HeaderEventID:
			attrs = append(attrs, attribute.String("messaging.message.id", string(h.Value)))
		case wire.HeaderCorrelationID:
			attrs = append(attrs, attribute.String("plexica.correlation_id", string(h.Value)))
		}
	}
	return attrs
}

// StartPublish starts a producer span for r and writes its context into
// r's headers.
func (t *Tracer) StartPublish(ctx context.Context, r *kgo.Record, causationID string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	attrs := eventAttributes(r)
	if causationID != "" {
		attrs = append(attrs, attribute.String("plexica.causation_id", causationID))
	}
	ctx, span := t.tracer.Start(ctx, "publish "+r.Topic,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	t.prop.Inject(ctx, kotel.NewRecordCarrier(r))
	return ctx, span
}

// StartProcess starts a consumer span for r, a child of the span whose
// context r's headers carry.
func (t *Tracer) StartProcess(ctx context.Context, r *kgo.Record, group string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	ctx = t.prop.Extract(ctx, kotel.NewRecordCarrier(r))
	attrs := append(eventAttributes(r),
		attribute.String("messaging.consumer.group.name", group),
		attribute.Int("messaging.destination.partition.id", int(r.Partition)),
		attribute.Int64("messaging.kafka.offset", r.Offset))
	if a, ok := wire.HeaderValue(r.Headers, wire.HeaderRetryAttempt); ok {
		n, _ := strconv.Atoi(string(a))
		attrs = append(attrs, attribute.Int("plexica.retry_attempt", n))
	}
	return t.tracer.Start(ctx, "process "+r.Topic,
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
}

// StartInternal starts an internal span (dead-letter writes and retries).
func (t *Tracer) StartInternal(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	return t.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// Extract returns ctx with the span context carried by r's headers.
func (t *Tracer) Extract(ctx context.Context, r *kgo.Record) context.Context {
	if t == nil {
		return ctx
	}
	return t.prop.Extract(ctx, kotel.NewRecordCarrier(r))
}

// Inject writes ctx's span context into r's headers.
func (t *Tracer) Inject(ctx context.Context, r *kgo.Record) {
	if t != nil {
		t.prop.Inject(ctx, kotel.NewRecordCarrier(r))
	}
}

// End ends a span (nil-safe), recording err.
func End(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
