package eventbustest_test

// This file is also what a unit test of a handler looks like with Work: no
// broker, the handler's real event context.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// welcome is a handler under test: it answers a new user with the mail to
// queue, for the tenant and correlation of the event it handles.
func welcome(sent *[]string) func(context.Context, eventbus.Event[userCreated]) error {
	return func(ctx context.Context, ev eventbus.Event[userCreated]) error {
		if ev.Data.Email == "" {
			return eventbus.Permanent(errors.New("a user without an email"))
		}
		meta, _ := eventbus.EventContextFrom(ctx)
		*sent = append(*sent, fmt.Sprintf("%s %s %s caused by %s", meta.TenantID, meta.CorrelationID, ev.Data.Email, meta.CausationID))
		return nil
	}
}

func TestWorkRunsTheHandlerWithTheEventContext(t *testing.T) {
	var sent []string
	ev := eventbus.Event[userCreated]{
		ID: "ev-1", Type: "core.user.created", TenantID: "acme",
		Data:     userCreated{UserID: "u-1", Email: "ada@acme.test"},
		Metadata: eventbus.Metadata{CorrelationID: "req-7", UserID: "admin"},
	}
	if err := eventbustest.Work(t.Context(), t, welcome(&sent), ev); err != nil {
		t.Fatal(err)
	}
	if want := "acme req-7 ada@acme.test caused by ev-1"; len(sent) != 1 || sent[0] != want {
		t.Fatalf("sent %q, want [%q]", sent, want)
	}
	// The handler's error comes back as it is, for the test to inspect.
	ev.Data.Email = ""
	var perm *eventbus.PermanentError
	if err := eventbustest.Work(t.Context(), t, welcome(&sent), ev); !errors.As(err, &perm) {
		t.Fatalf("a Permanent error came back as %v", err)
	}
}

func TestWorkFillsWhatAPublishFills(t *testing.T) {
	var got eventbus.Event[userCreated]
	var ctxMeta eventbus.PublishMetadata
	err := eventbustest.Work(t.Context(), t, func(ctx context.Context, ev eventbus.Event[userCreated]) error {
		got = ev
		ctxMeta, _ = eventbus.EventContextFrom(ctx)
		return nil
	}, eventbus.Event[userCreated]{Type: "core.user.created", TenantID: "acme", WorkspaceID: "ws-1",
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6_789_000, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == "" || got.Metadata.CorrelationID == "" || got.Metadata.Source != "core" || got.Metadata.Version != "1.0" {
		t.Fatalf("defaults not filled: %+v", got)
	}
	// Through the wire format: the timestamp keeps milliseconds, as on the brokers.
	if !got.Timestamp.Equal(time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)) {
		t.Fatalf("timestamp %v", got.Timestamp)
	}
	if ctxMeta.TenantID != "acme" || ctxMeta.WorkspaceID != "ws-1" || ctxMeta.CausationID != got.ID {
		t.Fatalf("event context %+v", ctxMeta)
	}
}

func TestWorkTurnsAPanicIntoPanicError(t *testing.T) {
	err := eventbustest.Work(t.Context(), t, func(context.Context, eventbus.Event[userCreated]) error {
		panic("boom")
	}, eventbus.Event[userCreated]{Type: "core.user.created", TenantID: "acme"})
	var p *eventbus.PanicError
	if !errors.As(err, &p) || p.Value != "boom" {
		t.Fatalf("panic came back as %v", err)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWorkRejectsAnEventWithoutTypeOrValidTenant(t *testing.T) {
	nop := func(context.Context, eventbus.Event[userCreated]) error { return nil }
	for _, c := range []struct {
		ev   eventbus.Event[userCreated]
		want string
	}{
		{eventbus.Event[userCreated]{TenantID: "acme"}, "needs a Type"},
		{eventbus.Event[userCreated]{Type: "core.user.created"}, "TenantID"},
		{eventbus.Event[userCreated]{Type: "core.user.created", TenantID: "a.b"}, "tenant"},
		{eventbus.Event[userCreated]{Type: "core.user.created", TenantID: "acme", WorkspaceID: "w.1"}, "workspace"},
	} {
		rec := &fatalRecorder{TB: t}
		var wg sync.WaitGroup
		wg.Go(func() { _ = eventbustest.Work(t.Context(), rec, nop, c.ev) })
		wg.Wait()
		if !strings.Contains(rec.msg, c.want) {
			t.Errorf("Work(%+v) failed the test with %q, want it to mention %q", c.ev, rec.msg, c.want)
		}
	}
}
