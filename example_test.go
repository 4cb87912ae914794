package eventbus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/embedded"
)

type memberAdded struct {
	MemberID string `json:"memberId"`
	Role     string `json:"role"`
}

// Publish a typed event and receive it in a tenant-filtered subscription.
func Example() {
	broker, err := embedded.Start(embedded.Config{}) // in memory, on a free port
	if err != nil {
		panic(err)
	}
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: broker.Addrs()})
	if err != nil {
		panic(err)
	}
	if err := client.Connect(ctx); err != nil {
		panic(err)
	}
	defer client.Close()
	bus, err := eventbus.NewBus(client, eventbus.Config{})
	if err != nil {
		panic(err)
	}
	defer bus.Shutdown(context.Background())

	received := make(chan eventbus.Event[memberAdded], 1)
	_, err = eventbus.Subscribe(ctx, bus, "core.workspace.member_added", func(_ context.Context, ev eventbus.Event[memberAdded]) error {
		received <- ev
		return nil
	}, eventbus.InGroup("notifications"), eventbus.ForTenant("acme"))
	if err != nil {
		panic(err)
	}

	meta := func(tenant string) eventbus.PublishMetadata {
		return eventbus.PublishMetadata{TenantID: tenant, WorkspaceID: "ws-1"}
	}
	// Globex's event is skipped by the acme subscription.
	if _, err := eventbus.Publish(eventbus.WithEventContext(ctx, meta("globex")), bus, "core.workspace.member_added", memberAdded{"m-0", "owner"}); err != nil {
		panic(err)
	}
	if _, err := eventbus.Publish(eventbus.WithEventContext(ctx, meta("acme")), bus, "core.workspace.member_added", memberAdded{"m-1", "editor"}); err != nil {
		panic(err)
	}
	ev := <-received
	fmt.Println(ev.TenantID, ev.WorkspaceID, ev.Data.MemberID, ev.Data.Role)
	// Output: acme ws-1 m-1 editor
}

// exampleBus starts an in-memory embedded broker and a bus on it, as
// Example does step by step; stop shuts both down.
func exampleBus(ctx context.Context) (bus *eventbus.Bus, stop func()) {
	broker, err := embedded.Start(embedded.Config{})
	if err != nil {
		panic(err)
	}
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: broker.Addrs()})
	if err != nil {
		panic(err)
	}
	if err := client.Connect(ctx); err != nil {
		panic(err)
	}
	bus, err = eventbus.NewBus(client, eventbus.Config{})
	if err != nil {
		panic(err)
	}
	return bus, func() {
		_ = bus.Shutdown(context.Background())
		client.Close()
		broker.Close()
	}
}
