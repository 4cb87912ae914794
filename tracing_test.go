package eventbus_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
)

// One trace spans publish → handle (fails) → dead letter → retry → handle → resolved.
func TestTracingFollowsAnEventThroughTheDLQ(t *testing.T) {
	t.Parallel()
	spans := &spanRecorder{}
	cfg := fastDLQ()
	cfg.TracerProvider = spans
	bus := startDLQ(t, eventbustest.NewBus(t, cfg))
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	group := eventbustest.UniqueID("billing")
	var calls atomic.Int64
	var handlerMu sync.Mutex
	var handlerSpans []trace.SpanContext // the span context of each call's ctx
	done := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		handlerMu.Lock()
		handlerSpans = append(handlerSpans, trace.SpanContextFromContext(ctx))
		handlerMu.Unlock()
		if calls.Add(1) == 1 {
			return errors.New("ledger unavailable")
		}
		return done.Handle(ctx, ev)
	}, eventbus.InGroup(group))
	id := eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme", CorrelationID: "corr-42"})
	done.WaitForID(t, id)
	waitEntry(t, bus.DLQ(), deadletter.ID(group, topic, "acme", id), hasStatus(deadletter.StatusResolved))

	ended := spans.Ended()
	var publish *endedSpan
	for i := range ended {
		if ended[i].Name == "publish "+topic {
			publish = &ended[i]
		}
	}
	if publish == nil {
		t.Fatal("no publish span")
	}
	traceID := publish.SpanContext.TraceID()
	names := map[string]int{}
	byName := map[string][]endedSpan{} // the trace's spans by kind and topic, in start order
	for _, s := range ended {
		if s.SpanContext.TraceID() == traceID {
			name := strings.SplitN(s.Name, " ", 2)[0] + " " + strings.SplitN(s.Name, " ", 3)[1]
			if strings.HasSuffix(name, "."+topic) {
				name = "process " + topic // the retry, read from the group's retry topic
			}
			names[name]++
			byName[name] = append(byName[name], s)
		}
	}
	for _, want := range []string{"process " + topic, "dlq write", "dlq retry"} {
		if names[want] == 0 {
			t.Errorf("trace %s lacks a %q span; it has %v", traceID, want, names)
		}
	}
	if names["process "+topic] != 2 {
		t.Fatalf("trace has %d process spans, want 2 (the failure and the retry)", names["process "+topic])
	}
	found := false
	for _, a := range publish.Attributes {
		if a.Key == "plexica.correlation_id" && a.Value.AsString() == "corr-42" {
			found = true
		}
	}
	if !found {
		t.Errorf("publish span attributes %v lack the correlation ID", publish.Attributes)
	}

	// The links between them: the first handling is a child of the publish,
	// the dead-letter write a child of that failed handling, the retry a
	// child of the publish (its context comes from the stored event's
	// headers), and the second handling a child of the retry.
	first, second := byName["process "+topic][0], byName["process "+topic][1]
	if first.Parent.SpanID() != publish.SpanContext.SpanID() {
		t.Errorf("the first process span's parent is %s, want the publish span %s", first.Parent.SpanID(), publish.SpanContext.SpanID())
	}
	if !hasParent(byName["dlq write"], first.SpanContext) {
		t.Errorf("no dlq write span is a child of the failed process span %s", first.SpanContext.SpanID())
	}
	if retries := byName["dlq retry"]; len(retries) != 1 || retries[0].Parent.SpanID() != publish.SpanContext.SpanID() {
		t.Errorf("dlq retry spans %v: want one, a child of the publish span %s", retries, publish.SpanContext.SpanID())
	} else if second.Parent.SpanID() != retries[0].SpanContext.SpanID() {
		t.Errorf("the second process span's parent is %s, want the dlq retry span %s", second.Parent.SpanID(), retries[0].SpanContext.SpanID())
	}

	// The handler ran inside each process span.
	handlerMu.Lock()
	defer handlerMu.Unlock()
	if len(handlerSpans) != 2 {
		t.Fatalf("handler ran %d times, want 2", len(handlerSpans))
	}
	for i, want := range []trace.SpanContext{first.SpanContext, second.SpanContext} {
		if got := handlerSpans[i]; got.TraceID() != traceID || got.SpanID() != want.SpanID() {
			t.Errorf("call %d's context carries span %s/%s, want the process span %s/%s", i+1, got.TraceID(), got.SpanID(), traceID, want.SpanID())
		}
	}
}

// hasParent reports whether one of spans is a child of parent.
func hasParent(spans []endedSpan, parent trace.SpanContext) bool {
	for _, s := range spans {
		if s.Parent.SpanID() == parent.SpanID() && s.Parent.TraceID() == parent.TraceID() {
			return true
		}
	}
	return false
}

// spanRecorder is a trace.TracerProvider whose tracers record every span
// they start: its name, span context, parent and attributes. Like the
// OpenTelemetry SDK, a span joins the trace of the span context in its
// start context (a remote one too, as a propagator's Extract leaves it) and
// starts a new trace when there is none.
type spanRecorder struct {
	embedded.TracerProvider

	mu    sync.Mutex
	spans []*recordedSpan // in start order
}

// Tracer returns a tracer that records into r.
func (r *spanRecorder) Tracer(string, ...trace.TracerOption) trace.Tracer {
	return recordingTracer{rec: r}
}

// Ended returns the spans that have ended, in start order.
func (r *spanRecorder) Ended() []endedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []endedSpan
	for _, s := range r.spans {
		if s.ended {
			out = append(out, endedSpan{Name: s.name, SpanContext: s.sc, Parent: s.parent, Attributes: slices.Clone(s.attrs)})
		}
	}
	return out
}

// endedSpan is what the recorder kept of one span.
type endedSpan struct {
	Name        string
	SpanContext trace.SpanContext
	Parent      trace.SpanContext // invalid for a trace's root
	Attributes  []attribute.KeyValue
}

type recordingTracer struct {
	embedded.Tracer
	rec *spanRecorder
}

// Start starts a recorded span, a child of ctx's span context if it has a
// valid one (unless trace.WithNewRoot is given).
func (t recordingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	parent := trace.SpanContextFromContext(ctx)
	scc := trace.SpanContextConfig{TraceFlags: trace.FlagsSampled}
	if parent.IsValid() && !cfg.NewRoot() {
		scc.TraceID = parent.TraceID()
	} else {
		parent = trace.SpanContext{}
		_, _ = rand.Read(scc.TraceID[:])
	}
	_, _ = rand.Read(scc.SpanID[:])
	s := &recordedSpan{rec: t.rec, name: name, sc: trace.NewSpanContext(scc), parent: parent, attrs: cfg.Attributes()}
	t.rec.mu.Lock()
	t.rec.spans = append(t.rec.spans, s)
	t.rec.mu.Unlock()
	return trace.ContextWithSpan(ctx, s), s
}

// recordedSpan is a span of a spanRecorder. Events, links, errors and
// status are not recorded (noop.Span's methods).
type recordedSpan struct {
	noop.Span

	rec        *spanRecorder
	name       string
	sc, parent trace.SpanContext
	attrs      []attribute.KeyValue // guarded by rec.mu
	ended      bool                 // guarded by rec.mu
}

func (s *recordedSpan) SpanContext() trace.SpanContext { return s.sc }

func (s *recordedSpan) IsRecording() bool {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return !s.ended
}

func (s *recordedSpan) SetAttributes(kv ...attribute.KeyValue) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if !s.ended {
		s.attrs = append(s.attrs, kv...)
	}
}

func (s *recordedSpan) End(...trace.SpanEndOption) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.ended = true
}

func (s *recordedSpan) TracerProvider() trace.TracerProvider { return s.rec }
