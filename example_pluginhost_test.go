package eventbus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
)

// One deployment of the crm plugin serves many tenants: one consumer group
// per subscription, each event read once and handed to the handler for its
// tenant only; tenants come and go at run time.
func ExamplePluginHost() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, stop := exampleBus(ctx) // an embedded broker and a bus, as in Example
	defer stop()

	host, err := eventbus.NewPluginHost(bus, eventbus.PluginHostConfig{PluginID: "crm", Tenants: []string{"acme", "globex"}})
	if err != nil {
		panic(err)
	}
	defer host.Close(context.WithoutCancel(ctx))
	// Follow installs and uninstalls of crm published by the platform.
	if err := host.FollowLifecycle(ctx, eventbus.FollowOptions{}); err != nil {
		panic(err)
	}

	created := make(chan eventbus.Event[contactCreatedEvent], 10)
	_, err = eventbus.Subscribe(ctx, host, "contact.created", func(_ context.Context, ev eventbus.Event[contactCreatedEvent]) error {
		created <- ev
		return nil
	}, eventbus.InGroup("contacts"))
	if err != nil {
		panic(err)
	}
	// Each new user becomes a contact of the user's tenant: Publish acts
	// for the tenant of the event being handled.
	_, err = eventbus.Subscribe(ctx, host, catalog.UserCreated, func(ctx context.Context, ev eventbus.Event[catalog.UserCreatedData]) error {
		_, err := eventbus.Publish(ctx, host, "contact.created", contactCreatedEvent{ContactID: "c-" + ev.Data.UserID})
		return err
	}, eventbus.InGroup("user-sync"))
	if err != nil {
		panic(err)
	}
	contacts, _ := eventbus.GroupID(host, "contact.created", eventbus.InGroup("contacts"))
	userSync, _ := eventbus.GroupID(host, catalog.UserCreated.String(), eventbus.InGroup("user-sync"))
	fmt.Println("groups:", contacts, userSync)

	host.RemoveTenant("globex") // globex's users are skipped from now on
	for _, tenant := range []string{"globex", "acme"} {
		_, err := eventbus.Publish(eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: tenant}), bus, catalog.UserCreated, catalog.UserCreatedData{UserID: "u-" + tenant, Email: "ada@" + tenant + ".test", Role: "member"})
		if err != nil {
			panic(err)
		}
	}
	ev := <-created
	fmt.Println(ev.Type, ev.TenantID, ev.Metadata.Source, ev.Data.ContactID)
	// Output:
	// groups: plugin.crm.contacts plugin.crm.user-sync
	// plugin.crm.contact.created acme crm c-u-acme
}
