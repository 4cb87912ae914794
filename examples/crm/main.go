// Command crm is the sample CRM plugin of Plexica, written against the
// public API of github.com/plexica/eventbus only. One deployment serves
// many tenants through an eventbus.PluginHost; for each tenant it serves,
// it
//
//   - turns each new user of the tenant (core.user.created) into a contact
//     and publishes plugin.crm.contact.created;
//   - publishes plugin.crm.deal.updated when a deal changes, and keeps its
//     pipeline (deals per stage) from its own deal.updated events.
//
// Both handlers share the consumer group "crm-sync": one group,
// plugin.crm.crm-sync, for every tenant, reading each event once. The
// tenants are given on the command line and, with -follow, followed from
// the platform's core.plugin.installed/uninstalled events. Run it next to
// `eventbus serve`:
//
//	go run ./examples/crm -brokers 127.0.0.1:9092 -tenants acme,globex -follow
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
)

// PluginID is the plugin's ID: its topics are plugin.crm.*.
const PluginID = "crm"

// Event names of the plugin (topics plugin.crm.<name>).
const (
	ContactCreatedEvent = "contact.created"
	DealUpdatedEvent    = "deal.updated"
)

// ContactCreated is the data of plugin.crm.contact.created.
type ContactCreated struct {
	ContactID string `json:"contactId"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	UserID    string `json:"userId,omitempty"`
}

// DealUpdated is the data of plugin.crm.deal.updated.
type DealUpdated struct {
	DealID string `json:"dealId"`
	Stage  string `json:"stage"`
	Amount int64  `json:"amount"`
}

// Stages are the pipeline stages a deal can be in.
var Stages = []string{"lead", "qualified", "proposal", "won", "lost"}

// NewContact is what CreateContact takes.
type NewContact struct {
	Name, Email, UserID string
}

// CRM is the plugin's state for one tenant: its contacts and deals, and
// the operations that publish them.
type CRM struct {
	// CreateContact stores a contact and publishes contact.created.
	CreateContact func(context.Context, NewContact) (ContactCreated, error)
	// UpdateDeal validates a deal change and publishes deal.updated.
	UpdateDeal func(context.Context, DealUpdated) (DealUpdated, error)

	mu       sync.Mutex
	contacts []ContactCreated
	deals    map[string]string // deal ID -> stage
}

// NewCRM returns the plugin for the tenant of events.
func NewCRM(events *eventbus.PluginClient) *CRM {
	c := &CRM{deals: map[string]string{}}
	c.CreateContact = eventbus.WithPublish(events, ContactCreatedEvent, c.createContact)
	c.UpdateDeal = eventbus.WithPublish(events, DealUpdatedEvent, checkDeal)
	return c
}

func (c *CRM) createContact(_ context.Context, in NewContact) (ContactCreated, error) {
	if in.Email == "" {
		return ContactCreated{}, errors.New("crm: a contact needs an email")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ct := ContactCreated{ContactID: fmt.Sprintf("c-%d", len(c.contacts)+1), Name: in.Name, Email: in.Email, UserID: in.UserID}
	c.contacts = append(c.contacts, ct)
	return ct, nil
}

func checkDeal(_ context.Context, d DealUpdated) (DealUpdated, error) {
	if d.DealID == "" || !slices.Contains(Stages, d.Stage) {
		return DealUpdated{}, fmt.Errorf("crm: deal %q: stage %q is not one of %v", d.DealID, d.Stage, Stages)
	}
	return d, nil
}

// onUserCreated makes the new user a contact. Delivery is at-least-once, so
// a user who already is a contact is skipped.
func (c *CRM) onUserCreated(ctx context.Context, ev eventbus.Event[catalog.UserCreatedData]) error {
	c.mu.Lock()
	known := slices.ContainsFunc(c.contacts, func(ct ContactCreated) bool { return ct.UserID == ev.Data.UserID })
	c.mu.Unlock()
	if known {
		return nil
	}
	_, err := c.CreateContact(ctx, NewContact{Name: ev.Data.Email, Email: ev.Data.Email, UserID: ev.Data.UserID})
	return err
}

func (c *CRM) onDealUpdated(_ context.Context, ev eventbus.Event[DealUpdated]) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deals[ev.Data.DealID] = ev.Data.Stage
	return nil
}

// Contacts returns the tenant's contacts.
func (c *CRM) Contacts() []ContactCreated {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.contacts)
}

// Pipeline returns the number of deals in each stage.
func (c *CRM) Pipeline() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for _, stage := range c.deals {
		out[stage]++
	}
	return out
}

// Config says where the brokers are and which tenants the plugin serves.
type Config struct {
	Brokers []string
	// Tenants are served from the start.
	Tenants []string
	// Follow makes the plugin follow the platform's lifecycle events
	// (core.plugin.installed, .activated, .deactivated, .uninstalled of
	// crm): tenants are added and removed as they install it.
	Follow bool
	// InstanceID, when set, makes the plugin a static member of its
	// consumer groups (eventbus.ConsumerConfig.InstanceID): a restart
	// takes its partitions back at once instead of after the session
	// timeout. Stable across restarts, unique among the plugin's
	// instances: main takes it from EVENTBUS_INSTANCE_ID (set it to the
	// pod name).
	InstanceID string
	// SASL, when set, logs in with the plugin's credentials (see
	// TopicManager.ProvisionPlugin).
	SASL   *eventbus.SASLConfig
	Logger *slog.Logger
	// Ready, when set, is called by Run once the handlers are subscribed.
	Ready func(*Plugin)
}

// Plugin is the running plugin: one PluginHost for every tenant, and each
// tenant's CRM, made when the tenant's first event arrives.
type Plugin struct {
	client   *eventbus.Client
	bus      *eventbus.Bus
	host     *eventbus.PluginHost
	handlers *eventbus.Handlers

	mu      sync.Mutex
	tenants map[string]*CRM
}

// Start connects and subscribes the handlers, once for all tenants.
func Start(ctx context.Context, cfg Config) (*Plugin, error) {
	if len(cfg.Tenants) == 0 && !cfg.Follow {
		return nil, errors.New("crm: no tenants to serve (give some, or follow the platform's installs)")
	}
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: cfg.Brokers, ClientID: PluginID, SASL: cfg.SASL, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	if err := client.Connect(ctx); err != nil {
		return nil, err
	}
	bus, err := eventbus.NewBus(client, eventbus.Config{Source: PluginID, Consumer: eventbus.ConsumerConfig{InstanceID: cfg.InstanceID}})
	if err != nil {
		client.Close()
		return nil, err
	}
	p := &Plugin{client: client, bus: bus, tenants: map[string]*CRM{}}
	if p.host, err = eventbus.NewPluginHost(bus, eventbus.PluginHostConfig{PluginID: PluginID, Tenants: cfg.Tenants}); err == nil {
		if cfg.Follow {
			err = p.host.FollowLifecycle(ctx, eventbus.FollowOptions{})
		}
		if err == nil {
			p.handlers, err = eventbus.InitializeHandlers(ctx, p.host, p)
		}
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("crm: %w", err), p.Stop(context.WithoutCancel(ctx)))
	}
	return p, nil
}

// EventHandlers declares the plugin's handlers, for every tenant: both in
// group crm-sync. Each event goes to its tenant's CRM.
func (p *Plugin) EventHandlers() []eventbus.HandlerSpec {
	return []eventbus.HandlerSpec{
		eventbus.On(catalog.UserCreated, func(ctx context.Context, ev eventbus.Event[catalog.UserCreatedData]) error {
			c, err := p.crm(ev.TenantID)
			if err != nil {
				return err
			}
			return c.onUserCreated(ctx, ev)
		}, eventbus.InGroup("crm-sync")),
		eventbus.On(DealUpdatedEvent, func(ctx context.Context, ev eventbus.Event[DealUpdated]) error {
			c, err := p.crm(ev.TenantID)
			if err != nil {
				return err
			}
			return c.onDealUpdated(ctx, ev)
		}, eventbus.InGroup("crm-sync")),
	}
}

// crm returns the CRM of a served tenant, making it on first use.
func (p *Plugin) crm(tenant string) (*CRM, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.tenants[tenant]; ok {
		return c, nil
	}
	events, err := p.host.Client(tenant)
	if err != nil {
		return nil, err
	}
	c := NewCRM(events)
	p.tenants[tenant] = c
	return c, nil
}

// Host returns the plugin's host: AddTenant and RemoveTenant change the
// tenants it serves.
func (p *Plugin) Host() *eventbus.PluginHost { return p.host }

// Tenant returns the CRM of a tenant the plugin serves, or nil.
func (p *Plugin) Tenant(id string) *CRM {
	c, err := p.crm(id)
	if err != nil {
		return nil
	}
	return c
}

// Stop unsubscribes the handlers and shuts the bus down.
func (p *Plugin) Stop(ctx context.Context) error {
	var errs []error
	errs = append(errs, p.handlers.Cleanup(ctx))
	if p.host != nil {
		errs = append(errs, p.host.Close(ctx))
	}
	errs = append(errs, p.bus.Shutdown(ctx))
	p.client.Close()
	return errors.Join(errs...)
}

// Run runs the plugin until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	p, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	if cfg.Ready != nil {
		cfg.Ready(p)
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return p.Stop(stopCtx)
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated brokers")
	tenants := flag.String("tenants", "acme", "comma-separated tenants to serve from the start")
	follow := flag.Bool("follow", false, "follow the platform's installs and uninstalls of the plugin")
	instance := flag.String("instance-id", os.Getenv(EnvInstanceID), "stable ID of this instance in its consumer groups, for restarts without waiting out the session timeout; set it to the pod name (env "+EnvInstanceID+")")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, Config{
		Brokers:    strings.Split(*brokers, ","),
		Tenants:    splitList(*tenants),
		Follow:     *follow,
		InstanceID: *instance,
		Ready:      func(*Plugin) { slog.Info("crm plugin running", "tenants", *tenants, "follow", *follow) },
	})
	if err != nil {
		slog.Error("crm plugin failed", "err", err)
		os.Exit(1)
	}
}

// EnvInstanceID names the instance ID main passes to Config.InstanceID.
const EnvInstanceID = "EVENTBUS_INSTANCE_ID"

// splitList splits a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
