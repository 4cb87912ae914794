// Package pluginrun runs a plugin deployment in one call: it connects a
// client, builds a bus and an eventbus.PluginHost on it, follows the
// platform's lifecycle when asked, subscribes the plugin's handlers once
// for every tenant, keeps one value of the plugin's state per served
// tenant (made when first needed, dropped when the tenant is removed), and
// stops all of it in the right order. A plugin then holds only its
// business logic:
//
//	type CRM struct{ ... }                            // one tenant's state
//	func NewCRM(events *eventbus.PluginClient) *CRM    // publishes as that tenant
//	func (c *CRM) onUserCreated(ctx context.Context, ev eventbus.Event[catalog.UserCreatedData]) error
//
//	err := pluginrun.Run(ctx, pluginrun.Config{
//		PluginID: "crm",
//		Client:   eventbus.ClientConfig{Brokers: brokers},
//		Tenants:  []string{"acme"},
//		Follow:   true,
//	}, NewCRM, func(d *pluginrun.Deployment[CRM]) []eventbus.HandlerSpec {
//		return []eventbus.HandlerSpec{
//			eventbus.On(catalog.UserCreated, pluginrun.Handle(d, (*CRM).onUserCreated), eventbus.InGroup("crm-sync")),
//		}
//	})
//
// The tenants change at run time through Deployment.Host (AddTenant,
// RemoveTenant) or, with Config.Follow, through the platform's
// core.plugin.* events; no rebalance either way. See Plugins in the
// documentation of package eventbus for what a PluginHost guarantees.
package pluginrun

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/topic"
)

// ErrTenantNotServed is returned (wrapped) by Deployment.Tenant for a
// tenant the deployment does not serve; it wraps eventbus.ErrPluginScope.
var ErrTenantNotServed = fmt.Errorf("%w: tenant not served by this deployment", eventbus.ErrPluginScope)

// Config describes a plugin deployment.
type Config struct {
	// PluginID is the plugin's kebab-case ID ("crm"). Required.
	PluginID string
	// Client is the connection. Brokers is required; ClientID defaults
	// to PluginID. Give SASL the plugin's credentials (see
	// pluginacl.Provision) where the brokers enforce ACLs.
	Client eventbus.ClientConfig
	// Bus configures the bus; Source defaults to PluginID. Set
	// Consumer.InstanceID for restarts without waiting out the session
	// timeout.
	Bus eventbus.Config
	// Tenants are served from the start.
	Tenants []string
	// Follow makes the deployment follow the platform's lifecycle events
	// (eventbus.PluginHost.FollowLifecycle): an install or activation of
	// the plugin adds its tenant, a deactivation or uninstall removes it.
	Follow bool
	// FollowFromBeginning, with Follow, rebuilds the tenant set from the
	// retained lifecycle history before Start returns.
	FollowFromBeginning bool
	// Intercept, when set, runs around every handler call that Handle
	// routes: it gets the event (its data, of the handler's type, in an
	// any) and the call, and returns what the handler returns, so it may
	// observe, fail or skip the call. For instrumentation; `eventbus demo`
	// narrates the plugins and plans a failure with it.
	Intercept func(ctx context.Context, ev eventbus.Event[any], handle func(context.Context) error) error
}

// Deployment is a running plugin deployment: a client, a bus, a host and
// the handlers on it, and the state of each served tenant (of type S).
// It is safe for concurrent use.
type Deployment[S any] struct {
	client    *eventbus.Client
	bus       *eventbus.Bus
	host      *eventbus.PluginHost
	handlers  *eventbus.Handlers
	newState  func(*eventbus.PluginClient) *S
	intercept func(context.Context, eventbus.Event[any], func(context.Context) error) error

	mu     sync.Mutex
	states map[string]*S
}

// Start connects, builds the bus and the host, follows the lifecycle when
// cfg.Follow says so, and subscribes the handlers that handlers returns
// (called once, with the deployment, so that they can route events with
// Handle) on the host: once for every tenant. newState makes a tenant's
// state from the tenant's PluginClient (which publishes as that tenant).
// Every subscription has joined its group when Start returns. It fails
// when the configuration is invalid (the eventbus sentinels), when no
// tenant is given and none is followed (eventbus.ErrInvalidConfig), or
// when the brokers cannot be reached; what it built is then stopped.
func Start[S any](ctx context.Context, cfg Config, newState func(*eventbus.PluginClient) *S,
	handlers func(*Deployment[S]) []eventbus.HandlerSpec) (*Deployment[S], error) {
	if newState == nil || handlers == nil {
		return nil, fmt.Errorf("%w: pluginrun.Start needs a function making a tenant's state and one declaring the handlers", eventbus.ErrInvalidConfig)
	}
	if len(cfg.Tenants) == 0 && !cfg.Follow {
		return nil, fmt.Errorf("%w: plugin %s has no tenants to serve: give Config.Tenants, or set Config.Follow to follow the platform's installs",
			eventbus.ErrInvalidConfig, cfg.PluginID)
	}
	if err := topic.ValidatePluginID(cfg.PluginID); err != nil {
		return nil, fmt.Errorf("pluginrun: Config.PluginID: %w", err)
	}
	if cfg.Client.ClientID == "" {
		cfg.Client.ClientID = cfg.PluginID
	}
	if cfg.Bus.Source == "" {
		cfg.Bus.Source = cfg.PluginID
	}
	client, err := eventbus.NewClient(cfg.Client)
	if err != nil {
		return nil, err
	}
	if err := client.Connect(ctx); err != nil {
		client.Close()
		return nil, err
	}
	bus, err := eventbus.NewBus(client, cfg.Bus)
	if err != nil {
		client.Close()
		return nil, err
	}
	d := &Deployment[S]{client: client, bus: bus, newState: newState, intercept: cfg.Intercept, states: map[string]*S{}}
	d.host, err = eventbus.NewPluginHost(bus, eventbus.PluginHostConfig{PluginID: cfg.PluginID, Tenants: cfg.Tenants})
	if err == nil && cfg.Follow {
		err = d.host.FollowLifecycle(ctx, eventbus.FollowOptions{FromBeginning: cfg.FollowFromBeginning})
	}
	if err == nil {
		d.handlers, err = eventbus.InitializeHandlers(ctx, d.host, handlerList(handlers(d)))
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("plugin %s: %w", cfg.PluginID, err), d.Stop(context.WithoutCancel(ctx)))
	}
	return d, nil
}

// Run starts the deployment (see Start), calls ready with it when ready is
// not nil, runs until ctx ends, and stops it (see Stop; bounded by
// Config.Bus.ShutdownTimeout).
func Run[S any](ctx context.Context, cfg Config, newState func(*eventbus.PluginClient) *S,
	handlers func(*Deployment[S]) []eventbus.HandlerSpec, ready ...func(*Deployment[S])) error {
	d, err := Start(ctx, cfg, newState, handlers)
	if err != nil {
		return err
	}
	for _, r := range ready {
		if r != nil {
			r(d)
		}
	}
	<-ctx.Done()
	return d.Stop(context.WithoutCancel(ctx))
}

// handlerList is a HandlerSet of a fixed list.
type handlerList []eventbus.HandlerSpec

func (l handlerList) EventHandlers() []eventbus.HandlerSpec { return l }

// Handle routes an event to the state of its tenant: the returned handler
// calls fn with the state of the event's tenant (made by Start's newState
// when first needed), so a plugin's handlers are methods of its state:
//
//	eventbus.On(catalog.UserCreated, pluginrun.Handle(d, (*CRM).onUserCreated))
//
// The host calls handlers only for served tenants; an event of a tenant
// removed between the host's check and this one is skipped, as the host
// skips the events of a tenant it does not serve.
func Handle[S, T any](d *Deployment[S], fn func(*S, context.Context, eventbus.Event[T]) error) func(context.Context, eventbus.Event[T]) error {
	return func(ctx context.Context, ev eventbus.Event[T]) error {
		s, err := d.Tenant(ev.TenantID)
		if errors.Is(err, ErrTenantNotServed) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.intercept == nil {
			return fn(s, ctx, ev)
		}
		return d.intercept(ctx, eventbus.Event[any]{
			ID: ev.ID, Type: ev.Type, TenantID: ev.TenantID, WorkspaceID: ev.WorkspaceID,
			Timestamp: ev.Timestamp, Data: ev.Data, Metadata: ev.Metadata,
		}, func(ctx context.Context) error { return fn(s, ctx, ev) })
	}
}

// Tenant returns the state of a served tenant, making it on first use. A
// tenant the host does not serve (never added, or removed) fails with
// ErrTenantNotServed, and its state, if any, is dropped: a tenant added
// again starts afresh.
func (d *Deployment[S]) Tenant(tenantID string) (*S, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	events, err := d.host.Client(tenantID)
	if err != nil {
		delete(d.states, tenantID)
		return nil, fmt.Errorf("%w: plugin %s, tenant %q (see Host().AddTenant)", ErrTenantNotServed, d.host.PluginID(), tenantID)
	}
	if s, ok := d.states[tenantID]; ok {
		return s, nil
	}
	s := d.newState(events)
	d.states[tenantID] = s
	return s, nil
}

// Host returns the deployment's host: AddTenant and RemoveTenant change
// the tenants it serves at run time, Tenants lists them.
func (d *Deployment[S]) Host() *eventbus.PluginHost { return d.host }

// Bus returns the deployment's bus.
func (d *Deployment[S]) Bus() *eventbus.Bus { return d.bus }

// Stop unsubscribes the handlers, stops following the lifecycle, shuts the
// bus down (bounded by ctx's deadline, else Config.Bus.ShutdownTimeout)
// and closes the client, in that order, and joins their errors.
func (d *Deployment[S]) Stop(ctx context.Context) error {
	var errs []error
	errs = append(errs, d.handlers.Cleanup(ctx))
	if d.host != nil {
		errs = append(errs, d.host.Close(ctx))
	}
	errs = append(errs, d.bus.Shutdown(ctx))
	d.client.Close()
	return errors.Join(errs...)
}
