package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
)

type contactCreatedEvent struct {
	ContactID string `json:"contactId"`
	Name      string `json:"name"`
}

// A plugin publishes its own events and reacts to core events, only ever
// for its tenant.
func ExamplePluginClient() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bus, stop := exampleBus(ctx) // an embedded broker and a bus, as in Example
	defer stop()

	// The crm plugin, running for tenant acme.
	crm, err := eventbus.NewPluginClient(bus, eventbus.PluginScope{PluginID: "crm", TenantID: "acme"})
	if err != nil {
		panic(err)
	}
	created := make(chan eventbus.Event[contactCreatedEvent], 1)
	_, err = eventbus.Subscribe(ctx, crm, "contact.created", func(_ context.Context, ev eventbus.Event[contactCreatedEvent]) error {
		created <- ev
		return nil
	}, eventbus.InGroup("contacts"))
	if err != nil {
		panic(err)
	}
	// Each new user of acme becomes a contact; globex's users are never seen.
	_, err = eventbus.Subscribe(ctx, crm, catalog.UserCreated, func(ctx context.Context, ev eventbus.Event[catalog.UserCreatedData]) error {
		_, err := eventbus.Publish(ctx, crm, "contact.created", contactCreatedEvent{ContactID: "c-" + ev.Data.UserID, Name: ev.Data.Email})
		return err
	}, eventbus.InGroup("user-sync"))
	if err != nil {
		panic(err)
	}

	for _, tenant := range []string{"globex", "acme"} {
		_, err := eventbus.Publish(eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: tenant}), bus, catalog.UserCreated, catalog.UserCreatedData{UserID: "u-" + tenant, Email: "ada@" + tenant + ".test", Role: "member"})
		if err != nil {
			panic(err)
		}
	}
	ev := <-created
	fmt.Println(ev.Type, ev.TenantID, ev.Metadata.Source, ev.Data.ContactID)

	// A plugin cannot publish outside its own topics.
	_, err = eventbus.Publish(ctx, crm, catalog.UserCreated, catalog.UserCreatedData{})
	fmt.Println(errors.Is(err, eventbus.ErrPluginScope))
	// Output:
	// plugin.crm.contact.created acme crm c-u-acme
	// true
}
