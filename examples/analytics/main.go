// Command analytics is the sample-analytics plugin of Plexica, written
// against the public API of github.com/plexica/eventbus only. One
// deployment serves many tenants through an eventbus.PluginHost (one
// consumer group per subscription for all of them); for each tenant it
// serves, it counts
//
//   - the CRM plugin's events: plugin.crm.contact.created and
//     plugin.crm.deal.updated (another plugin's events);
//   - core events: core.user.login, core.user.logout and core.api.request;
//
// and publishes plugin.sample-analytics.summary.generated, with the
// tenant's counts, every SummaryEvery events. Each tenant's counts only
// ever include that tenant's events. With -follow, tenants are added and
// removed as they install and uninstall the plugin.
//
//	go run ./examples/analytics -brokers 127.0.0.1:9092 -tenants acme,globex -follow
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
)

// PluginID is the plugin's ID: its topics are plugin.sample-analytics.*.
const PluginID = "sample-analytics"

// SummaryGeneratedEvent is the plugin's own event.
const SummaryGeneratedEvent = "summary.generated"

// SummaryGenerated is the data of plugin.sample-analytics.summary.generated.
type SummaryGenerated struct {
	// Counts maps event types to the number of events counted.
	Counts map[string]int `json:"counts"`
	Total  int            `json:"total"`
}

// Analytics is the plugin's state for one tenant.
type Analytics struct {
	summaryEvery int
	publish      func(context.Context, SummaryGenerated) (SummaryGenerated, error)

	mu     sync.Mutex
	counts map[string]int
	total  int
}

// NewAnalytics returns the plugin for the tenant of events; it publishes a
// summary every summaryEvery events (100 when summaryEvery is 0).
func NewAnalytics(events *eventbus.PluginClient, summaryEvery int) *Analytics {
	if summaryEvery <= 0 {
		summaryEvery = 100
	}
	a := &Analytics{summaryEvery: summaryEvery, counts: map[string]int{}}
	a.publish = eventbus.WithPublish(events, SummaryGeneratedEvent,
		func(_ context.Context, s SummaryGenerated) (SummaryGenerated, error) { return s, nil })
	return a
}

// count counts any event; it needs no field of the data.
func (a *Analytics) count(ctx context.Context, ev eventbus.Event[any]) error {
	a.mu.Lock()
	a.counts[ev.Type]++
	a.total++
	var summary *SummaryGenerated
	if a.total%a.summaryEvery == 0 {
		summary = &SummaryGenerated{Counts: maps.Clone(a.counts), Total: a.total}
	}
	a.mu.Unlock()
	if summary != nil {
		if _, err := a.publish(ctx, *summary); err != nil {
			return err
		}
	}
	return nil
}

// Counts returns the tenant's counts by event type.
func (a *Analytics) Counts() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.counts)
}

// Config says where the brokers are and which tenants the plugin serves.
type Config struct {
	Brokers []string
	// Tenants are served from the start.
	Tenants []string
	// Follow makes the plugin follow the platform's installs and
	// uninstalls of sample-analytics (see PluginHost.FollowLifecycle).
	Follow bool
	// SummaryEvery is how many events of a tenant make a summary. Default 100.
	SummaryEvery int
	// InstanceID, when set, makes the plugin a static member of its
	// consumer groups (eventbus.ConsumerConfig.InstanceID): a restart
	// takes its partitions back at once instead of after the session
	// timeout. Stable across restarts, unique among the plugin's
	// instances: main takes it from EVENTBUS_INSTANCE_ID (set it to the
	// pod name).
	InstanceID string
	// SASL, when set, logs in with the plugin's credentials.
	SASL   *eventbus.SASLConfig
	Logger *slog.Logger
	// Ready, when set, is called by Run once the handlers are subscribed.
	Ready func(*Plugin)
}

// Plugin is the running plugin: one PluginHost for every tenant, and each
// tenant's Analytics, made when the tenant's first event arrives.
type Plugin struct {
	client       *eventbus.Client
	bus          *eventbus.Bus
	host         *eventbus.PluginHost
	handlers     *eventbus.Handlers
	summaryEvery int

	mu      sync.Mutex
	tenants map[string]*Analytics
}

// Start connects and subscribes the handlers, once for all tenants.
func Start(ctx context.Context, cfg Config) (*Plugin, error) {
	if len(cfg.Tenants) == 0 && !cfg.Follow {
		return nil, errors.New("analytics: no tenants to serve (give some, or follow the platform's installs)")
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
	p := &Plugin{client: client, bus: bus, summaryEvery: cfg.SummaryEvery, tenants: map[string]*Analytics{}}
	if p.host, err = eventbus.NewPluginHost(bus, eventbus.PluginHostConfig{PluginID: PluginID, Tenants: cfg.Tenants}); err == nil {
		if cfg.Follow {
			err = p.host.FollowLifecycle(ctx, eventbus.FollowOptions{})
		}
		if err == nil {
			p.handlers, err = eventbus.InitializeHandlers(ctx, p.host, p)
		}
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("analytics: %w", err), p.Stop(context.WithoutCancel(ctx)))
	}
	return p, nil
}

// EventHandlers declares what the plugin counts, for every tenant; each
// event is counted by its tenant's Analytics.
func (p *Plugin) EventHandlers() []eventbus.HandlerSpec {
	return []eventbus.HandlerSpec{
		eventbus.On("contact.created", p.count, eventbus.FromPlugin("crm"), eventbus.InGroup("crm-activity")),
		eventbus.On("deal.updated", p.count, eventbus.FromPlugin("crm"), eventbus.InGroup("crm-activity")),
		eventbus.On(eventbus.Name[any](catalog.UserLogin), p.count, eventbus.InGroup("sessions")),
		eventbus.On(eventbus.Name[any](catalog.UserLogout), p.count, eventbus.InGroup("sessions")),
		eventbus.On(eventbus.Name[any](catalog.APIRequest), p.count, eventbus.InGroup("api-usage")),
	}
}

func (p *Plugin) count(ctx context.Context, ev eventbus.Event[any]) error {
	a, err := p.analytics(ev.TenantID)
	if err != nil {
		return err
	}
	return a.count(ctx, ev)
}

// analytics returns the Analytics of a served tenant, making it on first use.
func (p *Plugin) analytics(tenant string) (*Analytics, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.tenants[tenant]; ok {
		return a, nil
	}
	events, err := p.host.Client(tenant)
	if err != nil {
		return nil, err
	}
	a := NewAnalytics(events, p.summaryEvery)
	p.tenants[tenant] = a
	return a, nil
}

// Host returns the plugin's host: AddTenant and RemoveTenant change the
// tenants it serves.
func (p *Plugin) Host() *eventbus.PluginHost { return p.host }

// Tenant returns the analytics of a tenant the plugin serves, or nil.
func (p *Plugin) Tenant(id string) *Analytics {
	a, err := p.analytics(id)
	if err != nil {
		return nil
	}
	return a
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
	every := flag.Int("summary-every", 100, "publish a summary every this many events of a tenant")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, Config{
		Brokers:      strings.Split(*brokers, ","),
		Tenants:      splitList(*tenants),
		Follow:       *follow,
		InstanceID:   *instance,
		SummaryEvery: *every,
		Ready:        func(*Plugin) { slog.Info("sample-analytics plugin running", "tenants", *tenants, "follow", *follow) },
	})
	if err != nil {
		slog.Error("sample-analytics plugin failed", "err", err)
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
