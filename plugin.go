package eventbus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/plexica/eventbus/topic"
)

// PluginScope binds a PluginClient to one plugin and one tenant (and,
// optionally, one workspace of that tenant).
type PluginScope struct {
	// PluginID is the plugin's kebab-case ID ("crm", "sample-analytics").
	// Required; see ValidatePluginID.
	PluginID string
	// TenantID is the tenant the client publishes for and receives events
	// of. Required; a valid tenant ID (see ValidateTenantID: letters,
	// digits, '-' and '_', no dots), since it names the client's groups.
	TenantID string
	// WorkspaceID, when set, stamps published events with this workspace
	// and delivers only this workspace's events. A valid workspace ID
	// (ValidateWorkspaceID), like TenantID.
	WorkspaceID string
}

// PluginClient is the event API of one plugin running for one tenant (the
// TypeScript PluginEventClient): it publishes the plugin's own events for
// its tenant and receives only that tenant's events. Its consumer groups,
// their cost, and when a PluginHost fits better: see Plugins in the
// package documentation. It is safe for concurrent use; build one per
// plugin and tenant with NewPluginClient, on a shared Bus.
type PluginClient struct {
	bus   *Bus
	scope PluginScope
	subs  ownSubscriptions // made by this client
}

// NewPluginClient returns a client for pc on bus. It fails, wrapping
// ErrInvalidPluginID, when pc.PluginID is not kebab-case ("crm",
// "sample-analytics"; not "CRM", "sample_analytics" or "salesforce.sync"),
// wrapping ErrTenantRequired when pc.TenantID is empty, and wrapping
// ErrInvalidTenantID (ErrInvalidWorkspaceID) when the tenant (workspace)
// is not a valid ID: letters, digits, '-' and '_', no dots (see
// ValidateTenantID).
func NewPluginClient(bus *Bus, pc PluginScope) (*PluginClient, error) {
	if bus == nil {
		return nil, fmt.Errorf("%w: NewPluginClient needs a Bus (see NewBus)", ErrInvalidConfig)
	}
	if err := topic.ValidatePluginID(pc.PluginID); err != nil {
		return nil, fmt.Errorf("new plugin client: PluginScope.PluginID: %w", err)
	}
	if strings.TrimSpace(pc.TenantID) == "" {
		return nil, fmt.Errorf("%w: PluginScope.TenantID is empty; a plugin client is bound to one tenant (e.g. TenantID: \"acme\")",
			ErrTenantRequired)
	}
	if err := ValidateTenantID(pc.TenantID); err != nil {
		return nil, fmt.Errorf("new plugin client: PluginScope.TenantID: %w", err)
	}
	if err := ValidateWorkspaceID(pc.WorkspaceID); err != nil {
		return nil, fmt.Errorf("new plugin client: PluginScope.WorkspaceID: %w", err)
	}
	return &PluginClient{bus: bus, scope: pc}, nil
}

// Scope returns the plugin, tenant and workspace the client is bound to.
func (p *PluginClient) Scope() PluginScope { return p.scope }

// topic returns the topic of one of the plugin's own events, which it
// publishes, resolving the name as Subscribe does: for the crm plugin,
// "contact.created" and "plugin.crm.contact.created" are both
// plugin.crm.contact.created. A core.*, dlq.* or another plugin's name
// fails with ErrPluginScope; a name that breaks the topic rules fails with
// ErrInvalidTopic.
func (p *PluginClient) topic(eventName string) (string, error) {
	if !strings.HasPrefix(eventName, "plugin."+p.scope.PluginID+".") {
		for _, prefix := range []string{"core.", "plugin.", "dlq."} {
			if strings.HasPrefix(eventName, prefix) {
				return "", p.scopeError(eventName)
			}
		}
	}
	return resolveName(p.bus.client.cfg.TopicRules, eventName, p.scope.PluginID, "")
}

// scopeError explains why a core.*, dlq.* or another plugin's name cannot
// be one of the plugin's own events. When the name is not a valid topic
// either, the error wraps ErrInvalidTopic too.
func (p *PluginClient) scopeError(name string) error {
	id := p.scope.PluginID
	_, parseErr := p.bus.client.cfg.TopicRules.Parse(name)
	why := "a plugin publishes only its own events"
	switch {
	case strings.HasPrefix(name, "core."):
		why = "core events are published by the platform, not by plugins"
	case strings.HasPrefix(name, "dlq."):
		why = "dead-letter topics are written by the bus itself"
	}
	err := fmt.Errorf("%w: plugin %q cannot publish %q: %s; its events are plugin.%s.<entity>.<action>, named with or without the prefix (e.g. \"contact.created\")",
		ErrPluginScope, id, name, why, id)
	if parseErr != nil {
		return fmt.Errorf("%w (%w)", err, parseErr)
	}
	return err
}

// resolvePublish makes *PluginClient a Publisher: the topic and metadata
// of one of the plugin's events, for the client's tenant.
func (p *PluginClient) resolvePublish(ctx context.Context, eventName string) (*Bus, string, PublishMetadata, error) {
	topic, err := p.topic(eventName)
	if err != nil {
		return nil, "", PublishMetadata{}, err
	}
	meta, err := p.metadata(ctx)
	if err != nil {
		return nil, "", PublishMetadata{}, fmt.Errorf("publish %s: %w", topic, err)
	}
	return p.bus, topic, meta, nil
}

// metadata builds the metadata of a published event from the client's
// context and the event context of ctx.
func (p *PluginClient) metadata(ctx context.Context) (PublishMetadata, error) {
	m, _ := EventContextFrom(ctx)
	if m.TenantID != "" && m.TenantID != p.scope.TenantID {
		return PublishMetadata{}, fmt.Errorf("%w: the context is for tenant %q but this client of plugin %q is bound to tenant %q; publish through that tenant's PluginClient",
			ErrPluginScope, m.TenantID, p.scope.PluginID, p.scope.TenantID)
	}
	ws := p.scope.WorkspaceID
	if m.WorkspaceID != "" {
		if ws != "" && m.WorkspaceID != ws {
			return PublishMetadata{}, fmt.Errorf("%w: the context is for workspace %q but this client is bound to workspace %q; use a client for that workspace",
				ErrPluginScope, m.WorkspaceID, ws)
		}
		if err := ValidateWorkspaceID(m.WorkspaceID); err != nil {
			return PublishMetadata{}, fmt.Errorf("the context's workspace: %w", err)
		}
		ws = m.WorkspaceID
	}
	return PublishMetadata{
		TenantID:      p.scope.TenantID,
		WorkspaceID:   ws,
		Source:        p.scope.PluginID,
		UserID:        m.UserID,
		CorrelationID: m.CorrelationID,
		CausationID:   m.CausationID,
		Version:       m.Version,
	}, nil
}

// subscribeSpec makes *PluginClient a Subscriber: it delivers the
// client's tenant (and workspace, when set on the client or by
// ForWorkspace) only, in the group InGroup names within the plugin's
// namespace, the tenant filter added (see GroupID).
func (p *PluginClient) subscribeSpec(ctx context.Context, spec HandlerSpec) (string, error) {
	if spec.tenantID != "" && spec.tenantID != p.scope.TenantID {
		return "", fmt.Errorf("%w: subscribe %q: ForTenant(%q) but the plugin client is bound to tenant %q; use that tenant's client",
			ErrPluginScope, spec.name, spec.tenantID, p.scope.TenantID)
	}
	topic, err := resolveName(p.bus.client.cfg.TopicRules, spec.name, p.scope.PluginID, spec.pluginID)
	if err != nil {
		return "", err
	}
	if spec.handler == nil {
		return "", fmt.Errorf("%w: Subscribe(%q) was given a nil handler", ErrInvalidConfig, spec.name)
	}
	ws := p.scope.WorkspaceID
	if spec.workspaceID != "" {
		if ws != "" && spec.workspaceID != ws {
			return "", fmt.Errorf("%w: ForWorkspace(%q) differs from the client's workspace %q; use a client for that workspace",
				ErrPluginScope, spec.workspaceID, ws)
		}
		ws = spec.workspaceID
	}
	id, err := p.bus.subscribe(ctx, topic, p.scoped(spec.handler, ws), subscribeOptions{
		GroupID:     p.group(groupName(spec.groupID, topic)),
		TenantID:    p.scope.TenantID,
		WorkspaceID: ws,
		Delivery:    spec.delivery,
	}, nil)
	if err != nil {
		return "", err
	}
	p.subs.add(id)
	return id, nil
}

// groupName is a plugin subscription's group name: the one InGroup gave,
// or by default the topic.
func groupName(group, topic string) string {
	if strings.TrimSpace(group) == "" {
		return topic
	}
	return group
}

// group is the consumer group name a subscription with group name name
// uses, before the tenant filter is added (see GroupID):
// "plugin.<id>.<name>". A name that already starts with "plugin.<id>." is
// returned as it is.
func (p *PluginClient) group(name string) string {
	prefix := "plugin." + p.scope.PluginID + "."
	if strings.HasPrefix(name, prefix) {
		return name
	}
	return prefix + name
}

// groupOf makes *PluginClient a Subscriber: see GroupID.
func (p *PluginClient) groupOf(spec HandlerSpec) (string, string, error) {
	topic, err := resolveName(p.bus.client.cfg.TopicRules, spec.name, p.scope.PluginID, spec.pluginID)
	if err != nil {
		return "", "", err
	}
	ws := p.scope.WorkspaceID
	if ws == "" {
		ws = spec.workspaceID
	}
	return topic, filteredGroup(p.group(groupName(spec.groupID, topic)), p.scope.TenantID, ws), nil
}

// scoped wraps a handler so that it sees only the client's tenant and
// workspace: the bus already filters by header, and this second check, a
// string comparison, keeps the isolation of tenants from resting on one.
func (p *PluginClient) scoped(h Handler, workspaceID string) Handler {
	tenant := p.scope.TenantID
	return func(ctx context.Context, ev RawEvent) error {
		if ev.TenantID != tenant || (workspaceID != "" && ev.WorkspaceID != workspaceID) {
			return nil
		}
		return h(ctx, ev)
	}
}

// Unsubscribe stops a subscription made by this client; see
// Bus.Unsubscribe. An ID this client did not return fails with
// ErrSubscriptionNotFound.
func (p *PluginClient) Unsubscribe(ctx context.Context, id string) error {
	if !p.subs.remove(id) {
		return fmt.Errorf("%w: plugin %s (tenant %s) has no subscription %q (already unsubscribed?)",
			ErrSubscriptionNotFound, p.scope.PluginID, p.scope.TenantID, id)
	}
	return p.bus.Unsubscribe(ctx, id)
}

// Close unsubscribes every subscription of this client (the seed's
// unsubscribeAll). The bus stays up; the client may subscribe again.
func (p *PluginClient) Close(ctx context.Context) error {
	return p.subs.closeAll(ctx, p.bus.Unsubscribe)
}

// ownSubscriptions are the IDs of the subscriptions a PluginClient, a
// PluginHost or Handlers made: those its Unsubscribe takes and its Close
// (or Cleanup) ends. The zero value is empty and ready to use.
type ownSubscriptions struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// add records ids.
func (s *ownSubscriptions) add(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]struct{}{}
	}
	for _, id := range ids {
		s.ids[id] = struct{}{}
	}
}

// remove forgets id and reports whether it was recorded.
func (s *ownSubscriptions) remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	delete(s.ids, id)
	return ok
}

// list returns the recorded IDs.
func (s *ownSubscriptions) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.ids))
}

// closeAll forgets every recorded ID, calls unsubscribe with each and joins
// the errors.
func (s *ownSubscriptions) closeAll(ctx context.Context, unsubscribe func(context.Context, string) error) error {
	s.mu.Lock()
	ids := slices.Collect(maps.Keys(s.ids))
	s.ids = nil
	s.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := unsubscribe(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// typedHandler turns a handler of typed events into a Handler. A nil fn
// gives a nil Handler, for Subscribe to reject.
func typedHandler[T any](fn func(context.Context, Event[T]) error) Handler {
	if fn == nil {
		return nil
	}
	if raw, ok := any(fn).(func(context.Context, RawEvent) error); ok {
		return raw // T is json.RawMessage: nothing to decode
	}
	return func(ctx context.Context, raw RawEvent) error {
		ev, err := Decode[T](raw)
		if err != nil {
			return err
		}
		return fn(ctx, ev)
	}
}
