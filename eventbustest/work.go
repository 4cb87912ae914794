package eventbustest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/plexica/eventbus"
)

// Work runs fn on ev as a subscription would, without a broker, and
// returns fn's error, for a handler's unit tests (the model is river's
// rivertest worker). The event goes through the wire format (encoded and
// decoded as on the brokers, so data that does not survive JSON fails as
// it would there), and fn's context carries the event context a
// subscription gives it: eventbus.Publish and eventbus.WithPublish in fn
// act for ev's tenant, workspace, user and correlation, caused by ev. A
// panic in fn is returned as an *eventbus.PanicError.
//
// ev.Type and ev.TenantID are required (the test fails otherwise); the
// tenant and workspace must be valid IDs. Fields left zero get the values
// a publish gives them: a new ID and correlation ID, the current time,
// source "core", version "1.0".
func Work[T any](ctx context.Context, t testing.TB, fn func(context.Context, eventbus.Event[T]) error, ev eventbus.Event[T]) error {
	t.Helper()
	if ev.Type == "" || ev.TenantID == "" {
		t.Fatalf("eventbustest.Work: the event needs a Type (its topic, e.g. \"core.user.created\") and a TenantID; got %q and %q", ev.Type, ev.TenantID)
	}
	if err := eventbus.ValidateTenantID(ev.TenantID); err != nil {
		t.Fatalf("eventbustest.Work: %v", err)
	}
	if err := eventbus.ValidateWorkspaceID(ev.WorkspaceID); err != nil {
		t.Fatalf("eventbustest.Work: %v", err)
	}
	if ev.ID == "" {
		ev.ID = uuid.Must(uuid.NewV7()).String()
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = time.Now()
	}
	if ev.Metadata.Source == "" {
		ev.Metadata.Source = eventbus.DefaultSource
	}
	if ev.Metadata.Version == "" {
		ev.Metadata.Version = "1.0"
	}
	if ev.Metadata.CorrelationID == "" {
		ev.Metadata.CorrelationID = uuid.Must(uuid.NewV7()).String()
	}
	value, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("eventbustest.Work: encode the event: %v", err)
	}
	var raw eventbus.RawEvent
	if err := json.Unmarshal(value, &raw); err != nil {
		t.Fatalf("eventbustest.Work: decode the event: %v", err)
	}
	return eventbus.On(eventbus.Name[T](ev.Type), fn).Handle(ctx, raw)
}
