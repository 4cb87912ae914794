package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
)

// hostRecorder records what a host's handler received, by tenant.
type hostRecorder struct {
	mu       sync.Mutex
	byTenant map[string][]eventbus.RawEvent
	changed  chan struct{}
}

func newHostRecorder() *hostRecorder {
	return &hostRecorder{byTenant: map[string][]eventbus.RawEvent{}, changed: make(chan struct{})}
}

func (r *hostRecorder) Handle(ctx context.Context, ev eventbus.RawEvent) error {
	if m, ok := eventbus.EventContextFrom(ctx); !ok || m.TenantID != ev.TenantID || m.CausationID != ev.ID {
		return fmt.Errorf("handler context %+v does not carry event %s of %s", m, ev.ID, ev.TenantID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byTenant[ev.TenantID] = append(r.byTenant[ev.TenantID], ev)
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

func (r *hostRecorder) ids(tenant string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.byTenant[tenant] {
		out = append(out, ev.ID)
	}
	return out
}

func (r *hostRecorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, evs := range r.byTenant {
		n += len(evs)
	}
	return n
}

// waitFor waits (bounded) until cond, called with r.mu held, holds.
func (r *hostRecorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(eventbustest.WaitTimeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("waited %s for %s", eventbustest.WaitTimeout, what)
		}
	}
}

func newHost(t *testing.T, bus *eventbus.Bus, pluginID string, tenants ...string) *eventbus.PluginHost {
	t.Helper()
	h, err := eventbus.NewPluginHost(bus, eventbus.PluginHostConfig{PluginID: pluginID, Tenants: tenants})
	if err != nil {
		t.Fatalf("NewPluginHost(%s): %v", pluginID, err)
	}
	return h
}

func mustHostSubscribe(t *testing.T, h *eventbus.PluginHost, eventName string, fn eventbus.Handler, opts ...eventbus.SubscribeOption) string {
	t.Helper()
	id, err := eventbus.Subscribe(boundedCtx(t), h, eventbus.Name[json.RawMessage](eventName), fn, opts...)
	if err != nil {
		t.Fatalf("host %s subscribe %s: %v", h.PluginID(), eventName, err)
	}
	return id
}

// waitCommitted waits (bounded) until group has committed every event of
// topic: what it skipped included.
func waitCommitted(t *testing.T, adm *kadm.Client, group, topic string) {
	t.Helper()
	eventbustest.Eventually(t, "group "+group+" to commit all of "+topic, func() error {
		lags, err := adm.Lag(boundedCtx(t), group)
		if err == nil {
			if l, ok := lags[group]; ok && l.Error() == nil {
				if tl, ok := l.Lag.TotalByTopic()[topic]; ok && tl.Lag == 0 {
					return nil
				}
			}
		}
		return fmt.Errorf("last: %v, %v", lags, err)
	})
}

// pluginGroups lists the consumer groups in pluginID's namespace.
func pluginGroups(t *testing.T, adm *kadm.Client, pluginID string) []string {
	t.Helper()
	listed, err := adm.ListGroups(boundedCtx(t))
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	var out []string
	for _, g := range listed.Groups() {
		if strings.HasPrefix(g, "plugin."+pluginID+".") {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}

// hostEvent returns a plugin ID no other test uses, its event name for
// entity.action (made unique as well) and that event's topic.
func hostEvent(t *testing.T, name string) (plugin, event, topic string) {
	t.Helper()
	plugin = eventbustest.UniqueID("host")
	event = pluginEvent(t, plugin, name)
	return plugin, event, "plugin." + plugin + "." + event
}

func admin(t *testing.T, c *eventbus.Client) *kadm.Client {
	t.Helper()
	adm, err := c.Admin()
	if err != nil {
		t.Fatal(err)
	}
	return adm
}

func TestPluginHostHundredTenantsEachGetsExactlyItsEvents(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	client := eventbustest.NewClient(t, brokers...)
	bus := eventbustest.NewBusOn(t, client, eventbus.Config{})
	plugin, event, topic := hostEvent(t, "contact.created")

	served := make([]string, 100)
	for i := range served {
		served[i] = fmt.Sprintf("t%03d", i)
	}
	host := newHost(t, bus, plugin, served...)
	rec := newHostRecorder()
	mustHostSubscribe(t, host, event, rec.Handle, eventbus.InGroup("contacts"))

	// 3 events per served tenant, interleaved, and events of 10 tenants
	// the host does not serve.
	want := map[string][]string{}
	var batch []eventbus.BatchEvent
	for round := range 3 {
		for _, tenant := range append(slices.Clone(served), "other-0", "other-1", "other-2", "other-3", "other-4",
			"other-5", "other-6", "other-7", "other-8", "other-9") {
			batch = append(batch, eventbus.BatchEvent{EventType: topic, Data: map[string]int{"round": round},
				Metadata: eventbus.PublishMetadata{TenantID: tenant}})
		}
	}
	for chunk := range slices.Chunk(batch, 100) {
		res, err := bus.PublishBatch(boundedCtx(t), chunk)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			want[chunk[i].Metadata.TenantID] = append(want[chunk[i].Metadata.TenantID], r.EventID)
		}
	}

	rec.waitFor(t, "300 events", func() bool {
		n := 0
		for _, evs := range rec.byTenant {
			n += len(evs)
		}
		return n >= 300
	})
	group := groupOf(t, host, event, eventbus.InGroup("contacts"))
	adm := admin(t, client)
	waitCommitted(t, adm, group, topic) // the other tenants' events were skipped and committed
	for _, tenant := range served {
		if got := rec.ids(tenant); !slices.Equal(got, want[tenant]) {
			t.Errorf("tenant %s received %v, want %v in order", tenant, got, want[tenant])
		}
	}
	if n := rec.total(); n != 300 {
		t.Errorf("the handler was called %d times, want 300 (none for tenants the host does not serve)", n)
	}
	for tenant, evs := range rec.byTenant {
		for _, ev := range evs {
			if ev.TenantID != tenant || !host.Serves(tenant) {
				t.Errorf("event %s of tenant %s reached the handler as %s", ev.ID, ev.TenantID, tenant)
			}
		}
	}
	if groups := pluginGroups(t, adm, plugin); !slices.Equal(groups, []string{"plugin." + plugin + ".contacts"}) {
		t.Errorf("groups of the plugin: %v, want one: plugin.%s.contacts", groups, plugin)
	}
}

func TestPluginHostTenantsAddedAndRemovedMidStream(t *testing.T) {
	t.Parallel()
	client := eventbustest.NewClient(t)
	bus := eventbustest.NewBusOn(t, client, eventbus.Config{})
	adm := admin(t, client)
	plugin, event, topic := hostEvent(t, "deal.updated")
	host := newHost(t, bus, plugin, "acme", "globex")
	rec := newHostRecorder()
	mustHostSubscribe(t, host, event, rec.Handle)
	group := groupOf(t, host, topic)

	publish := func(round int) map[string]string {
		ids := map[string]string{}
		for _, tenant := range []string{"acme", "globex", "initech"} {
			ids[tenant] = eventbustest.MustPublish(t, bus, topic, map[string]int{"round": round}, eventbus.PublishMetadata{TenantID: tenant})
		}
		return ids
	}
	first := publish(1)
	rec.waitFor(t, "round 1", func() bool { return len(rec.byTenant["acme"]) == 1 && len(rec.byTenant["globex"]) == 1 })
	waitCommitted(t, adm, group, topic)

	// Mid-stream: globex leaves, initech joins; no rebalance.
	if !host.RemoveTenant("globex") {
		t.Fatal("RemoveTenant(globex) = false")
	}
	if err := host.AddTenant("initech"); err != nil {
		t.Fatal(err)
	}
	if got := host.Tenants(); !slices.Equal(got, []string{"acme", "initech"}) {
		t.Fatalf("Tenants() = %v", got)
	}
	second := publish(2)
	rec.waitFor(t, "round 2", func() bool { return len(rec.byTenant["acme"]) == 2 && len(rec.byTenant["initech"]) == 1 })
	waitCommitted(t, adm, group, topic)

	if got := rec.ids("acme"); !slices.Equal(got, []string{first["acme"], second["acme"]}) {
		t.Errorf("acme received %v", got)
	}
	if got := rec.ids("globex"); !slices.Equal(got, []string{first["globex"]}) {
		t.Errorf("globex (removed) received %v, want only its round-1 event", got)
	}
	if got := rec.ids("initech"); !slices.Equal(got, []string{second["initech"]}) {
		t.Errorf("initech (added) received %v, want only its round-2 event", got)
	}
}

func TestPluginHostFailingTenantRetryReachesOnlyItsHandler(t *testing.T) {
	t.Parallel()
	bus := startDLQ(t, eventbustest.NewBus(t, fastDLQ()))
	plugin, event, topic := hostEvent(t, "invoice.issued")
	host := newHost(t, bus, plugin, "acme", "globex")
	var acmeCalls, globexCalls atomic.Int64
	rec := newHostRecorder()
	mustHostSubscribe(t, host, event, func(ctx context.Context, ev eventbus.RawEvent) error {
		switch ev.TenantID {
		case "acme":
			if acmeCalls.Add(1) == 1 {
				return errors.New("acme's ledger unavailable")
			}
		case "globex":
			globexCalls.Add(1)
		}
		return rec.Handle(ctx, ev)
	}, eventbus.InGroup("billing"))

	acme := eventbustest.MustPublish(t, bus, topic, map[string]int{"amount": 1}, eventbus.PublishMetadata{TenantID: "acme"})
	globex := eventbustest.MustPublish(t, bus, topic, map[string]int{"amount": 2}, eventbus.PublishMetadata{TenantID: "globex"})
	rec.waitFor(t, "acme's retry and globex's event", func() bool {
		return len(rec.byTenant["acme"]) == 1 && len(rec.byTenant["globex"]) == 1
	})
	group := groupOf(t, host, topic, eventbus.InGroup("billing"))
	e := waitEntry(t, bus.DLQ(), deadletter.ID(group, topic, "acme", acme), hasStatus(deadletter.StatusResolved))
	if e.ConsumerGroup != group || e.TenantID != "acme" || e.RetryCount != 1 {
		t.Fatalf("entry = %+v", e)
	}
	if got := rec.ids("acme"); !slices.Equal(got, []string{acme}) {
		t.Errorf("acme received %v", got)
	}
	if got := rec.ids("globex"); !slices.Equal(got, []string{globex}) {
		t.Errorf("globex received %v", got)
	}
	if a, g := acmeCalls.Load(), globexCalls.Load(); a != 2 || g != 1 {
		t.Errorf("calls: acme %d (want 2: failure and retry), globex %d (want 1: the retry is acme's only)", a, g)
	}
}

func TestPluginHostTwoProcessesShareTheWork(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	client := eventbustest.NewClient(t, brokers...)
	platform := eventbustest.NewBusOn(t, client, eventbus.Config{})
	plugin, event, topic := hostEvent(t, "order.placed")
	tenants := make([]string, 20)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("tenant-%02d", i)
	}

	var mu sync.Mutex
	running := map[string]int{} // tenant -> handlers running, across both processes
	overlaps := 0
	handled := [2]map[string]int{{}, {}} // process -> event ID -> times
	done := make(chan struct{})
	const total = 400
	distinct := 0
	handler := func(proc int) eventbus.Handler {
		return func(_ context.Context, ev eventbus.RawEvent) error {
			mu.Lock()
			running[ev.TenantID]++
			if running[ev.TenantID] > 1 {
				overlaps++
			}
			mu.Unlock()
			time.Sleep(time.Millisecond) // widen the window an overlap would show in
			mu.Lock()
			defer mu.Unlock()
			running[ev.TenantID]--
			if handled[0][ev.ID]+handled[1][ev.ID] == 0 {
				distinct++
				if distinct == total {
					close(done)
				}
			}
			handled[proc][ev.ID]++
			return nil
		}
	}
	for proc := range 2 {
		bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
		host := newHost(t, bus, plugin, tenants...)
		mustHostSubscribe(t, host, event, handler(proc), eventbus.InGroup("orders"))
	}
	var batch []eventbus.BatchEvent
	for i := range total {
		batch = append(batch, eventbus.BatchEvent{EventType: topic, Data: map[string]int{"n": i},
			Metadata: eventbus.PublishMetadata{TenantID: tenants[i%len(tenants)]}})
	}
	for chunk := range slices.Chunk(batch, 100) {
		res, err := platform.PublishBatch(boundedCtx(t), chunk)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	select {
	case <-done:
	case <-time.After(eventbustest.WaitTimeout):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d events handled within %s", distinct, total, eventbustest.WaitTimeout)
	}
	mu.Lock()
	defer mu.Unlock()
	if overlaps != 0 {
		t.Errorf("a tenant was handled by both processes at once %d times", overlaps)
	}
	both := 0
	for id := range handled[0] {
		if handled[1][id] > 0 {
			both++
		}
	}
	if both != 0 {
		t.Errorf("%d events were handled by both processes", both)
	}
	if len(handled[0]) == 0 || len(handled[1]) == 0 {
		t.Errorf("the processes did not share the work: %d and %d events", len(handled[0]), len(handled[1]))
	}
	adm := admin(t, client)
	group := "plugin." + plugin + ".orders"
	if groups := pluginGroups(t, adm, plugin); !slices.Equal(groups, []string{group}) {
		t.Errorf("groups of the plugin: %v, want one: %s", groups, group)
	}
	described, err := adm.DescribeGroups(boundedCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(described[group].Members); n != 2 {
		t.Errorf("group %s has %d members, want 2 (one per process)", group, n)
	}
}

// crmHost is a declarative plugin on a host: one handler set for every
// tenant, state kept per tenant.
type crmHost struct {
	event string
	rec   *hostRecorder
}

func (c *crmHost) EventHandlers() []eventbus.HandlerSpec {
	return []eventbus.HandlerSpec{
		eventbus.On(eventbus.Name[map[string]any](c.event), func(ctx context.Context, ev eventbus.Event[map[string]any]) error {
			return c.rec.Handle(ctx, eventbus.RawEvent{ID: ev.ID, TenantID: ev.TenantID, Type: ev.Type})
		}, eventbus.InGroup("crm-sync")),
	}
}

func TestPluginHostInitializeHandlersAndFollowLifecycle(t *testing.T) {
	t.Parallel()
	client := eventbustest.NewClient(t)
	bus := eventbustest.NewBusOn(t, client, eventbus.Config{})
	plugin, event, topic := hostEvent(t, "contact.created")
	host := newHost(t, bus, plugin)
	if err := host.FollowLifecycle(boundedCtx(t), eventbus.FollowOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := newHostRecorder()
	h, err := eventbus.InitializeHandlers(boundedCtx(t), host, &crmHost{event: event, rec: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Cleanup(context.Background())

	waitServes := func(tenant string, want bool) {
		t.Helper()
		eventbustest.Eventually(t, fmt.Sprintf("Serves(%s) to be %t", tenant, want), func() error {
			if host.Serves(tenant) != want {
				return fmt.Errorf("Serves(%s) still %t", tenant, !want)
			}
			return nil
		})
	}
	// Another plugin's install is ignored; ours adds the tenant. Both on one
	// partition, so ours is applied after the other was.
	key := eventbus.WithPartitionKey("lifecycle")
	eventbustest.MustPublish(t, bus, catalog.PluginInstalled.String(), catalog.PluginInstalledData{PluginID: "someone-else", TenantID: "globex"},
		eventbus.PublishMetadata{TenantID: "globex"}, key)
	eventbustest.MustPublish(t, bus, catalog.PluginInstalled.String(), catalog.PluginInstalledData{PluginID: plugin, TenantID: "acme"},
		eventbus.PublishMetadata{TenantID: "acme"}, key)
	waitServes("acme", true)
	if host.Serves("globex") {
		t.Fatal("another plugin's install added its tenant")
	}
	acme := eventbustest.MustPublish(t, bus, topic, map[string]string{"n": "1"}, eventbus.PublishMetadata{TenantID: "acme"})
	rec.waitFor(t, "acme's event", func() bool { return len(rec.byTenant["acme"]) == 1 })
	if got := rec.ids("acme"); got[0] != acme {
		t.Fatalf("acme received %v", got)
	}

	eventbustest.MustPublish(t, bus, catalog.PluginUninstalled.String(), catalog.PluginUninstalledData{PluginID: plugin, TenantID: "acme"},
		eventbus.PublishMetadata{TenantID: "acme"})
	waitServes("acme", false)
	eventbustest.MustPublish(t, bus, catalog.PluginActivated.String(), catalog.PluginActivatedData{PluginID: plugin, TenantID: "initech"},
		eventbus.PublishMetadata{TenantID: "initech"})
	waitServes("initech", true)
	eventbustest.MustPublish(t, bus, topic, map[string]string{"n": "2"}, eventbus.PublishMetadata{TenantID: "acme"})
	initech := eventbustest.MustPublish(t, bus, topic, map[string]string{"n": "3"}, eventbus.PublishMetadata{TenantID: "initech"})
	rec.waitFor(t, "initech's event", func() bool { return len(rec.byTenant["initech"]) == 1 })
	waitCommitted(t, admin(t, client), groupOf(t, host, topic, eventbus.InGroup("crm-sync")), topic)
	if got := rec.ids("acme"); len(got) != 1 {
		t.Errorf("acme received %v after its uninstall", got)
	}
	if got := rec.ids("initech"); got[0] != initech {
		t.Errorf("initech received %v", got)
	}
}

func TestPluginHostScope(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	if _, err := eventbus.NewPluginHost(bus, eventbus.PluginHostConfig{PluginID: "CRM"}); !errors.Is(err, eventbus.ErrInvalidPluginID) {
		t.Errorf("NewPluginHost(CRM) = %v, want ErrInvalidPluginID", err)
	}
	if _, err := eventbus.NewPluginHost(bus, eventbus.PluginHostConfig{PluginID: "crm", Tenants: []string{""}}); !errors.Is(err, eventbus.ErrTenantRequired) {
		t.Errorf("empty tenant = %v, want ErrTenantRequired", err)
	}
	host := newHost(t, bus, "crm", "acme")
	if _, err := host.Client("globex"); !errors.Is(err, eventbus.ErrPluginScope) {
		t.Errorf("Client(globex) = %v, want ErrPluginScope", err)
	}
	if c, err := host.Client("acme"); err != nil || c.Scope().TenantID != "acme" || c.Scope().PluginID != "crm" {
		t.Errorf("Client(acme) = %+v, %v", c, err)
	}
	ctx := boundedCtx(t)
	if _, err := eventbus.Publish(ctx, host, "contact.created", 1); !errors.Is(err, eventbus.ErrTenantRequired) {
		t.Errorf("Publish without a tenant = %v, want ErrTenantRequired", err)
	}
	globex := eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: "globex"})
	if _, err := eventbus.Publish(globex, host, "contact.created", 1); !errors.Is(err, eventbus.ErrPluginScope) {
		t.Errorf("Publish for a tenant not served = %v, want ErrPluginScope", err)
	}
	acme := eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: "acme"})
	if _, err := eventbus.Publish(acme, host, eventbus.Name[int](catalog.UserCreated), 1); !errors.Is(err, eventbus.ErrPluginScope) {
		t.Errorf("Publish of a core event = %v, want ErrPluginScope", err)
	}
	if _, err := eventbus.Subscribe(ctx, host, "contact.created", func(context.Context, eventbus.RawEvent) error { return nil }, eventbus.ForWorkspace("w1")); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Errorf("Subscribe with a workspace = %v, want ErrInvalidConfig", err)
	}
	if got := groupOf(t, host, "contact.created", eventbus.InGroup("crm-sync")); got != "plugin.crm.crm-sync" {
		t.Errorf("GroupID = %q", got)
	}
	if _, err := eventbus.InitializeHandlers(ctx, host, &tenantSpec{}); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Errorf("a handler for one tenant on a host = %v, want ErrInvalidConfig", err)
	}
	if err := host.Unsubscribe(ctx, "nope"); !errors.Is(err, eventbus.ErrSubscriptionNotFound) {
		t.Errorf("Unsubscribe(nope) = %v", err)
	}
}

type tenantSpec struct{}

func (tenantSpec) EventHandlers() []eventbus.HandlerSpec {
	return []eventbus.HandlerSpec{eventbus.On("contact.created", func(context.Context, eventbus.Event[any]) error { return nil }, eventbus.ForTenant("acme"))}
}

func TestPluginHostPublishesForTheHandledTenant(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	plugin := eventbustest.UniqueID("host")
	in, out := pluginEvent(t, plugin, "user.created"), pluginEvent(t, plugin, "contact.created")
	host := newHost(t, bus, plugin, "acme", "globex")
	rec := newHostRecorder()
	mustHostSubscribe(t, host, out, rec.Handle)
	publishContact := eventbus.WithPublish(host, eventbus.Name[map[string]int](out), func(_ context.Context, n int) (map[string]int, error) {
		return map[string]int{"n": n}, nil
	})
	mustHostSubscribe(t, host, in, func(ctx context.Context, ev eventbus.RawEvent) error {
		_, err := publishContact(ctx, 1)
		return err
	})
	for _, tenant := range []string{"acme", "globex"} {
		c, err := host.Client(tenant)
		if err != nil {
			t.Fatal(err)
		}
		mustPluginPublish(t, c, in, map[string]string{})
	}
	rec.waitFor(t, "a contact per tenant", func() bool { return len(rec.byTenant["acme"]) == 1 && len(rec.byTenant["globex"]) == 1 })
	for _, tenant := range []string{"acme", "globex"} {
		ev := rec.byTenant[tenant][0]
		if ev.TenantID != tenant || ev.Metadata.Source != plugin || ev.Metadata.CausationID == "" {
			t.Errorf("%s's contact = %+v", tenant, ev)
		}
	}
}

// RemoveTenant does not wait for the tenant's running handler calls;
// DrainTenant does, and fails with ctx's error while one runs.
func TestPluginHostDrainTenantWaitsForRunningHandlers(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	plugin := eventbustest.UniqueID("host")
	event := pluginEvent(t, plugin, "contact.created")
	host := newHost(t, bus, plugin, "acme")
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	mustHostSubscribe(t, host, event, func(context.Context, eventbus.RawEvent) error {
		once.Do(func() { close(started) })
		<-release
		return nil
	})
	c, err := host.Client("acme")
	if err != nil {
		t.Fatal(err)
	}
	mustPluginPublish(t, c, event, map[string]string{})
	select {
	case <-started:
	case <-time.After(eventbustest.WaitTimeout):
		t.Fatal("the handler was not called")
	}
	if !host.RemoveTenant("acme") {
		t.Fatal("RemoveTenant(acme) = false")
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := host.DrainTenant(short, "acme"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DrainTenant while a call runs = %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := host.DrainTenant(boundedCtx(t), "acme"); err != nil {
		t.Fatalf("DrainTenant after the call returned = %v", err)
	}
	if err := host.DrainTenant(boundedCtx(t), "never-served"); err != nil {
		t.Fatalf("DrainTenant(never-served) = %v", err)
	}
}
