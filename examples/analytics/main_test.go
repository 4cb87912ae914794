package analytics

import (
	"context"
	"encoding/json"
	"maps"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/pluginrun"
)

func TestRunCountsPerTenant(t *testing.T) {
	brokers := eventbustest.Brokers(t)
	acme, globex := eventbustest.UniqueID("acme"), eventbustest.UniqueID("globex")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := pluginrun.Start(ctx, pluginrun.Config{PluginID: PluginID, Client: eventbus.ClientConfig{Brokers: brokers}, Tenants: []string{acme, globex}}, New(1), Handlers)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}

	// Watch the summaries analytics publishes, as another plugin would.
	platform := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	summaries := map[string]*eventbustest.Recorder{}
	for _, tenant := range []string{acme, globex} {
		watcher, err := eventbus.NewPluginClient(platform, eventbus.PluginScope{PluginID: "dashboard", TenantID: tenant})
		if err != nil {
			t.Fatal(err)
		}
		summaries[tenant] = eventbustest.NewRecorder()
		wctx, wcancel := context.WithTimeout(ctx, eventbustest.WaitTimeout)
		_, err = eventbus.Subscribe(wctx, watcher, eventbus.Name[json.RawMessage](SummaryGeneratedEvent), summaries[tenant].Handle, eventbus.FromPlugin(PluginID))
		wcancel()
		if err != nil {
			t.Fatal(err)
		}
	}

	// The CRM plugin and the platform produce activity for both tenants.
	pctx, pcancel := context.WithTimeout(ctx, eventbustest.WaitTimeout)
	defer pcancel()
	crm := func(tenant string) *eventbus.PluginClient {
		c, err := eventbus.NewPluginClient(platform, eventbus.PluginScope{PluginID: "crm", TenantID: tenant})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	crmAcme, crmGlobex := crm(acme), crm(globex)
	for _, pub := range []struct {
		c    *eventbus.PluginClient
		name string
	}{{crmAcme, "contact.created"}, {crmAcme, "contact.created"}, {crmAcme, "deal.updated"}, {crmGlobex, "contact.created"}} {
		if _, err := eventbus.Publish(pctx, pub.c, eventbus.Name[map[string]string](pub.name), map[string]string{"id": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ev := range []struct {
		tenant, typ string
		data        any
	}{
		{acme, catalog.UserLogin.String(), catalog.UserLoginData{UserID: "u-1"}},
		{acme, catalog.UserLogout.String(), catalog.UserLogoutData{UserID: "u-1", SessionDuration: 60_000}},
		{acme, catalog.APIRequest.String(), catalog.APIRequestData{Method: "GET", Path: "/contacts", StatusCode: 200, ResponseTime: 12}},
		{globex, catalog.UserLogin.String(), catalog.UserLoginData{UserID: "u-9"}},
	} {
		eventbustest.MustPublish(t, platform, ev.typ, ev.data, eventbus.PublishMetadata{TenantID: ev.tenant})
	}

	want := map[string]map[string]int{
		acme: {
			"plugin.crm.contact.created": 2, "plugin.crm.deal.updated": 1,
			catalog.UserLogin.String(): 1, catalog.UserLogout.String(): 1, catalog.APIRequest.String(): 1,
		},
		globex: {"plugin.crm.contact.created": 1, catalog.UserLogin.String(): 1},
	}
	for tenant, counts := range want {
		total := 0
		for _, n := range counts {
			total += n
		}
		// A summary per event: the one with the full total is the last.
		var last SummaryGenerated
		for _, ev := range summaries[tenant].WaitFor(t, total) {
			s, err := eventbus.Decode[SummaryGenerated](ev)
			if err != nil || ev.TenantID != tenant || ev.Metadata.Source != PluginID {
				t.Fatalf("summary %+v (%v)", ev, err)
			}
			if s.Data.Total > last.Total {
				last = s.Data
			}
		}
		if last.Total != total || !maps.Equal(last.Counts, counts) {
			t.Errorf("%s: last summary %+v, want counts %v", tenant, last, counts)
		}
		a, err := p.Tenant(tenant)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Counts(); !maps.Equal(got, counts) {
			t.Errorf("%s: counts %v, want %v", tenant, got, counts)
		}
	}

	if err := p.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}
