package eventbus_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

type contactInput struct{ Name string }

type contactOutput struct {
	ContactID string `json:"contactId"`
	Name      string `json:"name"`
	Notes     string `json:"notes,omitempty"`
}

func TestEventContextRoundTrip(t *testing.T) {
	if _, ok := eventbus.EventContextFrom(context.Background()); ok {
		t.Fatal("empty context has an event context")
	}
	meta := eventbus.PublishMetadata{TenantID: "acme", UserID: "u-1", CorrelationID: "req-9"}
	got, ok := eventbus.EventContextFrom(eventbus.WithEventContext(context.Background(), meta))
	if !ok || got != meta {
		t.Fatalf("got %+v, %t", got, ok)
	}
}

func TestWithPublishOnBus(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{MaxEventBytes: 4096})
	topic := eventbustest.UniqueTopic(t, "core.contact.created")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle)

	calls := 0
	create := eventbus.WithPublish(bus, eventbus.Name[contactOutput](topic), func(_ context.Context, in contactInput) (contactOutput, error) {
		calls++
		if in.Name == "" {
			return contactOutput{}, errors.New("name required")
		}
		return contactOutput{ContactID: "c-" + in.Name, Name: in.Name, Notes: strings.Repeat("x", len(in.Name)*100)}, nil
	})

	// No tenant in the context: checked before the function runs.
	if _, err := create(boundedCtx(t), contactInput{Name: "Ada"}); !errors.Is(err, eventbus.ErrTenantRequired) || calls != 0 {
		t.Fatalf("without tenant: %v (function called %d times)", err, calls)
	}
	ctx := eventbus.WithEventContext(boundedCtx(t), eventbus.PublishMetadata{TenantID: "acme", CorrelationID: "req-1"})

	// The function fails: nothing is published, its error comes back as is.
	if _, err := create(ctx, contactInput{}); err == nil || err.Error() != "name required" {
		t.Fatalf("failing function: %v", err)
	}
	// The function succeeds but the result cannot be published: the caller
	// gets the result and an error saying so.
	out, err := create(ctx, contactInput{Name: strings.Repeat("B", 50)})
	if !errors.Is(err, eventbus.ErrResultNotPublished) || !errors.Is(err, eventbus.ErrEventTooLarge) || out.Name == "" {
		t.Fatalf("unpublishable result: %+v, %v", out, err)
	}
	// The function succeeds and its result is the event.
	out, err = create(ctx, contactInput{Name: "Ada"})
	if err != nil || out.ContactID != "c-Ada" {
		t.Fatalf("create: %+v, %v", out, err)
	}
	ev := rec.WaitFor(t, 1)[0] // the first and only event: the failures published nothing
	got, err := eventbus.Decode[contactOutput](ev)
	if err != nil || got.Data.ContactID != "c-Ada" || ev.TenantID != "acme" || ev.Metadata.CorrelationID != "req-1" {
		t.Fatalf("published %+v, %v", got, err)
	}
	if calls != 3 {
		t.Fatalf("function called %d times, want 3", calls)
	}
	bad := eventbus.WithPublish(bus, "core.contact.create", func(context.Context, int) (int, error) { calls++; return 0, nil })
	if _, err := bad(ctx, 1); !errors.Is(err, eventbus.ErrInvalidTopic) || calls != 3 {
		t.Fatalf("bad name: %v (calls %d)", err, calls)
	}
	var nilTarget eventbus.Publisher
	if _, err := eventbus.WithPublish(nilTarget, eventbus.Name[int](topic), func(context.Context, int) (int, error) { return 0, nil })(ctx, 1); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Fatalf("nil target: %v", err)
	}
}

func TestWithPublishOnPluginClient(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	crm := newPluginClient(t, bus, "crm", "acme", "ws-1")
	event := pluginEvent(t, "crm", "contact.created")
	rec := eventbustest.NewRecorder()
	mustPluginSubscribe(t, crm, event, rec.Handle)

	create := eventbus.WithPublish(crm, eventbus.Name[contactOutput](event), func(_ context.Context, in contactInput) (contactOutput, error) {
		return contactOutput{ContactID: "c-1", Name: in.Name}, nil
	}, eventbus.WithCompression(eventbus.CompressionZstd))
	ctx := eventbus.WithEventContext(boundedCtx(t), eventbus.PublishMetadata{UserID: "u-7"})
	if _, err := create(ctx, contactInput{Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	ev := rec.WaitFor(t, 1)[0]
	if ev.Type != "plugin.crm."+event || ev.TenantID != "acme" || ev.WorkspaceID != "ws-1" || ev.Metadata.Source != "crm" || ev.Metadata.UserID != "u-7" {
		t.Fatalf("published %+v", ev)
	}

	called := false
	escape := eventbus.WithPublish(crm, "core.contact.created", func(context.Context, contactInput) (contactOutput, error) {
		called = true
		return contactOutput{}, nil
	})
	if _, err := escape(ctx, contactInput{}); !errors.Is(err, eventbus.ErrPluginScope) || called {
		t.Fatalf("core event through a plugin client: %v (called %t)", err, called)
	}
}
