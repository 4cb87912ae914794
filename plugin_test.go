package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// boundedCtx is a context bounded by the test kit's wait timeout.
func boundedCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// pluginEvent returns a unique event name of plugin pluginID, such as
// "contact_3f9a1c.created" for "contact.created", so tests sharing a real
// cluster never share topics.
func pluginEvent(t *testing.T, pluginID, name string) string {
	t.Helper()
	prefix := "plugin." + pluginID + "."
	return strings.TrimPrefix(eventbustest.UniqueTopic(t, prefix+name), prefix)
}

func newPluginClient(t *testing.T, bus *eventbus.Bus, pluginID, tenantID, workspaceID string) *eventbus.PluginClient {
	t.Helper()
	p, err := eventbus.NewPluginClient(bus, eventbus.PluginScope{PluginID: pluginID, TenantID: tenantID, WorkspaceID: workspaceID})
	if err != nil {
		t.Fatalf("NewPluginClient(%s, %s): %v", pluginID, tenantID, err)
	}
	return p
}

// groupOf is the consumer group a subscription of name with opts on
// target joins (eventbus.GroupID).
func groupOf(t testing.TB, target eventbus.Subscriber, name string, opts ...eventbus.SubscribeOption) string {
	t.Helper()
	g, err := eventbus.GroupID(target, name, opts...)
	if err != nil {
		t.Fatalf("GroupID(%q): %v", name, err)
	}
	return g
}

func mustPluginSubscribe(t *testing.T, p *eventbus.PluginClient, eventName string, h eventbus.Handler, opts ...eventbus.SubscribeOption) string {
	t.Helper()
	id, err := eventbus.Subscribe(boundedCtx(t), p, eventbus.Name[json.RawMessage](eventName), h, opts...)
	if err != nil {
		t.Fatalf("plugin %s subscribe %s: %v", p.Scope().PluginID, eventName, err)
	}
	return id
}

func mustPluginPublish(t *testing.T, p *eventbus.PluginClient, eventName string, data any, opts ...eventbus.PublishOption) string {
	t.Helper()
	id, err := eventbus.Publish(boundedCtx(t), p, eventbus.Name[any](eventName), data, opts...)
	if err != nil {
		t.Fatalf("plugin %s publish %s: %v", p.Scope().PluginID, eventName, err)
	}
	return id
}

// assertExactly checks that evs are exactly the events with the given IDs, each
// once, all of tenant.
func assertExactly(t *testing.T, who, tenant string, evs []eventbus.RawEvent, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, ev := range evs {
		if ev.TenantID != tenant {
			t.Errorf("%s: got tenant %q's event %s", who, ev.TenantID, ev.ID)
		}
		seen[ev.ID]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("%s: event %s delivered %d times, want once", who, id, seen[id])
		}
	}
	if len(evs) != len(want) {
		t.Errorf("%s: got %d events, want %d", who, len(evs), len(want))
	}
}

func TestNewPluginClientValidates(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	for _, id := range []string{"CRM", "sample_analytics", "salesforce.sync", "", "-crm"} {
		_, err := eventbus.NewPluginClient(bus, eventbus.PluginScope{PluginID: id, TenantID: "acme"})
		if !errors.Is(err, eventbus.ErrInvalidPluginID) || !strings.Contains(err.Error(), "kebab-case") {
			t.Errorf("plugin ID %q: %v, want ErrInvalidPluginID naming the kebab-case rule", id, err)
		}
	}
	if _, err := eventbus.NewPluginClient(bus, eventbus.PluginScope{PluginID: "crm"}); !errors.Is(err, eventbus.ErrTenantRequired) {
		t.Errorf("no tenant: %v", err)
	}
	if _, err := eventbus.NewPluginClient(nil, eventbus.PluginScope{PluginID: "crm", TenantID: "acme"}); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Errorf("nil bus: %v", err)
	}
	for _, id := range []string{"crm", "sample-analytics", "salesforce-sync", "a1"} {
		if _, err := eventbus.NewPluginClient(bus, eventbus.PluginScope{PluginID: id, TenantID: "acme"}); err != nil {
			t.Errorf("plugin ID %q: %v", id, err)
		}
	}
}

func TestPluginPublishStaysInScope(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	crm := newPluginClient(t, bus, "crm", "acme", "")
	ctx := boundedCtx(t)
	// A three-segment event name is the plugin's own topic plugin.crm.contact.note.added.
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, "plugin.crm.contact.note.added", rec.Handle, eventbus.ForTenant("acme"))
	rec.WaitForID(t, mustPluginPublish(t, crm, "contact.note.added", 1))
	// Its full name resolves to the same topic, by the rule Subscribe follows.
	rec.WaitForID(t, mustPluginPublish(t, crm, "plugin.crm.contact.note.added", 2))
	for _, c := range []struct {
		name         string
		scope, topic bool // wraps ErrPluginScope, ErrInvalidTopic
		hint         string
	}{
		{"core.user.created", true, false, "core events are published by the platform"},
		{"plugin.other.x.created", true, false, "only its own events"},
		{"plugin.crm-admin.user.created", true, false, "only its own events"},
		{"dlq.plugin.crm.contact.created", true, false, "dead-letter"},
		{"core.user.create", true, true, `use "core.user.created"`},
		{"contact.create", false, true, `use "plugin.crm.contact.created"`},
		{"Contact.created", false, true, "uppercase"},
		{"created", false, true, "plugin.<pluginId>.<entity>.<action>"},
		{"", false, true, "<entity>.<action>"},
	} {
		_, err := eventbus.Publish(ctx, crm, eventbus.Name[map[string]string](c.name), map[string]string{"x": "y"})
		if err == nil {
			t.Errorf("Publish(%q) succeeded", c.name)
			continue
		}
		t.Logf("Publish(%q): %v", c.name, err)
		if errors.Is(err, eventbus.ErrPluginScope) != c.scope || errors.Is(err, eventbus.ErrInvalidTopic) != c.topic {
			t.Errorf("Publish(%q) = %v; want ErrPluginScope %t, ErrInvalidTopic %t", c.name, err, c.scope, c.topic)
		}
		if !strings.Contains(err.Error(), c.hint) {
			t.Errorf("Publish(%q) = %q; want the hint %q", c.name, err, c.hint)
		}
	}
	// The context cannot move the event to another tenant or workspace.
	other := eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: "globex"})
	if _, err := eventbus.Publish(other, crm, "contact.created", 1); !errors.Is(err, eventbus.ErrPluginScope) {
		t.Errorf("publish with another tenant's context: %v", err)
	}
	ws1 := newPluginClient(t, bus, "crm", "acme", "ws-1")
	if _, err := eventbus.Publish(eventbus.WithEventContext(ctx, eventbus.PublishMetadata{WorkspaceID: "ws-2"}), ws1, "contact.created", 1); !errors.Is(err, eventbus.ErrPluginScope) {
		t.Errorf("publish with another workspace's context: %v", err)
	}
}

func TestPluginPublishAndSubscribeOwnEvents(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	crm := newPluginClient(t, bus, "crm", "acme", "")
	event := pluginEvent(t, "crm", "contact.created")
	rec := eventbustest.NewRecorder()
	mustPluginSubscribe(t, crm, event, rec.Handle)

	ctx := eventbus.WithEventContext(boundedCtx(t), eventbus.PublishMetadata{UserID: "u-7", CorrelationID: "req-1"})
	id, err := eventbus.Publish(ctx, crm, eventbus.Name[crmContact](event), crmContact{ID: "c-1", Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	ev := rec.WaitForID(t, id)
	if ev.Type != "plugin.crm."+event || ev.TenantID != "acme" || ev.WorkspaceID != "" ||
		ev.Metadata.Source != "crm" || ev.Metadata.UserID != "u-7" || ev.Metadata.CorrelationID != "req-1" {
		t.Fatalf("event = %+v", ev)
	}
	typed, err := eventbus.Decode[crmContact](ev)
	if err != nil || typed.Data.Name != "Ada" {
		t.Fatalf("decode: %+v, %v", typed, err)
	}

	// The group is the plugin's, with the tenant in its identity.
	if got, want := groupOf(t, crm, "contact.created", eventbus.InGroup("crm-sync")), "plugin.crm.crm-sync.tenant.acme"; got != want {
		t.Errorf("GroupID = %q, want %q", got, want)
	}
	adm, err := bus.Client().Admin()
	if err != nil {
		t.Fatal(err)
	}
	groups, err := adm.ListGroups(boundedCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := "plugin.crm." + event + ".tenant.acme"; !slices.Contains(groups.Groups(), want) {
		t.Errorf("groups %v do not include %s", groups.Groups(), want)
	}
}

type crmContact struct {
	ID   string `json:"contactId"`
	Name string `json:"name"`
}

func TestPluginSubscribesToOtherPluginsAndCoreEvents(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	contactEvent := pluginEvent(t, "crm", "contact.created")
	coreEvent := eventbustest.UniqueTopic(t, "core.user.created")
	crmAcme := newPluginClient(t, bus, "crm", "acme", "")
	crmGlobex := newPluginClient(t, bus, "crm", "globex", "")
	analytics := newPluginClient(t, bus, "sample-analytics", "acme", "")

	contacts, users := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	mustPluginSubscribe(t, analytics, contactEvent, contacts.Handle, eventbus.FromPlugin("crm"))
	mustPluginSubscribe(t, analytics, coreEvent, users.Handle)

	// One partition key for all: globex's events come before acme's on the
	// same partition, so once acme's arrive, globex's were seen and skipped.
	key := eventbus.WithPartitionKey("one-partition")
	mustPluginPublish(t, crmGlobex, contactEvent, crmContact{ID: "g"}, key)
	eventbustest.MustPublish(t, bus, coreEvent, 1, eventbus.PublishMetadata{TenantID: "globex"}, key)
	c := mustPluginPublish(t, crmAcme, contactEvent, crmContact{ID: "a"}, key)
	u := eventbustest.MustPublish(t, bus, coreEvent, 2, eventbus.PublishMetadata{TenantID: "acme"}, key)
	contacts.WaitForID(t, c)
	users.WaitForID(t, u)
	assertExactly(t, "analytics contacts", "acme", contacts.Events(), []string{c})
	assertExactly(t, "analytics users", "acme", users.Events(), []string{u})
}

func TestPluginWorkspaceFilter(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	event := pluginEvent(t, "crm", "deal.updated")
	topic := "plugin.crm." + event
	bound := newPluginClient(t, bus, "crm", "acme", "ws-1")
	unbound := newPluginClient(t, bus, "crm", "acme", "")
	fromClient, fromOptions := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	mustPluginSubscribe(t, bound, event, fromClient.Handle)
	mustPluginSubscribe(t, unbound, event, fromOptions.Handle, eventbus.ForWorkspace("ws-1"), eventbus.InGroup("by-option"))
	if _, err := eventbus.Subscribe(boundedCtx(t), bound, eventbus.Name[json.RawMessage](event), nop, eventbus.ForWorkspace("ws-2")); !errors.Is(err, eventbus.ErrPluginScope) {
		t.Fatalf("subscribing a ws-1 client to ws-2: %v", err)
	}

	key := eventbus.WithPartitionKey("one-partition")
	eventbustest.MustPublish(t, bus, topic, 1, eventbus.PublishMetadata{TenantID: "acme", WorkspaceID: "ws-2"}, key)
	eventbustest.MustPublish(t, bus, topic, 2, eventbus.PublishMetadata{TenantID: "globex", WorkspaceID: "ws-1"}, key)
	eventbustest.MustPublish(t, bus, topic, 3, eventbus.PublishMetadata{TenantID: "acme"}, key)
	want := mustPluginPublish(t, bound, event, 4, key) // stamped ws-1 by the client
	for who, rec := range map[string]*eventbustest.Recorder{"client workspace": fromClient, "option workspace": fromOptions} {
		rec.WaitForID(t, want)
		assertExactly(t, who, "acme", rec.Events(), []string{want})
		if ws := rec.Events()[0].WorkspaceID; ws != "ws-1" {
			t.Errorf("%s: workspace %q", who, ws)
		}
	}
}

func TestPluginSubscribeRejectsBadInput(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	crm := newPluginClient(t, bus, "crm", "acme", "")
	ctx := boundedCtx(t)
	for _, c := range []struct {
		name string
		opts []eventbus.SubscribeOption
		h    eventbus.Handler
		want error
	}{
		{"dlq.core.user.created", nil, nop, eventbus.ErrInvalidTopic},
		{"core.user.create", nil, nop, eventbus.ErrInvalidTopic},
		{"plugin.crm.contact.create", nil, nop, eventbus.ErrInvalidTopic},
		{"core.user.created", []eventbus.SubscribeOption{eventbus.FromPlugin("crm")}, nop, eventbus.ErrInvalidConfig},
		{"plugin.billing.invoice.paid", []eventbus.SubscribeOption{eventbus.FromPlugin("crm")}, nop, eventbus.ErrInvalidConfig},
		{"contact.created", []eventbus.SubscribeOption{eventbus.FromPlugin("CRM")}, nop, eventbus.ErrInvalidPluginID},
		{"contact.create", nil, nop, eventbus.ErrInvalidTopic},
		{"contact.created", []eventbus.SubscribeOption{eventbus.ForTenant("globex")}, nop, eventbus.ErrPluginScope},
		{"contact.created", nil, nil, eventbus.ErrInvalidConfig},
	} {
		if _, err := eventbus.Subscribe(ctx, crm, eventbus.Name[json.RawMessage](c.name), c.h, c.opts...); !errors.Is(err, c.want) {
			t.Errorf("Subscribe(%q) = %v, want %v", c.name, err, c.want)
		}
	}
	if err := crm.Unsubscribe(ctx, "no-such-id"); !errors.Is(err, eventbus.ErrSubscriptionNotFound) {
		t.Errorf("unsubscribe unknown: %v", err)
	}
	// A client cannot remove another client's subscription.
	other := newPluginClient(t, bus, "crm", "globex", "")
	id := mustPluginSubscribe(t, other, pluginEvent(t, "crm", "contact.created"), nop)
	if err := crm.Unsubscribe(ctx, id); !errors.Is(err, eventbus.ErrSubscriptionNotFound) {
		t.Errorf("unsubscribe another client's subscription: %v", err)
	}
	if err := other.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Unsubscribe(ctx, id); !errors.Is(err, eventbus.ErrSubscriptionNotFound) {
		t.Errorf("unsubscribe after Close: %v", err)
	}
}

// tenantRun publishes n events per tenant through each tenant's own plugin
// client, interleaved, then one last marker per tenant, and returns the IDs
// per tenant. Events are keyed by tenant (the default), so each tenant's
// marker comes after its other events.
func tenantRun(t *testing.T, publishers map[string]*eventbus.PluginClient, event string, n int) (ids map[string][]string, markers map[string]string) {
	t.Helper()
	ids, markers = map[string][]string{}, map[string]string{}
	for i := range n {
		for tenant, p := range publishers {
			ids[tenant] = append(ids[tenant], mustPluginPublish(t, p, event, map[string]int{"n": i}))
		}
	}
	for tenant, p := range publishers {
		markers[tenant] = mustPluginPublish(t, p, event, "marker")
		ids[tenant] = append(ids[tenant], markers[tenant])
	}
	return ids, markers
}

func TestPluginTenantsInOneProcessLoseNothing(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	event := pluginEvent(t, "billing", "invoice.paid")
	tenants := []string{eventbustest.UniqueID("t1"), eventbustest.UniqueID("t2"), eventbustest.UniqueID("t3")}
	clients := map[string]*eventbus.PluginClient{}
	recs := map[string]*eventbustest.Recorder{}
	for _, tenant := range tenants {
		clients[tenant] = newPluginClient(t, bus, "billing", tenant, "")
		recs[tenant] = eventbustest.NewRecorder()
		// Every tenant's client uses the same group name, as one plugin's
		// code would: the tenant makes the groups distinct.
		mustPluginSubscribe(t, clients[tenant], event, recs[tenant].Handle, eventbus.InGroup("invoices"))
	}
	ids, markers := tenantRun(t, clients, event, 30)
	for _, tenant := range tenants {
		recs[tenant].WaitForID(t, markers[tenant])
		assertExactly(t, tenant, tenant, recs[tenant].Events(), ids[tenant])
	}
}

func TestPluginTenantsInSeveralProcessesLoseNothing(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	event := pluginEvent(t, "billing", "invoice.paid")
	tenants := []string{eventbustest.UniqueID("t1"), eventbustest.UniqueID("t2"), eventbustest.UniqueID("t3")}
	recs := map[string]*eventbustest.Recorder{}
	for _, tenant := range tenants {
		recs[tenant] = eventbustest.NewRecorder()
	}
	// Each "process" is its own client and bus on the same broker. The
	// first tenant runs in two processes, which share its group's work:
	// both record into the tenant's recorder, and together they must see
	// each of its events once.
	for _, tenant := range append([]string{tenants[0]}, tenants...) {
		bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
		p := newPluginClient(t, bus, "billing", tenant, "")
		mustPluginSubscribe(t, p, event, recs[tenant].Handle, eventbus.InGroup("invoices"))
	}

	publisher := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	clients := map[string]*eventbus.PluginClient{}
	for _, tenant := range tenants {
		clients[tenant] = newPluginClient(t, publisher, "billing", tenant, "")
	}
	ids, markers := tenantRun(t, clients, event, 30)
	for _, tenant := range tenants {
		recs[tenant].WaitForID(t, markers[tenant])
		assertExactly(t, tenant, tenant, recs[tenant].Events(), ids[tenant])
	}
}

// TestGroupID: one rule names the group of a subscription on every
// target, and a name that does not resolve fails as Subscribe would.
func TestGroupID(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	crm := newPluginClient(t, bus, "crm", "acme", "w1")
	host := newHost(t, bus, "crm", "acme", "globex")
	for _, c := range []struct {
		target eventbus.Subscriber
		name   string
		opts   []eventbus.SubscribeOption
		want   string
	}{
		{bus, "core.user.created", []eventbus.SubscribeOption{eventbus.InGroup("mailer")}, "mailer"},
		{bus, "core.user.created", []eventbus.SubscribeOption{eventbus.InGroup("mailer"), eventbus.ForTenant("acme"), eventbus.ForWorkspace("w1")}, "mailer.tenant.acme.workspace.w1"},
		{crm, "contact.created", nil, "plugin.crm.contact.created.tenant.acme.workspace.w1"},
		{crm, "core.user.created", []eventbus.SubscribeOption{eventbus.InGroup("sync")}, "plugin.crm.sync.tenant.acme.workspace.w1"},
		{host, "core.user.created", []eventbus.SubscribeOption{eventbus.InGroup("plugin.crm.sync")}, "plugin.crm.sync"},
		{host, "invoice.paid", []eventbus.SubscribeOption{eventbus.FromPlugin("billing")}, "plugin.crm.plugin.billing.invoice.paid"},
	} {
		if got := groupOf(t, c.target, c.name, c.opts...); got != c.want {
			t.Errorf("GroupID(%T, %q) = %q, want %q", c.target, c.name, got, c.want)
		}
	}
	if _, err := eventbus.GroupID(bus, "contact.created"); !errors.Is(err, eventbus.ErrInvalidTopic) {
		t.Errorf("GroupID of a short name on a Bus = %v, want ErrInvalidTopic", err)
	}
	if _, err := eventbus.GroupID(nil, "core.user.created"); !errors.Is(err, eventbus.ErrInvalidConfig) {
		t.Errorf("GroupID without a target = %v, want ErrInvalidConfig", err)
	}
}
