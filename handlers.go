package eventbus

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/plexica/eventbus/topic"
)

// HandlerSpec is one declared event handler: which event, which function,
// and how to subscribe it. Build it with On; InitializeHandlers subscribes
// it on a Bus, a PluginClient or a PluginHost, exactly as Subscribe would
// with the same name and options.
type HandlerSpec struct {
	name        string  // the event name, resolved by resolveName
	handler     Handler // called for each event
	groupID     string  // InGroup
	pluginID    string  // FromPlugin
	tenantID    string  // ForTenant
	workspaceID string  // ForWorkspace
	delivery    Delivery
}

// SubscribeOption sets how Subscribe subscribes a handler, or how
// InitializeHandlers subscribes a handler declared with On: the same
// options on every target (a *Bus, a *PluginClient or a *PluginHost).
type SubscribeOption func(*HandlerSpec)

// InGroup sets the handler's consumer group; handlers with the same group
// share it. On a Bus it is the group's name (default
// "<ClientID>.<topic>"). On a PluginClient or a PluginHost it is the name
// within the plugin's namespace, "plugin.<id>.<group>" (default the
// topic: crm's group for core.user.created is
// "plugin.crm.core.user.created", and for its own contact.created
// "plugin.crm.contact.created"); a PluginClient adds its tenant filter
// (see GroupID).
func InGroup(groupID string) SubscribeOption {
	return func(s *HandlerSpec) { s.groupID = groupID }
}

// FromPlugin makes a short event name ("contact.created") the event of
// plugin pluginID: plugin.<pluginID>.contact.created. Without it a short
// name is the subscribing plugin's own event, and on a Bus it fails.
func FromPlugin(pluginID string) SubscribeOption {
	return func(s *HandlerSpec) { s.pluginID = pluginID }
}

// ForTenant delivers only one tenant's events. The filter is part of the
// group's identity (see GroupID); the tenant must be a valid
// tenant ID (ValidateTenantID). A PluginClient takes only its own tenant;
// a PluginHost none (it serves its tenant set).
func ForTenant(tenantID string) SubscribeOption {
	return func(s *HandlerSpec) { s.tenantID = tenantID }
}

// ForWorkspace delivers only one workspace's events. On a Bus it needs
// ForTenant too; a PluginClient takes only its own workspace when it has
// one; a PluginHost none (filter by Event.WorkspaceID in the handler).
func ForWorkspace(workspaceID string) SubscribeOption {
	return func(s *HandlerSpec) { s.workspaceID = workspaceID }
}

// WithDelivery sets the delivery: start position, ordering, concurrency,
// failure policy (see Delivery; the zero value is the default).
func WithDelivery(d Delivery) SubscribeOption {
	return func(s *HandlerSpec) { s.delivery = d }
}

// On declares a handler of events of type T (the seed's @EventHandler) for
// InitializeHandlers, with the options Subscribe takes:
//
//	func (s *CRM) EventHandlers() []eventbus.HandlerSpec {
//		return []eventbus.HandlerSpec{
//			eventbus.On("core.user.created", s.onUserCreated, eventbus.InGroup("crm-sync")),
//			eventbus.On("deal.updated", s.onDealUpdated, eventbus.InGroup("crm-sync")),
//		}
//	}
//
// The name resolves as in Subscribe. An event whose data does not decode
// into T is a handler failure (it goes to the dead letter queue).
func On[T any](name Name[T], fn func(context.Context, Event[T]) error, opts ...SubscribeOption) HandlerSpec {
	spec := HandlerSpec{name: string(name), handler: typedHandler(fn)}
	for _, o := range opts {
		if o != nil {
			o(&spec)
		}
	}
	return spec
}

// Subscribe calls fn for each event name on target (a *Bus, a
// *PluginClient or a *PluginHost) that passes the target's and the
// options' tenant and workspace filters, at least once, as WithDelivery
// says (see Delivery in the package documentation). It returns the
// subscription's ID once the group has joined and its partitions are
// assigned, so events published after it returns are delivered; stop it
// with target.Unsubscribe.
//
// The name resolves by one rule on every target: a name starting with
// "core." is that core event, one starting with "plugin." that plugin
// event, and a short name ("contact.created") the event of the plugin
// FromPlugin names, else of the subscribing PluginClient's or
// PluginHost's own plugin (on a Bus a short name needs FromPlugin). A
// dlq.* name fails with ErrInvalidTopic (read failed events through the
// DeadLetterQueue).
//
// T is the event's data: an event whose data does not decode into T is a
// handler failure. With T json.RawMessage (fn a Handler, or a func of
// RawEvent) the data is passed as it is, undecoded:
//
//	eventbus.Subscribe(ctx, bus, eventbus.Name[json.RawMessage]("core.user.created"), handler)
//
// Errors: a bad name with ErrInvalidTopic; the same topic twice in one
// group of this process with ErrDuplicateSubscription; a tenant or
// workspace filter that is not a valid ID with ErrInvalidTenantID or
// ErrInvalidWorkspaceID; a filter outside a PluginClient's scope with
// ErrPluginScope; other bad options with ErrInvalidConfig.
func Subscribe[T any](ctx context.Context, target Subscriber, name Name[T], fn func(context.Context, Event[T]) error, opts ...SubscribeOption) (string, error) {
	if target == nil || fn == nil {
		return "", fmt.Errorf("%w: Subscribe(%q) needs a target (a *Bus, *PluginClient or *PluginHost) and a handler", ErrInvalidConfig, string(name))
	}
	return target.subscribeSpec(ctx, On(name, fn, opts...))
}

// Handle runs the declared handler on one event as a subscription runs
// it, without a broker: ctx carries the event context of ev (what the
// handler publishes belongs to ev's tenant, workspace, user and
// correlation, and is caused by ev), the data is decoded into the
// handler's type (a failure wraps ErrInvalidEvent), and a panic is
// returned as a *PanicError. Nothing is committed, retried or dead
// lettered: the error is returned. eventbustest.Work builds the event and
// calls it, for a handler's unit tests.
func (s HandlerSpec) Handle(ctx context.Context, ev RawEvent) error {
	if s.handler == nil {
		return fmt.Errorf("%w: the handler spec has no function; declare it with eventbus.On", ErrInvalidConfig)
	}
	return callHandler(ctx, s.handler, ev)
}

// HandlerSet is a type that declares its event handlers.
type HandlerSet interface {
	EventHandlers() []HandlerSpec
}

// Subscriber is what Subscribe and InitializeHandlers subscribe on: a
// *Bus, a *PluginClient or a *PluginHost.
type Subscriber interface {
	subscribeSpec(ctx context.Context, spec HandlerSpec) (string, error)
	// groupOf is the topic spec's name resolves to and the consumer group
	// a subscription of spec joins.
	groupOf(spec HandlerSpec) (topic, group string, err error)
	// Unsubscribe stops a subscription made on this target.
	Unsubscribe(ctx context.Context, id string) error
}

// GroupID returns the consumer group that Subscribe(ctx, target, name, fn,
// opts...) joins, by the rule of each target (the failures of its
// subscription are filed under it: see FailedEventID):
//
//   - on a *Bus, InGroup's name (default "<ClientID>.<topic>"), plus its
//     ForTenant and ForWorkspace filter:
//     "<group>[.tenant.<tenantID>[.workspace.<workspaceID>]]" (tenant and
//     workspace IDs have no dots, so two filters never share a group);
//   - on a *PluginClient, "plugin.<id>.<group>" (InGroup's name, default
//     the topic; a name that already starts with "plugin.<id>." is kept as
//     it is), plus the client's tenant and workspace filter as on a Bus;
//   - on a *PluginHost, "plugin.<id>.<group>" with no filter: one group for
//     every tenant the host serves.
//
// It fails as Subscribe would on a name that does not resolve.
func GroupID(target Subscriber, name string, opts ...SubscribeOption) (string, error) {
	if target == nil {
		return "", fmt.Errorf("%w: GroupID(%q) needs a target (a *Bus, *PluginClient or *PluginHost)", ErrInvalidConfig, name)
	}
	spec := HandlerSpec{name: name}
	for _, o := range opts {
		o(&spec)
	}
	_, group, err := target.groupOf(spec)
	return group, err
}

// filteredGroup is a group with its tenant and workspace filter (see
// GroupID).
func filteredGroup(groupID, tenantID, workspaceID string) string {
	g := groupID
	if tenantID != "" {
		g += ".tenant." + tenantID
	}
	if workspaceID != "" {
		g += ".workspace." + workspaceID
	}
	return g
}

// resolveName turns an event name into its topic, by the one rule of
// every target (see Subscribe): "core." and "plugin." names are full
// topics, a short name is the event of fromPlugin, else of own (the
// subscribing plugin; empty on a Bus).
func resolveName(rules *topic.Rules, name, own, fromPlugin string) (string, error) {
	if fromPlugin != "" {
		if err := topic.ValidatePluginID(fromPlugin); err != nil {
			return "", fmt.Errorf("subscribe %q: FromPlugin: %w", name, err)
		}
	}
	switch {
	case strings.HasPrefix(name, "dlq."):
		return "", fmt.Errorf("%w: %q is a dead-letter topic; read failed events through the DeadLetterQueue instead", ErrInvalidTopic, name)
	case strings.HasPrefix(name, "core."), strings.HasPrefix(name, "plugin."):
		t, err := rules.Parse(name)
		if err != nil {
			return "", err
		}
		if fromPlugin != "" && (t.Kind != topic.KindPlugin || t.PluginID != fromPlugin) {
			return "", fmt.Errorf("%w: %q is a full event name, not plugin %q's: give FromPlugin a short name (\"contact.created\") or drop it",
				ErrInvalidConfig, name, fromPlugin)
		}
		return name, nil
	}
	plugin := fromPlugin
	if plugin == "" {
		plugin = own
	}
	if plugin == "" {
		return "", fmt.Errorf("%w: %q is a short plugin event name; on a Bus give the full name (\"plugin.crm.%s\") or eventbus.FromPlugin(\"crm\")",
			ErrInvalidTopic, name, name)
	}
	topic := "plugin." + plugin + "." + name
	if err := rules.Validate(topic); err != nil {
		return "", fmt.Errorf("plugin %s: event name %q (<entity>.<action>, e.g. \"contact.created\"): %w", plugin, name, err)
	}
	return topic, nil
}

// groupOf makes *Bus a Subscriber: see GroupID.
func (b *Bus) groupOf(spec HandlerSpec) (string, string, error) {
	topic, err := resolveName(b.client.cfg.TopicRules, spec.name, "", spec.pluginID)
	if err != nil {
		return "", "", err
	}
	return topic, filteredGroup(b.defaultGroup(spec.groupID, topic), spec.tenantID, spec.workspaceID), nil
}

// defaultGroup is a Bus subscription's group name: groupID, or by default
// "<ClientID>.<topic>".
func (b *Bus) defaultGroup(groupID, topic string) string {
	if groupID == "" {
		return b.client.cfg.ClientID + "." + topic
	}
	return groupID
}

// subscribeSpec makes *Bus a Subscriber.
func (b *Bus) subscribeSpec(ctx context.Context, spec HandlerSpec) (string, error) {
	topic, err := resolveName(b.client.cfg.TopicRules, spec.name, "", spec.pluginID)
	if err != nil {
		return "", err
	}
	return b.subscribe(ctx, topic, spec.handler, subscribeOptions{
		GroupID:     spec.groupID,
		TenantID:    spec.tenantID,
		WorkspaceID: spec.workspaceID,
		Delivery:    spec.delivery,
	}, nil)
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
		if s.name == "" || s.handler == nil {
			return nil, fmt.Errorf("%w: handler %d of %T has no event name or no function; declare it with eventbus.On(\"core.user.created\", fn)",
				ErrInvalidConfig, i, x)
		}
	}
	h := &Handlers{target: target}
	for i, s := range specs {
		id, err := target.subscribeSpec(ctx, s)
		if err != nil {
			err = fmt.Errorf("initialize handler %d of %T (%s): %w", i, x, s.name, err)
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
