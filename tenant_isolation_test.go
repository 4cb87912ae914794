package eventbus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
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
// by Bus.Subscribe, PluginClient and PluginHost alike, and delivered by
// none of them.
func TestScopeMismatchIsMalformedOnEveryPath(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	bus := eventbustest.NewBus(t, fastDLQ(), brokers...)
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
			name: "Bus.Subscribe", topic: busTopic, group: eventbus.EffectiveGroupID(busGroup, "acme", "w1"),
			subscribe: func(topic string, h eventbus.Handler) {
				eventbustest.MustSubscribe(t, bus, topic, h, eventbus.SubscribeOptions{GroupID: busGroup, TenantID: "acme", WorkspaceID: "w1"})
			},
			publish: func() string {
				return eventbustest.MustPublish(t, bus, busTopic, "good", eventbus.PublishMetadata{TenantID: "acme", WorkspaceID: "w1"})
			},
		},
		{
			name: "PluginClient", topic: "plugin." + clientPlugin + "." + clientEvent, group: eventbus.EffectiveGroupID(acmeClient.GroupID("plugin."+clientPlugin+"."+clientEvent), "acme", "w1"),
			subscribe: func(_ string, h eventbus.Handler) {
				mustPluginSubscribe(t, acmeClient, clientEvent, h, eventbus.PluginSubscribeOptions{})
			},
			publish: func() string { return mustPluginPublish(t, acmeClient, clientEvent, "good") },
		},
		{
			name: "PluginHost", topic: "plugin." + hostPlugin + "." + hostEvent, group: host.GroupID("plugin." + hostPlugin + "." + hostEvent),
			subscribe: func(_ string, h eventbus.Handler) {
				mustHostSubscribe(t, host, hostEvent, h, eventbus.PluginSubscribeOptions{})
			},
			publish: func() string {
				id, err := hostAcme.Publish(wsCtx, hostEvent, "good")
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
			entries := waitList(t, bus.DLQ(), eventbus.FailedEventFilter{Topic: p.topic}, len(forged))
			for _, e := range entries {
				if !strings.HasPrefix(e.FailureReason, eventbus.ReasonMalformed) || e.ConsumerGroup != p.group || !e.Permanent {
					t.Errorf("entry of %s: reason %q, group %q (want %q), permanent %t", e.EventID, e.FailureReason, e.ConsumerGroup, p.group, e.Permanent)
				}
			}
		})
	}
}
