package eventbus_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// One trace spans publish → handle (fails) → dead letter → retry → handle → resolved.
func TestTracingFollowsAnEventThroughTheDLQ(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := fastDLQ()
	cfg.TracerProvider = tp
	bus := startDLQ(t, eventbustest.NewBus(t, cfg))
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	group := eventbustest.UniqueID("billing")
	var calls atomic.Int64
	done := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		if calls.Add(1) == 1 {
			return errors.New("ledger unavailable")
		}
		return done.Handle(ctx, ev)
	}, eventbus.SubscribeOptions{GroupID: group})
	id := eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme", CorrelationID: "corr-42"})
	done.WaitForID(t, id)
	waitEntry(t, bus.DLQ(), eventbus.FailedEventID(group, id), hasStatus(eventbus.StatusResolved))

	var publish sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "publish "+topic {
			publish = s
		}
	}
	if publish == nil {
		t.Fatal("no publish span")
	}
	trace := publish.SpanContext().TraceID()
	names := map[string]int{}
	for _, s := range spans.Ended() {
		if s.SpanContext().TraceID() == trace {
			names[strings.SplitN(s.Name(), " ", 2)[0]+" "+strings.SplitN(s.Name(), " ", 3)[1]]++
		}
	}
	for _, want := range []string{"process " + topic, "dlq write", "dlq retry"} {
		if names[want] == 0 {
			t.Errorf("trace %s lacks a %q span; it has %v", trace, want, names)
		}
	}
	if names["process "+topic] != 2 {
		t.Errorf("trace has %d process spans, want 2 (the failure and the retry)", names["process "+topic])
	}
	found := false
	for _, a := range publish.Attributes() {
		if a.Key == "plexica.correlation_id" && a.Value.AsString() == "corr-42" {
			found = true
		}
	}
	if !found {
		t.Errorf("publish span attributes %v lack the correlation ID", publish.Attributes())
	}
}
