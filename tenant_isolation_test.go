package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
)

// scopeMismatch is a record whose headers say headerTenant (and
// headerWorkspace) while its event says bodyTenant (and bodyWorkspace), as
// a producer other than the bus may write it.
func scopeMismatch(topic, id, headerTenant, headerWorkspace, bodyTenant, bodyWorkspace string) *kgo.Record {
	ts := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	ws := ""
	if bodyWorkspace != "" {
		ws = fmt.Sprintf(`,"workspaceId":%q`, bodyWorkspace)
	}
	value := fmt.Sprintf(`{"id":%q,"type":%q,"tenantId":%q%s,"timestamp":%q,"data":{"forged":true},"metadata":{"source":"core","correlationId":"c-1","version":"1.0"}}`,
		id, topic, bodyTenant, ws, ts)
	return &kgo.Record{
		Topic: topic,
		Key:   []byte(headerTenant), // the partition of the header tenant's events
		Value: []byte(value),
		Headers: []kgo.RecordHeader{
			{Key: "event-id", Value: []byte(id)},
			{Key: "event-type", Value: []byte(topic)},
			{Key: "tenant-id", Value: []byte(headerTenant)},
			{Key: "workspace-id", Value: []byte(headerWorkspace)},
			{Key: "correlation-id", Value: []byte("c-1")},
			{Key: "timestamp", Value: []byte(ts)},
		},
	}
}

// TestScopeMismatchIsMalformedOnEveryPath: a record whose tenant-id (or
// workspace-id) header and event disagree is dead-lettered as malformed
// by Subscribe on a Bus, PluginClient and PluginHost alike, and delivered by
// none of them.
func TestScopeMismatchIsMalformedOnEveryPath(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	bus := startDLQ(t, eventbustest.NewBus(t, fastDLQ(), brokers...))
	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	type path struct {
		name      string
		topic     string
		group     string
		subscribe func(topic string, h eventbus.Handler)
		// publish publishes a good event of acme (workspace w1) on the
		// path's topic.
		publish func() string
	}
	busTopic := eventbustest.UniqueTopic(t, "core.user.created")
	busGroup := eventbustest.UniqueID("g")
	clientPlugin, hostPlugin := eventbustest.UniqueID("mis"), eventbustest.UniqueID("mishost")
	clientEvent, hostEvent := pluginEvent(t, clientPlugin, "contact.created"), pluginEvent(t, hostPlugin, "contact.created")
	acmeClient := newPluginClient(t, bus, clientPlugin, "acme", "w1")
	host := newHost(t, bus, hostPlugin, "acme", "globex")
	hostAcme, err := host.Client("acme")
	if err != nil {
		t.Fatal(err)
	}
	wsCtx := eventbus.WithEventContext(context.Background(), eventbus.PublishMetadata{TenantID: "acme", WorkspaceID: "w1"})
	paths := []path{
		{
			name: "Subscribe on a Bus", topic: busTopic, group: groupOf(t, bus, busTopic, eventbus.InGroup(busGroup), eventbus.ForTenant("acme"), eventbus.ForWorkspace("w1")),
			subscribe: func(topic string, h eventbus.Handler) {
				eventbustest.MustSubscribe(t, bus, topic, h, eventbus.InGroup(busGroup), eventbus.ForTenant("acme"), eventbus.ForWorkspace("w1"))
			},
			publish: func() string {
				return eventbustest.MustPublish(t, bus, busTopic, "good", eventbus.PublishMetadata{TenantID: "acme", WorkspaceID: "w1"})
			},
		},
		{
			name: "PluginClient", topic: "plugin." + clientPlugin + "." + clientEvent, group: groupOf(t, acmeClient, clientEvent),
			subscribe: func(_ string, h eventbus.Handler) {
				mustPluginSubscribe(t, acmeClient, clientEvent, h)
			},
			publish: func() string { return mustPluginPublish(t, acmeClient, clientEvent, "good") },
		},
		{
			name: "PluginHost", topic: "plugin." + hostPlugin + "." + hostEvent, group: groupOf(t, host, hostEvent),
			subscribe: func(_ string, h eventbus.Handler) {
				mustHostSubscribe(t, host, hostEvent, h)
			},
			publish: func() string {
				id, err := eventbus.Publish(wsCtx, hostAcme, eventbus.Name[string](hostEvent), "good")
				if err != nil {
					t.Fatal(err)
				}
				return id
			},
		},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			rec := eventbustest.NewRecorder()
			p.subscribe(p.topic, rec.Handle)
			forged := []*kgo.Record{
				scopeMismatch(p.topic, eventbustest.UniqueID("tenant-mismatch"), "acme", "w1", "globex", "w1"),
				scopeMismatch(p.topic, eventbustest.UniqueID("workspace-mismatch"), "acme", "w1", "acme", "w2"),
			}
			for _, r := range forged {
				if err := raw.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			// Same key, same partition: once this one arrives, the forged
			// records were handled.
			good := p.publish()
			rec.WaitForID(t, good)
			for _, ev := range rec.Events() {
				if ev.ID != good {
					t.Errorf("delivered the forged event %s (tenant %q, workspace %q)", ev.ID, ev.TenantID, ev.WorkspaceID)
				}
			}
			entries := waitList(t, bus.DLQ(), deadletter.Query{Topic: p.topic}, len(forged))
			for _, e := range entries {
				if !strings.HasPrefix(e.FailureReason, deadletter.ReasonMalformed) || e.ConsumerGroup != p.group || !e.Permanent {
					t.Errorf("entry of %s: reason %q, group %q (want %q), permanent %t", e.EventID, e.FailureReason, e.ConsumerGroup, p.group, e.Permanent)
				}
			}
		})
	}
}

// TestTenantIDsCannotShareAGroup: tenant "acme" with workspace "w1" and
// tenant "acme.workspace.w1" would join the same consumer group
// (<group>.tenant.acme.workspace.w1), and each member would skip and
// commit the other's events. Tenant and workspace IDs with a dot are
// rejected, so no two scopes share a group: the first client (on its own
// bus) gets every one of its events.
func TestTenantIDsCannotShareAGroup(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	busA := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	busB := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	plugin := eventbustest.UniqueID("collide")
	event := pluginEvent(t, plugin, "deal.updated")
	a := newPluginClient(t, busA, plugin, "acme", "w1")
	rec := eventbustest.NewRecorder()
	mustPluginSubscribe(t, a, event, rec.Handle)

	b, errB := eventbus.NewPluginClient(busB, eventbus.PluginScope{PluginID: plugin, TenantID: "acme.workspace.w1"})
	if errB == nil {
		mustPluginSubscribe(t, b, event, func(context.Context, eventbus.RawEvent) error { return nil })
	}
	// The same through Subscribe on a Bus: a group of its own for each scope.
	topic := "plugin." + plugin + "." + event
	group := eventbustest.UniqueID("g")
	busRec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, busA, topic, busRec.Handle, eventbus.InGroup(group), eventbus.ForTenant("acme"), eventbus.ForWorkspace("w1"))
	_, errBus := eventbus.Subscribe(ctxT(t), busB, eventbus.Name[json.RawMessage](topic), func(context.Context, eventbus.RawEvent) error { return nil }, eventbus.InGroup(group), eventbus.ForTenant("acme.workspace.w1"))

	// Keys spread the events over every partition, so each member of a
	// shared group would own some of them.
	var ids []string
	for i := range 12 {
		ids = append(ids, mustPluginPublish(t, a, event, i, eventbus.WithPartitionKey(fmt.Sprintf("deal-%d", i))))
	}
	for _, id := range ids {
		rec.WaitForID(t, id)
		busRec.WaitForID(t, id)
	}
	for name, err := range map[string]error{"NewPluginClient": errB, "Subscribe on a Bus": errBus} {
		if !errors.Is(err, eventbus.ErrInvalidTenantID) || !strings.Contains(err.Error(), `"acme.workspace.w1"`) {
			t.Errorf("%s with tenant \"acme.workspace.w1\": %v, want ErrInvalidTenantID naming it", name, err)
		}
	}
}

func TestValidateTenantID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"acme", "Acme-Corp", "tenant_42", "3f9a1c2e-7b4d-4e1a-9c3b-0a1b2c3d4e5f", strings.Repeat("a", eventbus.MaxScopeIDLen)} {
		if err := eventbus.ValidateTenantID(id); err != nil {
			t.Errorf("ValidateTenantID(%q) = %v, want nil", id, err)
		}
		if err := eventbus.ValidateWorkspaceID(id); err != nil {
			t.Errorf("ValidateWorkspaceID(%q) = %v, want nil", id, err)
		}
	}
	if err := eventbus.ValidateWorkspaceID(""); err != nil {
		t.Errorf("ValidateWorkspaceID(\"\") = %v, want nil (no workspace)", err)
	}
	for _, id := range []string{"", "  "} {
		if err := eventbus.ValidateTenantID(id); !errors.Is(err, eventbus.ErrTenantRequired) {
			t.Errorf("ValidateTenantID(%q) = %v, want ErrTenantRequired", id, err)
		}
	}
	for id, want := range map[string]string{
		"acme.workspace.w1": `invalid tenant ID "acme.workspace.w1": it contains '.'`,
		"acme corp":         `use e.g. "acme-corp"`,
		"café":              `it contains the byte 0xc3`,
		"a\x00b":            `it contains the byte 0x0`,
		"tenant/1":          `it contains '/'`,
		strings.Repeat("a", eventbus.MaxScopeIDLen+1): "it is 129 bytes long",
	} {
		err := eventbus.ValidateTenantID(id)
		if !errors.Is(err, eventbus.ErrInvalidTenantID) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "use e.g.") {
			t.Errorf("ValidateTenantID(%q) = %v, want ErrInvalidTenantID saying %q and showing a valid ID", id, err, want)
		}
		if err := eventbus.ValidateWorkspaceID(id); !errors.Is(err, eventbus.ErrInvalidWorkspaceID) {
			t.Errorf("ValidateWorkspaceID(%q) = %v, want ErrInvalidWorkspaceID", id, err)
		}
	}
	bus := eventbustest.NewBus(t, eventbus.Config{})
	if _, err := eventbus.NewPluginHost(bus, eventbus.PluginHostConfig{PluginID: "crm", Tenants: []string{"acme.x"}}); !errors.Is(err, eventbus.ErrInvalidTenantID) {
		t.Errorf("NewPluginHost with tenant \"acme.x\": %v, want ErrInvalidTenantID", err)
	}
	h := newHost(t, bus, "crm")
	if err := h.AddTenant("acme.x"); !errors.Is(err, eventbus.ErrInvalidTenantID) || h.Serves("acme.x") {
		t.Errorf("AddTenant(\"acme.x\"): %v, want ErrInvalidTenantID", err)
	}
	if _, err := eventbus.NewPluginClient(bus, eventbus.PluginScope{PluginID: "crm", TenantID: "acme", WorkspaceID: "w.1"}); !errors.Is(err, eventbus.ErrInvalidWorkspaceID) {
		t.Errorf("NewPluginClient with workspace \"w.1\": %v, want ErrInvalidWorkspaceID", err)
	}
	p := newPluginClient(t, bus, "crm", "acme", "")
	ctx := eventbus.WithEventContext(ctxT(t), eventbus.PublishMetadata{TenantID: "acme", WorkspaceID: "w.1"})
	if _, err := eventbus.Publish(ctx, p, "contact.created", 1); !errors.Is(err, eventbus.ErrInvalidWorkspaceID) {
		t.Errorf("Publish on a PluginClient with the context's workspace \"w.1\": %v, want ErrInvalidWorkspaceID", err)
	}
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	if _, err := eventbus.Subscribe(ctxT(t), bus, eventbus.Name[json.RawMessage](topic), func(context.Context, eventbus.RawEvent) error { return nil }, eventbus.ForTenant("acme"), eventbus.ForWorkspace("w.1")); !errors.Is(err, eventbus.ErrInvalidWorkspaceID) {
		t.Errorf("Subscribe with workspace \"w.1\": %v, want ErrInvalidWorkspaceID", err)
	}
}
