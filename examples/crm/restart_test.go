package crm

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/pluginrun"
)

// TestRestartWithInstanceID runs the plugin as a static member
// (Bus.Consumer.InstanceID, from EVENTBUS_INSTANCE_ID in the command), stops it and
// starts it again with the same ID: its group's member carries the ID, and
// the new instance handles a new event at once, with no session timeout to
// wait out.
func TestRestartWithInstanceID(t *testing.T) {
	brokers := eventbustest.Brokers(t)
	acme, instance := eventbustest.UniqueID("acme"), eventbustest.UniqueID("crm-0")
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	defer cancel()
	platform := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	signup := func(user string) {
		eventbustest.MustPublish(t, platform, catalog.UserCreated.String(),
			catalog.UserCreatedData{UserID: user, Email: user + "@acme.test", Role: "member"},
			eventbus.PublishMetadata{TenantID: acme})
	}
	handled := func(p *pluginrun.Deployment[CRM], user string) bool {
		return slices.ContainsFunc(tenant(t, p, acme).Contacts(), func(c ContactCreated) bool { return c.UserID == user })
	}

	cfg := pluginrun.Config{PluginID: PluginID, Client: eventbus.ClientConfig{Brokers: brokers}, Tenants: []string{acme},
		Bus: eventbus.Config{Consumer: eventbus.ConsumerConfig{InstanceID: instance}}}
	first, err := pluginrun.Start(ctx, cfg, NewCRM, Handlers)
	if err != nil {
		t.Fatal(err)
	}
	signup("u-1")
	eventbustest.Eventually(t, "the first instance handles u-1", func() error {
		if !handled(first, "u-1") {
			return fmt.Errorf("contacts %+v", tenant(t, first, acme).Contacts())
		}
		return nil
	})
	if n := staticMembers(t, brokers, instance); n != 1 {
		t.Fatalf("%d group members have instance ID %s, want 1", n, instance)
	}
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	second, err := pluginrun.Start(ctx, cfg, NewCRM, Handlers)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = second.Stop(context.Background()) }()
	signup("u-2")
	eventbustest.Eventually(t, "the restarted instance handles u-2", func() error {
		if !handled(second, "u-2") {
			return fmt.Errorf("contacts %+v", tenant(t, second, acme).Contacts())
		}
		return nil
	})
	resumed := time.Since(began)
	t.Logf("restart with instance ID: a new event handled %s after Start", resumed.Round(time.Millisecond))
	if resumed > 5*time.Second {
		t.Fatalf("the restarted static member took %s to handle a new event", resumed)
	}
}

// staticMembers counts the members of every group that carry instance.
func staticMembers(t *testing.T, brokers []string, instance string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	described, err := adm.DescribeGroups(ctx, groups.Groups()...)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range described {
		for _, m := range g.Members {
			if m.InstanceID != nil && *m.InstanceID == instance {
				n++
			}
		}
	}
	return n
}
