package crm

import (
	"context"
	"fmt"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/pluginrun"
)

// tenant returns a served tenant's CRM or fails the test.
func tenant(t testing.TB, p *pluginrun.Deployment[CRM], id string) *CRM {
	t.Helper()
	c, err := p.Tenant(id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRunServesEachTenant(t *testing.T) {
	brokers := eventbustest.Brokers(t)
	acme, globex := eventbustest.UniqueID("acme"), eventbustest.UniqueID("globex")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := pluginrun.Start(ctx, pluginrun.Config{PluginID: PluginID, Client: eventbus.ClientConfig{Brokers: brokers}, Tenants: []string{acme, globex}}, NewCRM, Handlers)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}

	// The platform publishes new users; an observer watches what crm publishes for acme.
	platform := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	contacts := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, platform, "plugin.crm.contact.created", contacts.Handle, eventbus.InGroup(eventbustest.UniqueID("observer")), eventbus.ForTenant(acme))
	user := eventbustest.MustPublish(t, platform, catalog.UserCreated.String(),
		catalog.UserCreatedData{UserID: "u-1", Email: "ada@acme.test", Role: "member"},
		eventbus.PublishMetadata{TenantID: acme, CorrelationID: "signup-1"})
	eventbustest.MustPublish(t, platform, catalog.UserCreated.String(),
		catalog.UserCreatedData{UserID: "u-2", Email: "bob@globex.test", Role: "member"},
		eventbus.PublishMetadata{TenantID: globex})

	ev := contacts.WaitFor(t, 1)[0]
	got, err := eventbus.Decode[ContactCreated](ev)
	if err != nil || got.Data.UserID != "u-1" || ev.Metadata.Source != PluginID ||
		ev.Metadata.CausationID != user || ev.Metadata.CorrelationID != "signup-1" {
		t.Fatalf("contact.created = %+v (%v)", got, err)
	}
	if cs := tenant(t, p, acme).Contacts(); len(cs) != 1 || cs[0].UserID != "u-1" {
		t.Fatalf("acme's contacts: %+v", cs)
	}
	eventbustest.Eventually(t, "globex's contact", func() error {
		if cs := tenant(t, p, globex).Contacts(); len(cs) != 1 {
			return fmt.Errorf("globex's contacts: %+v", cs)
		}
		return nil
	})
	if cs := tenant(t, p, globex).Contacts(); cs[0].UserID != "u-2" {
		t.Fatalf("globex's contacts: %+v", cs)
	}

	// Deals: published by the plugin, and its own handler keeps the pipeline.
	crm := tenant(t, p, acme)
	for _, d := range []DealUpdated{{"d-1", "lead", 100}, {"d-2", "won", 500}} {
		if _, err := crm.UpdateDeal(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := crm.UpdateDeal(ctx, DealUpdated{"d-3", "maybe", 1}); err == nil {
		t.Fatal("a deal in an unknown stage was accepted")
	}
	eventbustest.Eventually(t, "acme's pipeline", func() error {
		if pl := crm.Pipeline(); pl["lead"] != 1 || pl["won"] != 1 {
			return fmt.Errorf("acme's pipeline: %v", pl)
		}
		return nil
	})
	if pl := tenant(t, p, globex).Pipeline(); len(pl) != 0 {
		t.Fatalf("globex's pipeline has acme's deals: %v", pl)
	}

	if err := p.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}
