// Package analytics is the sample-analytics plugin of Plexica, written
// against the public API of github.com/plexica/eventbus only: its business
// logic, run by pluginrun from cmd/analytics and from `eventbus demo`. One
// deployment serves many tenants through an eventbus.PluginHost (one
// consumer group per subscription for all of them); for each tenant it
// serves, it counts
//
//   - the CRM plugin's events: plugin.crm.contact.created and
//     plugin.crm.deal.updated (another plugin's events);
//   - core events: core.user.created, core.user.login, core.user.logout
//     and core.api.request;
//
// and publishes plugin.sample-analytics.summary.generated, with the
// tenant's counts, every summaryEvery events (see New). Each tenant's
// counts only ever include that tenant's events. With -follow, tenants are
// added and removed as they install and uninstall the plugin.
//
//	go run ./examples/analytics/cmd/analytics -brokers 127.0.0.1:9092 -tenants acme,globex -follow
package analytics

import (
	"context"
	"maps"
	"sync"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
	"github.com/plexica/eventbus/pluginrun"
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

// Handlers declares what the plugin counts, once for every tenant;
// pluginrun.Handle routes each event to its tenant's Analytics.
func Handlers(d *pluginrun.Deployment[Analytics]) []eventbus.HandlerSpec {
	count := pluginrun.Handle(d, (*Analytics).count)
	return []eventbus.HandlerSpec{
		eventbus.On("contact.created", count, eventbus.FromPlugin("crm"), eventbus.InGroup("crm-activity")),
		eventbus.On("deal.updated", count, eventbus.FromPlugin("crm"), eventbus.InGroup("crm-activity")),
		eventbus.On(eventbus.Name[any](catalog.UserCreated), count, eventbus.InGroup("signups")),
		eventbus.On(eventbus.Name[any](catalog.UserLogin), count, eventbus.InGroup("sessions")),
		eventbus.On(eventbus.Name[any](catalog.UserLogout), count, eventbus.InGroup("sessions")),
		eventbus.On(eventbus.Name[any](catalog.APIRequest), count, eventbus.InGroup("api-usage")),
	}
}

// New returns the function pluginrun calls to make a tenant's Analytics,
// publishing a summary every summaryEvery events (100 when 0).
func New(summaryEvery int) func(*eventbus.PluginClient) *Analytics {
	return func(events *eventbus.PluginClient) *Analytics { return NewAnalytics(events, summaryEvery) }
}
