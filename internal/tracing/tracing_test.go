package tracing

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// A record carries the span context it was injected with, to whoever
// extracts it, in its traceparent header.
func TestContextTravelsInRecordHeaders(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
	tr := New(noop.NewTracerProvider())
	r := &kgo.Record{Topic: "core.user.created"}
	tr.Inject(trace.ContextWithSpanContext(context.Background(), sc), r)
	if len(r.Headers) == 0 || r.Headers[0].Key != "traceparent" {
		t.Fatalf("headers after Inject: %v", r.Headers)
	}
	got := trace.SpanContextFromContext(tr.Extract(context.Background(), r))
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsRemote() {
		t.Fatalf("extracted %v, injected %v", got, sc)
	}
}

// Without a tracer provider every call does nothing.
func TestNilTracerDoesNothing(t *testing.T) {
	tr := New(nil)
	if tr != nil {
		t.Fatal("New(nil) is not nil")
	}
	r := &kgo.Record{Topic: "core.user.created"}
	ctx := context.Background()
	if c, span := tr.StartPublish(ctx, r, ""); c != ctx || span != nil {
		t.Fatal("StartPublish on a nil tracer started a span")
	}
	if c, span := tr.StartProcess(ctx, r, "g"); c != ctx || span != nil {
		t.Fatal("StartProcess on a nil tracer started a span")
	}
	if c, span := tr.StartInternal(ctx, "x"); c != ctx || span != nil {
		t.Fatal("StartInternal on a nil tracer started a span")
	}
	tr.Inject(ctx, r)
	if len(r.Headers) != 0 || tr.Extract(ctx, r) != ctx {
		t.Fatal("a nil tracer touched the record or the context")
	}
	End(nil, errors.New("ignored"))
}
