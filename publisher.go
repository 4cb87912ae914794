package eventbus

import (
	"context"
	"fmt"
	"strings"
)

type eventContextKey struct{}

// WithEventContext returns a context that carries meta as its event
// context (see Event context in the package documentation), replacing any
// it had. Publish and functions wrapped by WithPublish read it: the tenant (which a PluginClient only checks
// against its own), the workspace, the user, and the correlation and
// causation IDs. Bus.Publish does not.
//
//	ctx = eventbus.WithEventContext(ctx, eventbus.PublishMetadata{
//		TenantID: "acme", UserID: "u-7", CorrelationID: requestID,
//	})
func WithEventContext(ctx context.Context, meta PublishMetadata) context.Context {
	return context.WithValue(ctx, eventContextKey{}, meta)
}

// EventContextFrom returns the event context of ctx and whether it had
// one. In a handler it is the event being handled.
func EventContextFrom(ctx context.Context) (PublishMetadata, bool) {
	m, ok := ctx.Value(eventContextKey{}).(PublishMetadata)
	return m, ok
}

// withIncomingEvent returns ctx with the event context of a handled event:
// what its handler publishes belongs to the same tenant, workspace, user
// and correlation, and is caused by it.
func withIncomingEvent(ctx context.Context, ev RawEvent) context.Context {
	return WithEventContext(ctx, PublishMetadata{
		TenantID:      ev.TenantID,
		WorkspaceID:   ev.WorkspaceID,
		UserID:        ev.Metadata.UserID,
		CorrelationID: ev.Metadata.CorrelationID,
		CausationID:   ev.ID,
	})
}

// Publisher is where Publish and WithPublish publish: a *Bus, a
// *PluginClient or a *PluginHost. Event names resolve as on each: a full
// topic name on a Bus ("core.user.created"), the plugin's own event name
// on a PluginClient or a PluginHost ("contact.created"); the metadata is
// the event context of ctx on all three.
type Publisher interface {
	// resolvePublish checks eventName and the event context of ctx before
	// anything runs, and returns the bus, topic and metadata to publish
	// with.
	resolvePublish(ctx context.Context, eventName string) (*Bus, string, PublishMetadata, error)
}

// resolvePublish makes *Bus a Publisher: eventName is the topic and the
// metadata is the event context of ctx, which must name a tenant.
func (b *Bus) resolvePublish(ctx context.Context, eventName string) (*Bus, string, PublishMetadata, error) {
	if _, err := b.client.cfg.TopicRules.Parse(eventName); err != nil {
		return nil, "", PublishMetadata{}, err
	}
	if strings.HasPrefix(eventName, "dlq.") {
		return nil, "", PublishMetadata{}, fmt.Errorf("%w: %q is a dead-letter topic; the bus writes those itself", ErrInvalidTopic, eventName)
	}
	meta, _ := EventContextFrom(ctx)
	if strings.TrimSpace(meta.TenantID) == "" {
		return nil, "", PublishMetadata{}, fmt.Errorf("%w: publishing %q on a Bus takes the tenant from the context; "+
			"set it with eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: \"acme\"}) or publish through a PluginClient",
			ErrTenantRequired, eventName)
	}
	if err := validateScope(meta); err != nil {
		return nil, "", PublishMetadata{}, fmt.Errorf("publishing %q: %w", eventName, err)
	}
	return b, eventName, meta, nil
}

// WithPublish wraps fn so that its result is published as the event
// eventName (the seed's @EventPublisher):
//
//	createContact := eventbus.WithPublish(crm, "contact.created",
//		func(ctx context.Context, in NewContact) (ContactCreated, error) {
//			id, err := store.Insert(ctx, in)
//			return ContactCreated{ContactID: id, Name: in.Name}, err
//		})
//	out, err := createContact(ctx, NewContact{Name: "Ada"})
//
// On a PluginClient the event is the plugin's own (plugin.<id>.<eventName>)
// with the client's tenant; on a PluginHost it is the plugin's own, for
// the tenant of the context, which the host must serve; on a Bus eventName
// is the topic and the tenant comes from the context (WithEventContext).
// User and correlation come from the context in every case.
//
// Before fn runs, the name and the tenant are checked: if they are wrong,
// fn is not called and the error says why. If fn fails, nothing is
// published and fn's result and error are returned as they are. If fn
// succeeds but publishing fails, the returned error wraps
// ErrResultNotPublished and the cause, and fn's result is returned with it:
// a publish failure is never only logged.
func WithPublish[In, Out any](target Publisher, name Name[Out], fn func(context.Context, In) (Out, error), opts ...PublishOption) func(context.Context, In) (Out, error) {
	eventName := string(name)
	return func(ctx context.Context, in In) (Out, error) {
		var zero Out
		if target == nil || fn == nil {
			return zero, fmt.Errorf("%w: WithPublish(%q) needs a target (a *Bus, *PluginClient or *PluginHost) and a function", ErrInvalidConfig, eventName)
		}
		bus, topic, meta, err := target.resolvePublish(ctx, eventName)
		if err != nil {
			return zero, fmt.Errorf("publish %q after the call (the function was not called): %w", eventName, err)
		}
		out, err := fn(ctx, in)
		if err != nil {
			return out, err
		}
		if _, err := bus.Publish(ctx, topic, out, meta, opts...); err != nil {
			return out, fmt.Errorf("%w: the function succeeded but its result was not published as %s: %w", ErrResultNotPublished, topic, err)
		}
		return out, nil
	}
}
