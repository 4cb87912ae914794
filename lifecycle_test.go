package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/pluginacl"
)

// Tests of PluginHost.FollowLifecycle: how a host follows the platform's
// core.plugin.* events (issue 26, items 4, 5, 6 and 9).

// publishLifecycle publishes a lifecycle event (catalog.PluginInstalled
// and its kin) of plugin for tenant, under that tenant.
func publishLifecycle(t *testing.T, bus *eventbus.Bus, eventType, plugin, tenant string, opts ...eventbus.PublishOption) string {
	t.Helper()
	return eventbustest.MustPublish(t, bus, eventType, map[string]string{"pluginId": plugin, "tenantId": tenant},
		eventbus.PublishMetadata{TenantID: tenant}, opts...)
}

// publishLifecycleNoise publishes n lifecycle events of eventType for other
// plugins, in batches.
func publishLifecycleNoise(t *testing.T, bus *eventbus.Bus, eventType string, n int) {
	t.Helper()
	for n > 0 {
		batch := make([]eventbus.BatchEvent, min(n, eventbus.MaxBatchSize))
		for i := range batch {
			batch[i] = eventbus.BatchEvent{EventType: eventType,
				Data:     map[string]string{"pluginId": "someone-else", "tenantId": fmt.Sprintf("t%d", i)},
				Metadata: eventbus.PublishMetadata{TenantID: fmt.Sprintf("t%d", i)}}
		}
		results, err := bus.PublishBatch(boundedCtx(t), batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		n -= len(batch)
	}
}

// committedAll reports whether group has committed every record of topic.
func committedAll(t *testing.T, adm *kadm.Client, group, topic string) bool {
	t.Helper()
	lags, err := adm.Lag(boundedCtx(t), group)
	if err != nil {
		return false
	}
	l, ok := lags[group]
	if !ok || l.Error() != nil {
		return false
	}
	tl, ok := l.Lag.TotalByTopic()[topic]
	return ok && tl.Lag == 0
}

// waitClosed waits (bounded) until ch is closed.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(eventbustest.WaitTimeout):
		t.Fatalf("waited %s for %s", eventbustest.WaitTimeout, what)
	}
}

// Item 4: the tenant's first event, handled by the data group while the
// install is still unread by the lifecycle consumer (held by a hook), is
// delivered once the install is applied, not skipped and committed.
func TestPluginHostDeliversTheFirstEventOfATenantInstalledMeanwhile(t *testing.T) {
	t.Parallel()
	client := eventbustest.NewClient(t)
	bus := eventbustest.NewBusOn(t, client, eventbus.Config{})
	plugin, event, topic := hostEvent(t, "contact.created")
	host := newHost(t, bus, plugin)
	held, release := make(chan struct{}), make(chan struct{})
	var heldOnce sync.Once
	eventbus.SetLifecycleHook(host, func(tenant string) {
		if tenant == "acme" {
			heldOnce.Do(func() { close(held) })
			<-release
		}
	})
	waiting := make(chan struct{})
	var waitingOnce sync.Once
	eventbus.SetUnknownTenantHook(host, func(tenant string) {
		if tenant == "acme" {
			waitingOnce.Do(func() { close(waiting) })
		}
	})
	rec := newHostRecorder()
	mustHostSubscribe(t, host, event, rec.Handle, eventbus.InGroup("sync"))
	if err := host.FollowLifecycle(boundedCtx(t), eventbus.FollowOptions{}); err != nil {
		t.Fatal(err)
	}
	publishLifecycle(t, bus, catalog.PluginInstalled.String(), plugin, "acme")
	waitClosed(t, held, "the lifecycle consumer to reach acme's install")
	first := eventbustest.MustPublish(t, bus, topic, map[string]string{"n": "1"}, eventbus.PublishMetadata{TenantID: "acme"})
	// The data group has reached acme's event: it waits for the lifecycle
	// (the fix), or it skipped and committed it (the defect).
	adm := admin(t, client)
	eventbustest.Eventually(t, "the data group to reach acme's first event", func() error {
		select {
		case <-waiting:
			return nil
		default:
		}
		if committedAll(t, adm, groupOf(t, host, topic, eventbus.InGroup("sync")), topic) {
			return nil
		}
		return errors.New("neither waiting nor committed")
	})
	close(release)
	rec.waitFor(t, "acme's first event", func() bool { return len(rec.byTenant["acme"]) == 1 })
	if got := rec.ids("acme"); got[0] != first {
		t.Fatalf("acme received %v, want [%s]", got, first)
	}
}

// Item 5: FollowLifecycle with FromBeginning returns once the retained
// lifecycle events are applied: a tenant that uninstalled the plugin is
// not served, one that installed it is.
func TestFollowLifecycleFromBeginningReturnsAfterTheReplay(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	plugin := eventbustest.UniqueID("host")
	publishLifecycle(t, bus, catalog.PluginInstalled.String(), plugin, "acme")
	publishLifecycle(t, bus, catalog.PluginInstalled.String(), plugin, "globex")
	publishLifecycleNoise(t, bus, catalog.PluginUninstalled.String(), 3000)
	publishLifecycle(t, bus, catalog.PluginUninstalled.String(), plugin, "acme")

	host := newHost(t, bus, plugin)
	if err := host.FollowLifecycle(boundedCtx(t), eventbus.FollowOptions{FromBeginning: true}); err != nil {
		t.Fatal(err)
	}
	if got := host.Tenants(); len(got) != 1 || got[0] != "globex" {
		t.Fatalf("FollowLifecycle(FromBeginning) returned serving %v, want [globex]", got)
	}
	defer host.Close(context.Background())
}

// Item 6: Close stops a FollowLifecycle under way; FollowLifecycle fails,
// nothing of it keeps reading, and a later install does not add the
// tenant to the closed host.
func TestPluginHostCloseStopsAFollowLifecycleUnderWay(t *testing.T) {
	t.Parallel()
	client := eventbustest.NewClient(t)
	bus := eventbustest.NewBusOn(t, client, eventbus.Config{})
	plugin := eventbustest.UniqueID("host")
	host := newHost(t, bus, plugin)
	entered, proceed := make(chan struct{}), make(chan struct{})
	eventbus.SetFollowHook(host, func() {
		close(entered)
		<-proceed
	})
	errc := make(chan error, 1)
	go func() { errc <- host.FollowLifecycle(boundedCtx(t), eventbus.FollowOptions{}) }()
	waitClosed(t, entered, "FollowLifecycle to start")
	if err := host.Close(boundedCtx(t)); err != nil {
		t.Fatal(err)
	}
	close(proceed)
	select {
	case err := <-errc:
		if !errors.Is(err, eventbus.ErrHostClosed) {
			t.Errorf("FollowLifecycle = %v although the host was closed while it ran, want ErrHostClosed", err)
		}
	case <-time.After(eventbustest.WaitTimeout):
		t.Fatal("FollowLifecycle did not return")
	}
	// Nothing of the host reads the lifecycle any more.
	adm := admin(t, client)
	groups := pluginGroups(t, adm, plugin)
	if len(groups) > 0 {
		described, err := adm.DescribeGroups(boundedCtx(t), groups...)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range described.Sorted() {
			if len(g.Members) > 0 {
				t.Errorf("group %s has %d members after Close", g.Group, len(g.Members))
			}
		}
	}
	// A later install reaches a host that follows, not the closed one.
	other := newHost(t, bus, plugin)
	if err := other.FollowLifecycle(boundedCtx(t), eventbus.FollowOptions{}); err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	publishLifecycle(t, bus, catalog.PluginInstalled.String(), plugin, "acme")
	eventbustest.Eventually(t, "the following host to serve acme", func() error {
		if !other.Serves("acme") {
			return errors.New("not yet")
		}
		return nil
	})
	if host.Serves("acme") {
		t.Error("the closed host applied a later install")
	}
}

// Item 9: an install stamped by a publisher whose clock runs an hour ahead
// does not make a later uninstall look older: the uninstall is applied,
// by a following host and by one that replays the history.
func TestFollowLifecycleIgnoresPublishersClocks(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	plugin := eventbustest.UniqueID("host")
	host := newHost(t, bus, plugin)
	if err := host.FollowLifecycle(boundedCtx(t), eventbus.FollowOptions{}); err != nil {
		t.Fatal(err)
	}
	defer host.Close(context.Background())
	serves := func(want bool) {
		t.Helper()
		eventbustest.Eventually(t, fmt.Sprintf("Serves(acme) to be %t", want), func() error {
			if host.Serves("acme") != want {
				return errors.New("not yet")
			}
			return nil
		})
	}
	publishLifecycle(t, bus, catalog.PluginInstalled.String(), plugin, "acme", eventbus.WithTimestamp(time.Now().Add(time.Hour)))
	serves(true)
	publishLifecycle(t, bus, catalog.PluginUninstalled.String(), plugin, "acme")
	serves(false)
}

// Item 9, with the platform's sequence: a replay orders a tenant's events
// by data.sequence, not by their stamps; a live host ignores an event
// with a lower sequence than the last applied.
func TestFollowLifecycleOrdersBySequence(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	plugin := eventbustest.UniqueID("host")
	publish := func(eventType, tenant string, seq int, opts ...eventbus.PublishOption) {
		t.Helper()
		eventbustest.MustPublish(t, bus, eventType, map[string]any{"pluginId": plugin, "tenantId": tenant, "sequence": seq},
			eventbus.PublishMetadata{TenantID: tenant}, opts...)
	}
	ahead := eventbus.WithTimestamp(time.Now().Add(time.Hour))
	publish(catalog.PluginInstalled.String(), "acme", 1, ahead)
	publish(catalog.PluginUninstalled.String(), "acme", 2)
	publish(catalog.PluginInstalled.String(), "globex", 1)

	host := newHost(t, bus, plugin)
	if err := host.FollowLifecycle(boundedCtx(t), eventbus.FollowOptions{FromBeginning: true}); err != nil {
		t.Fatal(err)
	}
	defer host.Close(context.Background())
	if got := host.Tenants(); len(got) != 1 || got[0] != "globex" {
		t.Fatalf("replay served %v, want [globex]", got)
	}
	// Live: globex's deactivation with sequence 3, then a stale activation
	// (sequence 2, read later) that must not bring it back; initech's
	// install, on the same partition, tells when both were read.
	key := eventbus.WithPartitionKey("lifecycle")
	publish(catalog.PluginDeactivated.String(), "globex", 3)
	eventbustest.Eventually(t, "globex to be removed", func() error {
		if host.Serves("globex") {
			return errors.New("still served")
		}
		return nil
	})
	publish(catalog.PluginActivated.String(), "globex", 2, key)
	publish(catalog.PluginActivated.String(), "initech", 1, key)
	eventbustest.Eventually(t, "initech to be served", func() error {
		if !host.Serves("initech") {
			return errors.New("not yet")
		}
		return nil
	})
	if host.Serves("globex") {
		t.Error("an activation with an older sequence than the deactivation applied was applied")
	}
}

// An event whose data.tenantId disagrees with the tenant it was published
// for is ignored: neither tenant is added.
func TestFollowLifecycleIgnoresADataTenantThatDisagrees(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	plugin := eventbustest.UniqueID("host")
	host := newHost(t, bus, plugin)
	if err := host.FollowLifecycle(boundedCtx(t), eventbus.FollowOptions{}); err != nil {
		t.Fatal(err)
	}
	defer host.Close(context.Background())
	key := eventbus.WithPartitionKey("lifecycle")
	eventbustest.MustPublish(t, bus, catalog.PluginInstalled.String(), map[string]string{"pluginId": plugin, "tenantId": "globex"},
		eventbus.PublishMetadata{TenantID: "acme"}, key)
	publishLifecycle(t, bus, catalog.PluginInstalled.String(), plugin, "initech", key)
	eventbustest.Eventually(t, "initech to be served", func() error {
		if !host.Serves("initech") {
			return errors.New("not yet")
		}
		return nil
	})
	if got := host.Tenants(); len(got) != 1 {
		t.Errorf("serving %v, want [initech]", got)
	}
}

// Churn (run with -race): tenants are installed, uninstalled, added and
// removed while their events flow. A tenant that is never served never
// reaches the handler, and once the churn is over a tenant installed last
// gets its first event.
func TestPluginHostLifecycleChurn(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	plugin, event, topic := hostEvent(t, "contact.created")
	host := newHost(t, bus, plugin)
	if err := host.FollowLifecycle(boundedCtx(t), eventbus.FollowOptions{}); err != nil {
		t.Fatal(err)
	}
	defer host.Close(context.Background())
	rec := newHostRecorder()
	mustHostSubscribe(t, host, event, rec.Handle)
	tenants := []string{"t0", "t1", "t2", "t3"}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // data of the churned tenants and of one never served
		defer wg.Done()
		for i := range 200 {
			tenant := tenants[i%len(tenants)]
			if i%5 == 0 {
				tenant = "outsider"
			}
			if _, err := bus.Publish(boundedCtx(t), topic, map[string]int{"n": i}, eventbus.PublishMetadata{TenantID: tenant}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() { // the platform's lifecycle
		defer wg.Done()
		for i := range 60 {
			eventType := catalog.PluginInstalled.String()
			if i%2 == 1 {
				eventType = catalog.PluginUninstalled.String()
			}
			tenant := tenants[(i/2)%len(tenants)]
			if _, err := bus.Publish(boundedCtx(t), eventType, map[string]string{"pluginId": plugin, "tenantId": tenant},
				eventbus.PublishMetadata{TenantID: tenant}, eventbus.WithPartitionKey(tenant)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() { // an operator
		defer wg.Done()
		for i := range 100 {
			tenant := tenants[i%len(tenants)]
			if i%2 == 0 {
				if err := host.AddTenant(tenant); err != nil {
					t.Error(err)
				}
			} else {
				host.RemoveTenant(tenant)
				_ = host.DrainTenant(boundedCtx(t), tenant)
			}
		}
	}()
	wg.Wait()
	publishLifecycle(t, bus, catalog.PluginInstalled.String(), plugin, "final")
	last := eventbustest.MustPublish(t, bus, topic, map[string]string{"n": "last"}, eventbus.PublishMetadata{TenantID: "final"})
	rec.waitFor(t, "the first event of the tenant installed last", func() bool { return len(rec.byTenant["final"]) == 1 })
	if got := rec.ids("final"); got[0] != last {
		t.Errorf("final received %v", got)
	}
	if got := rec.ids("outsider"); len(got) > 0 {
		t.Errorf("a tenant never served received %d events", len(got))
	}
}

// A plugin host on the plugin's provisioned credentials follows the
// lifecycle with read and describe on core.plugin. only: no consumer
// group is made for it (none is left behind by a restart).
func TestACLPluginHostFollowsTheLifecycleOnItsOwnCredentials(t *testing.T) {
	t.Parallel()
	brokers, admin := secureCluster(t)
	ctx := boundedCtx(t)
	for _, topic := range []string{"core.plugin.installed", "core.plugin.activated", "core.plugin.deactivated", "core.plugin.uninstalled"} {
		if err := admin.Topics().Ensure(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	if err := pluginacl.Provision(ctx, kadmOf(t, admin), "crm", pluginacl.Access{Password: "crm-secret", CoreTopics: []string{"core.plugin."}}); err != nil {
		t.Fatal(err)
	}
	platform := eventbustest.NewBusOn(t, admin, eventbus.Config{})
	publishLifecycle(t, platform, catalog.PluginInstalled.String(), "crm", "acme")

	pluginBus := eventbustest.NewBusOn(t, pluginConnection(t, brokers, "crm", "crm-secret"), eventbus.Config{
		DisableTopicCreation: true,
		DLQ:                  deadletter.Config{SchedulerGroup: "plugin.crm.dlq-scheduler"},
	})
	host := newHost(t, pluginBus, "crm")
	if err := host.FollowLifecycle(ctx, eventbus.FollowOptions{FromBeginning: true}); err != nil {
		t.Fatal(err)
	}
	defer host.Close(context.Background())
	if !host.Serves("acme") {
		t.Fatalf("after the replay the host serves %v, want acme", host.Tenants())
	}
	publishLifecycle(t, platform, catalog.PluginUninstalled.String(), "crm", "acme")
	eventbustest.Eventually(t, "acme to be removed", func() error {
		if host.Serves("acme") {
			return errors.New("still served")
		}
		return nil
	})
	adm, err := admin.Admin()
	if err != nil {
		t.Fatal(err)
	}
	if groups := pluginGroups(t, adm, "crm"); len(groups) > 0 {
		t.Errorf("following the lifecycle made groups %v", groups)
	}
}
