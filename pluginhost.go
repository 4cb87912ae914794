package eventbus

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plexica/eventbus/topic"
)

// PluginHostConfig describes a plugin deployment for NewPluginHost.
type PluginHostConfig struct {
	// PluginID is the plugin's kebab-case ID ("crm"). Required; see
	// ValidatePluginID.
	PluginID string
	// Tenants are the tenants served from the start. More are added and
	// removed at run time with AddTenant and RemoveTenant, or followed from
	// the platform's lifecycle events with FollowLifecycle. Default: none.
	Tenants []string
}

// PluginHost is the event API of one plugin deployment serving a changing
// set of tenants, the many-tenant counterpart of PluginClient: each of its
// subscriptions is one consumer group, "plugin.<id>.<name>", for all the
// tenants it serves (see Plugins in the package documentation). Every
// process of the deployment should build its host with the same plugin ID,
// subscriptions and tenants, since they share each group's partitions: a
// process skips and commits the events of a tenant it does not serve.
// FollowLifecycle keeps every process's tenants in step with the platform.
// It is safe for concurrent use; build one per plugin and process with
// NewPluginHost.
type PluginHost struct {
	bus   *Bus
	proto *PluginClient // the plugin's names (topics, groups); no tenant

	mu      sync.Mutex                               // serializes changes of tenants and followers
	tenants atomic.Pointer[map[string]*PluginClient] // served tenant -> its client
	seen    map[string]int64                         // tenant -> sequence of the last lifecycle event applied (0: none)
	subs    ownSubscriptions                         // made by this host

	running   sync.Map             // tenant -> *atomic.Int64: handler calls under way (DrainTenant)
	followers []*lifecycleFollower // FollowLifecycle's consumers, stopped by Close
	following atomic.Int32         // len(followers), read without mu
	closes    int                  // Close calls: a FollowLifecycle that saw another count fails
	hooks     struct {             // set by tests (export_test.go) before use
		lifecycle, unknownTenant func(tenant string)
		follow                   func()
	}
}

// NewPluginHost returns a host of plugin cfg.PluginID on bus, serving
// cfg.Tenants. It fails, wrapping ErrInvalidPluginID, when the plugin ID is
// not kebab-case, wrapping ErrTenantRequired when a tenant is empty, and
// wrapping ErrInvalidTenantID when a tenant is not a valid tenant ID (see
// ValidateTenantID).
func NewPluginHost(bus *Bus, cfg PluginHostConfig) (*PluginHost, error) {
	if bus == nil {
		return nil, fmt.Errorf("%w: NewPluginHost needs a Bus (see NewBus)", ErrInvalidConfig)
	}
	if err := topic.ValidatePluginID(cfg.PluginID); err != nil {
		return nil, fmt.Errorf("new plugin host: PluginHostConfig.PluginID: %w", err)
	}
	h := &PluginHost{
		bus:   bus,
		proto: &PluginClient{bus: bus, scope: PluginScope{PluginID: cfg.PluginID}},
		seen:  map[string]int64{},
	}
	empty := map[string]*PluginClient{}
	h.tenants.Store(&empty)
	for _, t := range cfg.Tenants {
		if err := h.AddTenant(t); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// PluginID returns the plugin's ID.
func (h *PluginHost) PluginID() string { return h.proto.scope.PluginID }

// AddTenant starts serving tenantID, without a rebalance. After it
// returns, every event of the tenant that the host handles is delivered:
// all published from then on, and those still waiting in a group's
// backlog. Events of the tenant skipped before are not delivered again.
// Adding a served tenant is a no-op. An empty tenant fails with
// ErrTenantRequired; one that is not a valid tenant ID (letters, digits,
// '-' and '_', no dots; see ValidateTenantID) with ErrInvalidTenantID.
func (h *PluginHost) AddTenant(tenantID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addLocked(tenantID)
}

func (h *PluginHost) addLocked(tenantID string) error {
	cur := *h.tenants.Load()
	if _, ok := cur[tenantID]; ok {
		return nil
	}
	c, err := NewPluginClient(h.bus, PluginScope{PluginID: h.PluginID(), TenantID: tenantID})
	if err != nil {
		return fmt.Errorf("plugin host %s: add tenant: %w", h.PluginID(), err)
	}
	next := make(map[string]*PluginClient, len(cur)+1)
	maps.Copy(next, cur)
	next[tenantID] = c
	h.tenants.Store(&next)
	return nil
}

// RemoveTenant stops serving tenantID, without a rebalance, and reports
// whether it was served. No handler call starts for its events after it
// returns; it does not wait for the calls already running, which finish
// (and may publish) as they would have: DrainTenant waits for them. Its
// events are skipped and committed from then on (while the host follows
// the lifecycle, once the lifecycle is read up to them; see
// FollowLifecycle); the other tenants lose nothing.
func (h *PluginHost) RemoveTenant(tenantID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.removeLocked(tenantID)
}

func (h *PluginHost) removeLocked(tenantID string) bool {
	cur := *h.tenants.Load()
	if _, ok := cur[tenantID]; !ok {
		return false
	}
	next := maps.Clone(cur)
	delete(next, tenantID)
	h.tenants.Store(&next)
	return true
}

// DrainTenant waits until no handler call for tenantID runs on the host's
// subscriptions, and fails with ctx's error when ctx ends first. After
// RemoveTenant(tenantID) it returns once the calls that started before
// the removal have finished; none starts after (unless the tenant is
// added again). It does not stop the calls: a handler that never returns
// keeps it waiting until ctx ends.
func (h *PluginHost) DrainTenant(ctx context.Context, tenantID string) error {
	v, ok := h.running.Load(tenantID)
	if !ok {
		return nil
	}
	n := v.(*atomic.Int64)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for n.Load() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("plugin host %s: drain tenant %q: %d handler calls still running: %w", h.PluginID(), tenantID, n.Load(), context.Cause(ctx))
		}
	}
	return nil
}

// Serves reports whether the host serves tenantID.
func (h *PluginHost) Serves(tenantID string) bool {
	_, ok := (*h.tenants.Load())[tenantID]
	return ok
}

// filterWait bounds how long the header filter (serves) holds an event of
// a tenant the host does not serve while the lifecycle is read up to it;
// past it the event is decoded and scoped waits, with the handler's
// context (which a rebalance or shutdown cancels).
const filterWait = 5 * time.Second

// serves is the header filter of the host's subscriptions, without
// allocating for a served tenant. While the host follows the lifecycle, an
// event of another tenant waits (its key only) until the lifecycle is read
// up to it (catchUp), then is checked again, so that it is skipped on its
// headers, undecoded, as before: a record of a tenant the host does not
// serve never reaches its dead letter queue.
func (h *PluginHost) serves(tenant []byte) bool {
	if _, ok := (*h.tenants.Load())[string(tenant)]; ok {
		return true
	}
	if h.following.Load() == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), filterWait)
	defer cancel()
	if err := h.catchUp(ctx, string(tenant)); err != nil {
		return true // not read up to it in time: scoped waits on
	}
	_, ok := (*h.tenants.Load())[string(tenant)]
	return ok
}

// Tenants returns the served tenants, sorted.
func (h *PluginHost) Tenants() []string {
	return slices.Sorted(maps.Keys(*h.tenants.Load()))
}

// Client returns the PluginClient of a served tenant: it publishes the
// plugin's events as that tenant (and may subscribe per-tenant groups). A
// tenant the host does not serve fails with ErrPluginScope. A client keeps
// working after its tenant is removed; ask again to check.
func (h *PluginHost) Client(tenantID string) (*PluginClient, error) {
	if c, ok := (*h.tenants.Load())[tenantID]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w: plugin %q does not serve tenant %q (see PluginHost.AddTenant)", ErrPluginScope, h.PluginID(), tenantID)
}

// groupOf makes *PluginHost a Subscriber: see GroupID. Unlike a
// PluginClient's, the group has no tenant suffix: it is the same for
// every tenant.
func (h *PluginHost) groupOf(spec HandlerSpec) (string, string, error) {
	topic, err := resolveName(h.bus.client.cfg.TopicRules, spec.name, h.PluginID(), spec.pluginID)
	if err != nil {
		return "", "", err
	}
	return topic, h.proto.group(groupName(spec.groupID, topic)), nil
}

// resolvePublish makes *PluginHost a Publisher (see WithPublish): the
// tenant comes from the event context of ctx and must be served.
func (h *PluginHost) resolvePublish(ctx context.Context, eventName string) (*Bus, string, PublishMetadata, error) {
	m, _ := EventContextFrom(ctx)
	if strings.TrimSpace(m.TenantID) == "" {
		return nil, "", PublishMetadata{}, fmt.Errorf("%w: plugin host %s publishes %q for the tenant of the context: publish from a handler, "+
			"or set it with eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: \"acme\"}), or use host.Client(tenant)",
			ErrTenantRequired, h.PluginID(), eventName)
	}
	c, err := h.Client(m.TenantID)
	if err != nil {
		return nil, "", PublishMetadata{}, fmt.Errorf("publish %q: %w", eventName, err)
	}
	return c.resolvePublish(ctx, eventName)
}

// scoped wraps a handler so that it sees only served tenants (checked
// again at the call, so a tenant removed after its event passed the
// header filter is not called). While the host follows the lifecycle, an
// event of a tenant it does not serve is held (its key waits, nothing is
// committed) until the lifecycle topics have been applied up to their end
// offsets listed after the event was fetched, then checked again: an
// install published before the tenant's event is applied first.
func (h *PluginHost) scoped(handler Handler) Handler {
	return func(ctx context.Context, ev RawEvent) error {
		if !h.Serves(ev.TenantID) {
			if err := h.catchUp(ctx, ev.TenantID); err != nil {
				return err
			}
			if !h.Serves(ev.TenantID) {
				return nil
			}
		}
		// Counted before the check that RemoveTenant's promise rests on,
		// so that DrainTenant sees every call that passed it.
		v, ok := h.running.Load(ev.TenantID)
		if !ok {
			v, _ = h.running.LoadOrStore(ev.TenantID, new(atomic.Int64))
		}
		n := v.(*atomic.Int64)
		n.Add(1)
		defer n.Add(-1)
		if !h.Serves(ev.TenantID) {
			return nil // removed meanwhile
		}
		return handler(ctx, ev)
	}
}

// catchUp waits until every follower of the host has applied the
// lifecycle topics up to their end offsets as of now. It fails only when
// ctx ends first (the event is then not finished); a follower that stops
// meanwhile (Close, Shutdown) no longer counts.
func (h *PluginHost) catchUp(ctx context.Context, tenant string) error {
	h.mu.Lock()
	fs := slices.Clone(h.followers)
	h.mu.Unlock()
	if len(fs) == 0 {
		return nil
	}
	if hook := h.hooks.unknownTenant; hook != nil {
		hook(tenant)
	}
	for _, f := range fs {
		if err := f.sync(ctx); err != nil && ctx.Err() != nil {
			return fmt.Errorf("plugin host %s: event of tenant %q held until the lifecycle is read: %w", h.PluginID(), tenant, context.Cause(ctx))
		}
	}
	return nil
}

// Unsubscribe stops a subscription made by this host; see Bus.Unsubscribe.
// An ID this host did not return fails with ErrSubscriptionNotFound.
func (h *PluginHost) Unsubscribe(ctx context.Context, id string) error {
	if !h.subs.remove(id) {
		return fmt.Errorf("%w: plugin host %s has no subscription %q (already unsubscribed?)", ErrSubscriptionNotFound, h.PluginID(), id)
	}
	return h.bus.Unsubscribe(ctx, id)
}

// Close unsubscribes every subscription of the host, then stops its
// lifecycle consumers (FollowLifecycle): after it returns no lifecycle
// event changes the host's tenants, and a FollowLifecycle still starting
// or catching up fails with ErrHostClosed. The bus stays up and the tenant
// set is kept; the host may subscribe, and follow, again.
func (h *PluginHost) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closes++
	h.mu.Unlock()
	err := h.subs.closeAll(ctx, h.bus.Unsubscribe)
	h.mu.Lock()
	fs := h.followers
	h.followers = nil
	h.following.Store(0)
	h.mu.Unlock()
	for _, f := range fs {
		f.stop(fmt.Errorf("%w: plugin host %s", ErrHostClosed, h.PluginID()))
	}
	return err
}

// dropFollower forgets f (after its FollowLifecycle failed) and stops it.
func (h *PluginHost) dropFollower(f *lifecycleFollower, cause error) {
	h.mu.Lock()
	if i := slices.Index(h.followers, f); i >= 0 {
		h.followers = slices.Delete(h.followers, i, i+1)
		h.following.Store(int32(len(h.followers)))
	}
	h.mu.Unlock()
	f.stop(cause)
}

// subscribeSpec makes *PluginHost a Subscriber: it delivers the events of
// every tenant the host serves in one consumer group for all of them (see
// GroupID). ForTenant and ForWorkspace are not supported (a host serves
// whole tenants; filter workspaces in the handler, or use a PluginClient)
// and fail with ErrInvalidConfig.
func (h *PluginHost) subscribeSpec(ctx context.Context, spec HandlerSpec) (string, error) {
	if spec.tenantID != "" || spec.workspaceID != "" {
		return "", fmt.Errorf("%w: subscribe %q: a plugin host serves the tenants added to it (AddTenant), not ForTenant/ForWorkspace "+
			"(filter by Event.WorkspaceID in the handler, or subscribe on a PluginClient)", ErrInvalidConfig, spec.name)
	}
	topic, err := resolveName(h.bus.client.cfg.TopicRules, spec.name, h.PluginID(), spec.pluginID)
	if err != nil {
		return "", err
	}
	if spec.handler == nil {
		return "", fmt.Errorf("%w: Subscribe(%q) was given a nil handler", ErrInvalidConfig, spec.name)
	}
	id, err := h.bus.subscribe(ctx, topic, h.scoped(spec.handler), subscribeOptions{
		GroupID:  h.proto.group(groupName(spec.groupID, topic)),
		Delivery: spec.delivery,
	}, h.serves)
	if err != nil {
		return "", err
	}
	h.subs.add(id)
	return id, nil
}

// FollowOptions say how FollowLifecycle reads the platform's lifecycle
// events.
type FollowOptions struct {
	// FromBeginning replays the retained lifecycle events first, so the
	// host rebuilds its tenant set from the platform's history (within the
	// topics' retention); FollowLifecycle returns once the replay is
	// applied. Default: only lifecycle events published from now on; give
	// the current tenants in PluginHostConfig.Tenants.
	FromBeginning bool
}

// lifecycleEvents are the core events FollowLifecycle reads: installs and
// activations add a tenant, deactivations and uninstalls remove it.
var lifecycleEvents = []string{
	"core.plugin.installed", "core.plugin.activated",
	"core.plugin.deactivated", "core.plugin.uninstalled",
}

// FollowLifecycle makes the host follow the platform: a core.plugin.installed
// or core.plugin.activated event of this plugin adds its tenant, and a
// core.plugin.deactivated or core.plugin.uninstalled event removes it.
// Events of other plugins are ignored. The tenant is the data's tenantId,
// else the event's; an event whose data names another tenant than the
// event (or whose tenant-id header disagrees with it) is ignored and
// logged, never applied to either tenant.
//
// It returns once the lifecycle topics have been read and applied up to
// their end offsets as of the call: with FollowOptions.FromBeginning the
// host then serves exactly the tenants the retained history leaves
// installed and active; without it, at once. It fails when ctx ends first
// (the host then does not follow), and with ErrHostClosed when Close runs
// meanwhile.
//
// Order: the publishers' clocks never decide. Within a partition events
// apply in log order; events read after the call apply in the order read.
// When an event's data carries a "sequence" (a number the platform
// increases with each lifecycle event of a plugin and tenant) and the last
// event applied for that tenant carried one too, an event with a lower
// sequence is ignored. A replay (FromBeginning) gives each tenant the
// state of its last retained event: the highest sequence when all of the
// tenant's events carry one, else — the four topics having no common
// order — the latest event timestamp.
//
// While the host follows, its subscriptions hold an event of a tenant it
// does not serve (its key waits; nothing is committed) until the
// lifecycle topics have been applied up to their end offsets listed after
// the event was fetched, then check again: a tenant's events published
// after its install are never skipped because the install was read late.
// Events of tenants the host does not serve so cost, before they are
// skipped on their headers, a shared wait: one ListOffsets request for all
// the events waiting at that moment, plus the lifecycle consumer's lag;
// one event per key waits at a time. A wait longer than 5 s (the
// lifecycle cannot be read) goes on after the event is decoded, with the
// handler's context, so that a rebalance or shutdown ends it (the event
// is then not committed).
//
// The lifecycle topics are read by a consumer of the host's own, without
// a consumer group, so every process sees every lifecycle event and
// nothing is left on the broker when a process restarts: no group per
// call. The plugin must be allowed to read the core.plugin. topics
// (pluginacl.Access.CoreTopics). Partitions added to those topics after
// the call are not read; follow again (Close, FollowLifecycle) to read
// them. Close and Bus.Shutdown stop it.
func (h *PluginHost) FollowLifecycle(ctx context.Context, opts FollowOptions) error {
	h.mu.Lock()
	closes := h.closes
	h.mu.Unlock()
	f, ends, err := h.newFollower(ctx, opts.FromBeginning)
	if err != nil {
		return fmt.Errorf("plugin host %s: follow the lifecycle: %w", h.PluginID(), err)
	}
	h.mu.Lock()
	if h.closes != closes {
		h.mu.Unlock()
		f.cl.Close()
		return fmt.Errorf("%w: plugin host %s was closed while FollowLifecycle started", ErrHostClosed, h.PluginID())
	}
	h.followers = append(h.followers, f)
	h.following.Store(int32(len(h.followers)))
	h.mu.Unlock()
	var replayTo lifecycleOffsets
	if opts.FromBeginning {
		replayTo = ends
	}
	go f.run(replayTo)
	if hook := h.hooks.follow; hook != nil {
		hook()
	}
	if err := f.waitApplied(ctx, ends); err != nil {
		err = fmt.Errorf("plugin host %s: follow the lifecycle: %w", h.PluginID(), err)
		h.dropFollower(f, err)
		return err
	}
	return nil
}
