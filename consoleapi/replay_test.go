package consoleapi_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/audit"
	"github.com/plexica/eventbus/consoleapi"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
)

// TestReplay: one event, picked by its place in its topic, is delivered
// again to one running group; another group on the topic does not get it
// again; the replay is in the audit trail.
func TestReplay(t *testing.T) {
	f := newFixture(t)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	group, other := eventbustest.UniqueID("mailer"), eventbustest.UniqueID("crm")
	consumer := eventbustest.NewBus(t, eventbus.Config{}, f.bus.Client().Brokers()...)
	rec, otherRec := eventbustest.NewRecorder(), eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, consumer, topic, rec.Handle, eventbus.InGroup(group))
	eventbustest.MustSubscribe(t, consumer, topic, otherRec.Handle, eventbus.InGroup(other))
	var ids []string
	for i := range 3 {
		ids = append(ids, eventbustest.MustPublish(t, f.bus, topic, i, eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey("one-key")))
	}
	rec.WaitFor(t, 3)
	otherRec.WaitFor(t, 3)
	ends, err := f.adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	partition := int32(-1)
	for p, o := range ends[topic] {
		if o.Offset == 3 {
			partition = p
		}
	}
	if partition < 0 {
		t.Fatalf("no partition holds the 3 events: %+v", ends[topic])
	}

	var out consoleapi.ReplayResponse
	if code, c := f.call(t, "POST", "/api/groups/"+group+"/replay", adminSec, consoleapi.ReplayRequest{Topic: topic, Partition: partition, Offset: 1}, &out); code != 202 {
		t.Fatalf("replay: %d %s", code, c)
	}
	if out.EventID != ids[1] || out.DLQID == "" {
		t.Errorf("replay answered %+v, want event %s", out, ids[1])
	}
	got := rec.WaitFor(t, 4)
	if got[3].ID != ids[1] {
		t.Errorf("the group's 4th delivery is %s, want the replayed %s", got[3].ID, ids[1])
	}
	eventbustest.Eventually(t, "the replay's entry resolved", func() error {
		e, err := f.bus.DLQ().Get(context.Background(), out.DLQID)
		if err != nil || e.Status != deadletter.StatusResolved {
			return fmt.Errorf("entry %+v, %v", e.Status, err)
		}
		return nil
	})
	// The other group: the next event it gets is a new one, never the replay.
	next := eventbustest.MustPublish(t, f.bus, topic, 3, eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey("one-key"))
	for _, e := range otherRec.WaitFor(t, 4)[3:] {
		if e.ID != next {
			t.Errorf("the other group got %s, want only the new %s", e.ID, next)
		}
	}

	page, err := f.audit.List(context.Background(), audit.Query{Action: audit.ActionGroupReplay})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].Actor != "ana" || page.Items[0].Target != group || page.Items[0].Detail["eventId"] != ids[1] || page.Items[0].TenantID != "acme" {
		t.Errorf("the trail holds %+v, want ana's replay of %s to %s", page.Items, ids[1], group)
	}

	for _, tc := range []struct {
		body  any
		token string
		code  int
	}{
		{consoleapi.ReplayRequest{Topic: topic, Partition: partition, Offset: 1}, acmeSec, 403},
		{consoleapi.ReplayRequest{Topic: topic, Partition: partition, Offset: 99}, adminSec, 404},
		{consoleapi.ReplayRequest{Topic: topic, Partition: 42, Offset: 0}, adminSec, 404},
		{consoleapi.ReplayRequest{Topic: "core.user.create", Partition: 0, Offset: 0}, adminSec, 400},
		{consoleapi.ReplayRequest{Topic: topic, Partition: -1, Offset: 0}, adminSec, 400},
		{map[string]any{"topic": topic, "id": "x"}, adminSec, 400},
	} {
		if code, _ := f.call(t, "POST", "/api/groups/"+group+"/replay", tc.token, tc.body, nil); code != tc.code {
			t.Errorf("replay %+v: %d, want %d", tc.body, code, tc.code)
		}
	}
}
