// Command analytics is the sample-analytics plugin of Plexica, written
// against the public API of github.com/plexica/eventbus only. For each
// tenant it serves, it counts
//
//   - the CRM plugin's events: plugin.crm.contact.created and
//     plugin.crm.deal.updated (another plugin's events);
//   - core events: core.user.login, core.user.logout and core.api.request;
//
// and publishes plugin.sample-analytics.summary.generated, with the
// tenant's counts, every SummaryEvery events. Each tenant's counts only
// ever include that tenant's events.
//
//	go run ./examples/analytics -brokers 127.0.0.1:9092 -tenants acme,globex
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

// Analytics is the plugin for one tenant.
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

// EventHandlers declares what the plugin counts.
func (a *Analytics) EventHandlers() []eventbus.HandlerSpec {
	return []eventbus.HandlerSpec{
		eventbus.On("contact.created", a.count, eventbus.FromPlugin("crm"), eventbus.InGroup("crm-activity")),
		eventbus.On("deal.updated", a.count, eventbus.FromPlugin("crm"), eventbus.InGroup("crm-activity")),
		eventbus.On(catalog.UserLogin, a.count, eventbus.InGroup("sessions")),
		eventbus.On(catalog.UserLogout, a.count, eventbus.InGroup("sessions")),
		eventbus.On(catalog.APIRequest, a.count, eventbus.InGroup("api-usage")),
	}
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
	Tenants []string
	// SummaryEvery is how many events of a tenant make a summary. Default 100.
	SummaryEvery int
	// SASL, when set, logs in with the plugin's credentials.
	SASL   *eventbus.SASLConfig
	Logger *slog.Logger
	// Ready, when set, is called by Run once every tenant's handlers are
	// subscribed.
	Ready func(*Plugin)
}

// Plugin is the running plugin: one Analytics per tenant on one bus.
type Plugin struct {
	client   *eventbus.Client
	bus      *eventbus.Bus
	tenants  map[string]*Analytics
	handlers []*eventbus.Handlers
}

// Start connects, and subscribes the handlers of every tenant.
func Start(ctx context.Context, cfg Config) (*Plugin, error) {
	if len(cfg.Tenants) == 0 {
		return nil, errors.New("analytics: no tenants to serve")
	}
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: cfg.Brokers, ClientID: PluginID, SASL: cfg.SASL, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	if err := client.Connect(ctx); err != nil {
		return nil, err
	}
	bus, err := eventbus.NewBus(client, eventbus.Config{Source: PluginID})
	if err != nil {
		client.Close()
		return nil, err
	}
	p := &Plugin{client: client, bus: bus, tenants: map[string]*Analytics{}}
	for _, tenant := range cfg.Tenants {
		events, err := eventbus.NewPluginClient(bus, eventbus.PluginContext{PluginID: PluginID, TenantID: tenant})
		if err == nil {
			a := NewAnalytics(events, cfg.SummaryEvery)
			var h *eventbus.Handlers
			if h, err = eventbus.InitializeHandlers(ctx, events, a); err == nil {
				p.tenants[tenant], p.handlers = a, append(p.handlers, h)
				continue
			}
		}
		return nil, errors.Join(fmt.Errorf("analytics: tenant %s: %w", tenant, err), p.Stop(context.WithoutCancel(ctx)))
	}
	return p, nil
}

// Tenant returns the analytics of a tenant the plugin serves, or nil.
func (p *Plugin) Tenant(id string) *Analytics { return p.tenants[id] }

// Stop unsubscribes the handlers and shuts the bus down.
func (p *Plugin) Stop(ctx context.Context) error {
	var errs []error
	for _, h := range p.handlers {
		errs = append(errs, eventbus.CleanupHandlers(ctx, h))
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
	tenants := flag.String("tenants", "acme", "comma-separated tenants to serve")
	every := flag.Int("summary-every", 100, "publish a summary every this many events of a tenant")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, Config{
		Brokers:      strings.Split(*brokers, ","),
		Tenants:      strings.Split(*tenants, ","),
		SummaryEvery: *every,
		Ready:        func(*Plugin) { slog.Info("sample-analytics plugin running", "tenants", *tenants) },
	})
	if err != nil {
		slog.Error("sample-analytics plugin failed", "err", err)
		os.Exit(1)
	}
}
