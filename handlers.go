package eventbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// HandlerSpec is one declared event handler: which event, which function,
// and how to subscribe it. Build it with On; InitializeHandlers subscribes
// it on a Bus, a PluginClient or a PluginHost.
type HandlerSpec struct {
	// EventName is the event to handle. On a Bus it is the topic
	// ("core.user.created", "plugin.crm.deal.updated"). On a PluginClient
	// or a PluginHost it is the plugin's own event ("deal.updated"),
	// another plugin's event with PluginID, or a core event: a name
	// starting with "core." is always the core event.
	EventName string
	// Handler is called for each event; On builds it from a typed function.
	Handler Handler
	// GroupID is the consumer group (on a PluginClient or a PluginHost,
	// the group name in the plugin's namespace; see
	// PluginSubscribeOptions.GroupID). Handlers with the same GroupID share
	// one group. Default: as the Subscribe method of the target defaults
	// it.
	GroupID string
	// CoreEvent says EventName is a core event; names starting with
	// "core." are anyway.
	CoreEvent bool
	// PluginID makes a short EventName ("contact.created") another plugin's
	// event: plugin.<PluginID>.<EventName>.
	PluginID string
	// TenantID filters to one tenant on a Bus. On a PluginClient it must be
	// empty or the client's tenant; on a PluginHost, empty (the host
	// serves its tenant set).
	TenantID string
	// WorkspaceID filters to one workspace (not on a PluginHost).
	WorkspaceID string
	// Delivery: start position, ordering, concurrency, failure policy, as
	// in SubscribeOptions.
	Delivery
}

// HandlerOption sets an optional field of a HandlerSpec.
type HandlerOption func(*HandlerSpec)

// InGroup sets the handler's consumer group; handlers with the same group
// share it.
func InGroup(groupID string) HandlerOption { return func(s *HandlerSpec) { s.GroupID = groupID } }

// AsCoreEvent marks the event name as a core event.
func AsCoreEvent() HandlerOption { return func(s *HandlerSpec) { s.CoreEvent = true } }

// FromPlugin makes a short event name another plugin's event.
func FromPlugin(pluginID string) HandlerOption { return func(s *HandlerSpec) { s.PluginID = pluginID } }

// ForTenant filters the handler to one tenant (on a Bus).
func ForTenant(tenantID string) HandlerOption { return func(s *HandlerSpec) { s.TenantID = tenantID } }

// ForWorkspace filters the handler to one workspace.
func ForWorkspace(workspaceID string) HandlerOption {
	return func(s *HandlerSpec) { s.WorkspaceID = workspaceID }
}

// FromBeginning makes the handler's new group start at the oldest retained
// event.
func FromBeginning() HandlerOption { return func(s *HandlerSpec) { s.FromBeginning = true } }

// WithOnFailure sets what a failure of the handler leads to (see
// FailurePolicy; default DeadLetter).
func WithOnFailure(p FailurePolicy) HandlerOption { return func(s *HandlerSpec) { s.OnFailure = p } }

// WithOrdering sets which of the handler's events are handled one at a time
// (default OrderPerKey).
func WithOrdering(o Ordering) HandlerOption { return func(s *HandlerSpec) { s.Ordering = o } }

// WithMaxConcurrency sets how many of the handler's calls may run at once
// (default DefaultMaxConcurrency).
func WithMaxConcurrency(n int) HandlerOption { return func(s *HandlerSpec) { s.MaxConcurrency = n } }

// WithDelivery sets every delivery choice at once.
func WithDelivery(d Delivery) HandlerOption { return func(s *HandlerSpec) { s.Delivery = d } }

// On declares a handler of events of type T (the seed's @EventHandler):
//
//	func (s *CRM) EventHandlers() []eventbus.HandlerSpec {
//		return []eventbus.HandlerSpec{
//			eventbus.On("core.user.created", s.onUserCreated, eventbus.InGroup("crm-sync")),
//			eventbus.On("deal.updated", s.onDealUpdated, eventbus.InGroup("crm-sync")),
//		}
//	}
//
// An event whose data does not decode into T is a handler failure (it goes
// to the dead letter queue).
func On[T any](name Name[T], fn func(context.Context, Event[T]) error, opts ...HandlerOption) HandlerSpec {
	spec := HandlerSpec{EventName: string(name), Handler: typedHandler(fn)}
	for _, o := range opts {
		o(&spec)
	}
	return spec
}

// HandlerSet is a type that declares its event handlers.
type HandlerSet interface {
	EventHandlers() []HandlerSpec
}

// Subscriber is what InitializeHandlers subscribes on: a *Bus, a
// *PluginClient or a *PluginHost.
type Subscriber interface {
	subscribeSpec(ctx context.Context, spec HandlerSpec) (string, error)
	Unsubscribe(ctx context.Context, id string) error
}

// subscribeSpec makes *Bus a Subscriber: the event name is a topic, or a
// short plugin event name with spec.PluginID.
func (b *Bus) subscribeSpec(ctx context.Context, spec HandlerSpec) (string, error) {
	topic := spec.EventName
	switch {
	case spec.CoreEvent && spec.PluginID != "":
		return "", fmt.Errorf("%w: handler for %q sets both CoreEvent and PluginID %q; set one", ErrInvalidConfig, topic, spec.PluginID)
	case spec.CoreEvent && !strings.HasPrefix(topic, "core."):
		return "", fmt.Errorf("%w: handler marked CoreEvent needs a core event name such as \"core.user.created\", not %q", ErrInvalidTopic, topic)
	case spec.PluginID != "" && !strings.HasPrefix(topic, "plugin."):
		if err := ValidatePluginID(spec.PluginID); err != nil {
			return "", fmt.Errorf("handler for %q: PluginID: %w", topic, err)
		}
		topic = "plugin." + spec.PluginID + "." + topic
	}
	return b.Subscribe(ctx, topic, spec.Handler, SubscribeOptions{
		GroupID:     spec.GroupID,
		TenantID:    spec.TenantID,
		WorkspaceID: spec.WorkspaceID,
		Delivery:    spec.Delivery,
	})
}

// subscribeSpec makes *PluginClient a Subscriber: names resolve as in the
// TypeScript SDK ("deal.updated" is the plugin's own event, a "core." name
// a core event), and a full "plugin.<id>.<event>" name is accepted too.
func (p *PluginClient) subscribeSpec(ctx context.Context, spec HandlerSpec) (string, error) {
	if spec.TenantID != "" && spec.TenantID != p.scope.TenantID {
		return "", fmt.Errorf("%w: handler for %q asks for tenant %q but the plugin client is bound to tenant %q",
			ErrPluginScope, spec.EventName, spec.TenantID, p.scope.TenantID)
	}
	name, opts, err := p.specOptions(spec)
	if err != nil {
		return "", err
	}
	return p.Subscribe(ctx, name, spec.Handler, opts)
}

// specOptions resolves a spec's event name and options on the plugin:
// "deal.updated" is the plugin's own event, a "core." name a core event,
// and a full "plugin.<id>.<event>" name is accepted too.
func (p *PluginClient) specOptions(spec HandlerSpec) (string, PluginSubscribeOptions, error) {
	name, pluginID := spec.EventName, spec.PluginID
	core := spec.CoreEvent || strings.HasPrefix(name, "core.")
	if !core && strings.HasPrefix(name, "plugin.") {
		t, err := p.bus.client.cfg.TopicRules.ParseTopic(name)
		if err != nil {
			return "", PluginSubscribeOptions{}, err
		}
		if t.Kind == TopicKindPlugin && (pluginID == "" || pluginID == t.PluginID) {
			name, pluginID = t.Entity+"."+t.Action, t.PluginID
		}
	}
	if pluginID == p.scope.PluginID {
		pluginID = ""
	}
	return name, PluginSubscribeOptions{
		PluginID:    pluginID,
		CoreEvent:   core,
		WorkspaceID: spec.WorkspaceID,
		GroupID:     spec.GroupID,
		Delivery:    spec.Delivery,
	}, nil
}

// Handlers are the subscriptions InitializeHandlers made; Cleanup removes
// them.
type Handlers struct {
	target Subscriber
	subs   ownSubscriptions
}

// InitializeHandlers subscribes every handler x declares on target (a
// *Bus, a *PluginClient or a *PluginHost), in order, and returns them for
// cleanup. Each subscription has joined its group when it returns. If one fails, those
// already made are unsubscribed and the error names the failing handler.
func InitializeHandlers(ctx context.Context, target Subscriber, x HandlerSet) (*Handlers, error) {
	if target == nil || x == nil {
		return nil, fmt.Errorf("%w: InitializeHandlers needs a target (a *Bus, *PluginClient or *PluginHost) and a HandlerSet", ErrInvalidConfig)
	}
	specs := x.EventHandlers()
	for i, s := range specs {
		if s.EventName == "" || s.Handler == nil {
			return nil, fmt.Errorf("%w: handler %d of %T has no event name or no function; declare it with eventbus.On(\"core.user.created\", fn)",
				ErrInvalidConfig, i, x)
		}
	}
	h := &Handlers{target: target}
	for i, s := range specs {
		id, err := target.subscribeSpec(ctx, s)
		if err != nil {
			err = fmt.Errorf("initialize handler %d of %T (%s): %w", i, x, s.EventName, err)
			if cerr := h.Cleanup(context.WithoutCancel(ctx)); cerr != nil {
				err = errors.Join(err, fmt.Errorf("and unsubscribing the handlers already subscribed: %w", cerr))
			}
			return nil, err
		}
		h.subs.add(id)
	}
	return h, nil
}

// SubscriptionIDs returns the IDs of the subscriptions still held.
func (h *Handlers) SubscriptionIDs() []string {
	return h.subs.list()
}

// Cleanup unsubscribes every handler. Calling it again is a no-op.
func (h *Handlers) Cleanup(ctx context.Context) error {
	if h == nil {
		return nil
	}
	return h.subs.closeAll(ctx, h.target.Unsubscribe)
}
