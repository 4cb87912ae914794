package eventbus

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/plexica/eventbus/wire"
)

// Event is a domain event: typed data plus the tenant it belongs to and the
// metadata that traces where it came from. Its JSON form is the wire format
// shared with the TypeScript @plexica/event-bus.
type Event[T any] struct {
	// ID is unique per event (a UUIDv7, so IDs sort by creation time).
	ID string `json:"id"`
	// Type is the event type, which is also the topic: "core.user.created".
	Type string `json:"type"`
	// TenantID is the tenant the event belongs to. Always set.
	TenantID string `json:"tenantId"`
	// WorkspaceID narrows the event to one workspace of the tenant; optional.
	WorkspaceID string `json:"workspaceId,omitempty"`
	// Timestamp is when the event was published (millisecond precision on the wire).
	Timestamp time.Time `json:"timestamp"`
	// Data is the payload.
	Data T `json:"data"`
	// Metadata traces the event's origin.
	Metadata Metadata `json:"metadata"`
}

// Metadata traces an event's origin.
type Metadata struct {
	// Source names the publisher: "core" by default, the plugin ID for plugins.
	Source string `json:"source"`
	// UserID is the acting user, if any.
	UserID string `json:"userId,omitempty"`
	// CorrelationID ties together every event of one business operation; a
	// new UUID when the publisher gives none.
	CorrelationID string `json:"correlationId"`
	// CausationID is the ID of the event that caused this one, if any.
	CausationID string `json:"causationId,omitempty"`
	// Version is the event schema version, "1.0" by default.
	Version string `json:"version"`
}

// Name is an event's type name (its topic, or a plugin's event name)
// together with the type of its data, so that the generic calls (Publish,
// Subscribe, On, WithPublish) infer the data type from the name and a
// payload or handler of another type does not compile. Package catalog names the core events
// this way; a plugin declares its own:
//
//	const DealWon eventbus.Name[DealWonData] = "deal.won"
//
// An untyped string constant also serves as a Name of whatever type the
// call's data or handler has. A name known only at run time (a string
// variable) is converted: Name[json.RawMessage](topic) subscribes a raw
// Handler; Bus.Publish takes a string and any data.
type Name[T any] string

// String returns the name.
func (n Name[T]) String() string { return string(n) }

// RawEvent is an event whose data is still JSON: what untyped handlers get.
type RawEvent = Event[json.RawMessage]

// PublishMetadata is what a publisher says about an event besides its data:
// whose it is (TenantID is required) and where it comes from.
type PublishMetadata struct {
	TenantID      string
	WorkspaceID   string
	Source        string
	UserID        string
	CorrelationID string
	CausationID   string
	Version       string
}

// MarshalJSON writes the event in the wire format (timestamps as JavaScript's
// toISOString writes them).
func (e Event[T]) MarshalJSON() ([]byte, error) {
	data, err := json.Marshal(e.Data)
	if err != nil {
		return nil, err
	}
	env := e.envelope(data)
	return wire.Append(nil, &env), nil
}

// UnmarshalJSON reads the wire format; any RFC 3339 timestamp is accepted.
func (e *Event[T]) UnmarshalJSON(b []byte) error {
	env, err := wire.Decode(b)
	if err != nil {
		return err
	}
	out, err := decodeEvent[T](env)
	if err != nil {
		return err
	}
	*e = out
	return nil
}

func (e *Event[T]) envelope(data json.RawMessage) wire.Envelope {
	return wire.Envelope{
		ID: e.ID, Type: e.Type, TenantID: e.TenantID, WorkspaceID: e.WorkspaceID,
		Timestamp: e.Timestamp, Data: data,
		Source: e.Metadata.Source, UserID: e.Metadata.UserID,
		CorrelationID: e.Metadata.CorrelationID, CausationID: e.Metadata.CausationID,
		Version: e.Metadata.Version,
	}
}

func rawEvent(env wire.Envelope) RawEvent {
	return RawEvent{
		ID: env.ID, Type: env.Type, TenantID: env.TenantID, WorkspaceID: env.WorkspaceID,
		Timestamp: env.Timestamp, Data: env.Data,
		Metadata: Metadata{
			Source: env.Source, UserID: env.UserID, CorrelationID: env.CorrelationID,
			CausationID: env.CausationID, Version: env.Version,
		},
	}
}

// decodeEvent turns an envelope into a typed event, decoding its data into T.
func decodeEvent[T any](env wire.Envelope) (Event[T], error) {
	raw := rawEvent(env)
	return Decode[T](raw)
}

// Decode turns a RawEvent into a typed one by decoding its data into T.
func Decode[T any](raw RawEvent) (Event[T], error) {
	var data T
	if err := json.Unmarshal(raw.Data, &data); err != nil {
		return Event[T]{}, fmt.Errorf("%w: data of event %s (%s) does not decode into %T: %v",
			ErrInvalidEvent, raw.ID, raw.Type, data, err)
	}
	return Event[T]{
		ID: raw.ID, Type: raw.Type, TenantID: raw.TenantID, WorkspaceID: raw.WorkspaceID,
		Timestamp: raw.Timestamp, Data: data, Metadata: raw.Metadata,
	}, nil
}
