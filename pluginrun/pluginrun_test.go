package pluginrun_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/pluginrun"
)

type note struct {
	ID string `json:"id"`
}

// ledger is a tenant's state: the notes it handled.
type ledger struct {
	tenant  string
	handled chan<- [2]string

	mu    sync.Mutex
	notes []string
}

func (l *ledger) onNote(_ context.Context, ev eventbus.Event[note]) error {
	l.mu.Lock()
	l.notes = append(l.notes, ev.Data.ID)
	l.mu.Unlock()
	l.handled <- [2]string{ev.TenantID, ev.Data.ID}
	return nil
}

func (l *ledger) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.notes...)
}

// TestOneCallRunsTenantsAddedAndRemovedAtRunTime: a deployment started in
// one call serves a tenant added at run time, stops serving (and forgets
// the state of) a tenant removed at run time, and serves it afresh when it
// is added again.
func TestOneCallRunsTenantsAddedAndRemovedAtRunTime(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	acme, globex := eventbustest.UniqueID("acme"), eventbustest.UniqueID("globex")
	handled := make(chan [2]string, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 2*eventbustest.WaitTimeout)
	defer cancel()
	var interceptMu sync.Mutex
	var intercepted []string // what Intercept saw, by data

	d, err := pluginrun.Start(ctx, pluginrun.Config{
		PluginID: "ledger",
		Client:   eventbus.ClientConfig{Brokers: brokers},
		Tenants:  []string{acme},
		Intercept: func(ctx context.Context, ev eventbus.Event[any], handle func(context.Context) error) error {
			interceptMu.Lock()
			intercepted = append(intercepted, ev.Data.(note).ID)
			interceptMu.Unlock()
			return handle(ctx)
		},
	}, func(events *eventbus.PluginClient) *ledger {
		return &ledger{tenant: events.Scope().TenantID, handled: handled}
	}, func(d *pluginrun.Deployment[ledger]) []eventbus.HandlerSpec {
		return []eventbus.HandlerSpec{
			eventbus.On(eventbus.Name[note](topic), pluginrun.Handle(d, (*ledger).onNote), eventbus.InGroup("notes")),
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = d.Stop(context.Background())
		}
	}()

	platform := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	publish := func(tenant, id string) {
		t.Helper()
		// One partition key for every note: they are handled in publish order.
		eventbustest.MustPublish(t, platform, topic, note{ID: id}, eventbus.PublishMetadata{TenantID: tenant}, eventbus.WithPartitionKey("k"))
	}
	next := func() [2]string {
		t.Helper()
		select {
		case h := <-handled:
			return h
		case <-time.After(eventbustest.WaitTimeout):
			t.Fatal("no note handled in time")
			return [2]string{}
		}
	}

	publish(globex, "g-0") // not served yet: skipped
	publish(acme, "a-1")
	if h := next(); h != [2]string{acme, "a-1"} {
		t.Fatalf("handled %v, want acme's a-1 (globex is not served yet)", h)
	}

	if err := d.Host().AddTenant(globex); err != nil {
		t.Fatal(err)
	}
	publish(globex, "g-1")
	if h := next(); h != [2]string{globex, "g-1"} {
		t.Fatalf("handled %v, want globex's g-1 after AddTenant", h)
	}

	if !d.Host().RemoveTenant(acme) {
		t.Fatal("acme was not served")
	}
	publish(acme, "a-2") // removed: skipped
	publish(globex, "g-2")
	if h := next(); h != [2]string{globex, "g-2"} {
		t.Fatalf("handled %v, want globex's g-2 (acme was removed before a-2)", h)
	}
	if _, err := d.Tenant(acme); !errors.Is(err, pluginrun.ErrTenantNotServed) || !errors.Is(err, eventbus.ErrPluginScope) {
		t.Fatalf("Tenant(removed acme) = %v, want ErrTenantNotServed", err)
	}

	if err := d.Host().AddTenant(acme); err != nil {
		t.Fatal(err)
	}
	publish(acme, "a-3")
	if h := next(); h != [2]string{acme, "a-3"} {
		t.Fatalf("handled %v, want acme's a-3 after it was added again", h)
	}
	st, err := d.Tenant(acme)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.list(); len(got) != 1 || got[0] != "a-3" {
		t.Fatalf("acme's state after it was added again: %v, want only a-3 (a fresh state)", got)
	}
	gs, _ := d.Tenant(globex)
	if got := gs.list(); len(got) != 2 || got[0] != "g-1" || got[1] != "g-2" {
		t.Fatalf("globex's notes %v, want [g-1 g-2]", got)
	}

	interceptMu.Lock()
	if got := strings.Join(intercepted, ","); got != "a-1,g-1,g-2,a-3" {
		t.Errorf("Intercept saw %s, want the calls a-1,g-1,g-2,a-3", got)
	}
	interceptMu.Unlock()

	stopped = true
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case h := <-handled:
		t.Fatalf("an extra note was handled: %v", h)
	default:
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	t.Parallel()
	newState := func(*eventbus.PluginClient) *ledger { return &ledger{} }
	handlers := func(*pluginrun.Deployment[ledger]) []eventbus.HandlerSpec { return nil }
	ctx := context.Background()
	for _, c := range []struct {
		name string
		cfg  pluginrun.Config
		want error
	}{
		{"no tenants, not following", pluginrun.Config{PluginID: "ledger", Client: eventbus.ClientConfig{Brokers: []string{"127.0.0.1:1"}}}, eventbus.ErrInvalidConfig},
		{"bad plugin ID", pluginrun.Config{PluginID: "Ledger", Tenants: []string{"acme"}}, eventbus.ErrInvalidPluginID},
		{"no brokers", pluginrun.Config{PluginID: "ledger", Tenants: []string{"acme"}}, eventbus.ErrInvalidConfig},
	} {
		if _, err := pluginrun.Start(ctx, c.cfg, newState, handlers); !errors.Is(err, c.want) {
			t.Errorf("%s: Start = %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := pluginrun.Start[ledger](ctx, pluginrun.Config{PluginID: "ledger", Tenants: []string{"acme"}}, nil, handlers); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Errorf("Start without newState = %v", err)
	}
}
