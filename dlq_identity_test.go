package eventbus_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
)

// TestDLQEntriesOfTenantsSharingAHostGroupAreSeparate: a host's group
// serves every tenant, so two tenants' events with the same ID (a replay,
// WithEventID) that both fail are two entries, not one that the second
// failure overwrites.
func TestDLQEntriesOfTenantsSharingAHostGroupAreSeparate(t *testing.T) {
	t.Parallel()
	bus := startDLQ(t, eventbustest.NewBus(t, fastDLQ()))
	plugin, event, topic := hostEvent(t, "invoice.issued")
	host := newHost(t, bus, plugin, "acme", "globex")
	mustHostSubscribe(t, host, event, func(_ context.Context, ev eventbus.RawEvent) error {
		return eventbus.Permanent(errors.New("no ledger for " + ev.TenantID))
	}, eventbus.InGroup("billing"))

	const eventID = "invoice-2026-0001"
	for _, tenant := range []string{"acme", "globex"} {
		eventbustest.MustPublish(t, bus, topic, tenant, eventbus.PublishMetadata{TenantID: tenant}, eventbus.WithEventID(eventID))
	}
	entries := waitList(t, bus.DLQ(), deadletter.Query{Topic: topic}, 2)
	var tenants, ids []string
	for _, e := range entries {
		tenants = append(tenants, e.TenantID)
		ids = append(ids, e.ID)
		if e.EventID != eventID || !strings.Contains(e.FailureReason, "no ledger for "+e.TenantID) {
			t.Errorf("entry %s: event %s, reason %q", e.ID, e.EventID, e.FailureReason)
		}
		if want := deadletter.ID(groupOf(t, host, topic, eventbus.InGroup("billing")), topic, e.TenantID, eventID); e.ID != want {
			t.Errorf("entry of %s has ID %s, want deadletter.ID(group, topic, tenant, event) = %s", e.TenantID, e.ID, want)
		}
	}
	slices.Sort(tenants)
	if !slices.Equal(tenants, []string{"acme", "globex"}) || ids[0] == ids[1] {
		t.Fatalf("entries of tenants %v with IDs %v, want one each for acme and globex", tenants, ids)
	}
}

// legacyFailedEventID is the ID entries had before the tenant and topic
// were part of it: a hash of group and event ID.
func legacyFailedEventID(group, eventID string) string {
	sum := sha256.Sum256([]byte(group + "\x00" + eventID))
	return hex.EncodeToString(sum[:16])
}

// TestDLQEntryStoredWithALegacyIDStaysUsable: an entry written before the
// tenant and topic were part of its ID keeps the ID it was stored with,
// and is read, retried (the retry reaches its group, which resolves it)
// and deleted by that ID.
func TestDLQEntryStoredWithALegacyIDStaysUsable(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	bus := startDLQ(t, eventbustest.NewBus(t, fastDLQ(), brokers...))
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("mailer")
	var healthy atomic.Bool
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		if !healthy.Load() {
			return eventbus.Permanent(errors.New("mailbox rejected"))
		}
		return rec.Handle(ctx, ev)
	}, eventbus.InGroup(group))
	id := eventbustest.MustPublish(t, bus, topic, "hello", eventbus.PublishMetadata{TenantID: "acme"})
	current := deadletter.ID(group, topic, "acme", id)
	waitEntry(t, bus.DLQ(), current, hasStatus(deadletter.StatusMaxRetriesExceeded))

	// Store the same entry as the previous version of the bus did: under
	// the legacy ID, as its key and its id. The current one is deleted.
	legacy := legacyFailedEventID(group, id)
	stored := readEntryRecord(t, brokers, "dlq."+topic, current)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(stored.Value, &fields); err != nil {
		t.Fatal(err)
	}
	fields["id"], _ = json.Marshal(legacy)
	value, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.ProduceSync(ctxT(t), &kgo.Record{Topic: stored.Topic, Partition: stored.Partition, Key: []byte(legacy), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := bus.DLQ().Delete(ctxT(t), current); err != nil {
		t.Fatal(err)
	}

	e := waitEntry(t, bus.DLQ(), legacy, hasStatus(deadletter.StatusMaxRetriesExceeded))
	if e.EventID != id || e.ConsumerGroup != group || e.TenantID != "acme" {
		t.Fatalf("legacy entry %+v", e)
	}
	healthy.Store(true)
	if err := bus.DLQ().Retry(ctxT(t), legacy); err != nil {
		t.Fatal(err)
	}
	rec.WaitForID(t, id)
	waitEntry(t, bus.DLQ(), legacy, hasStatus(deadletter.StatusResolved))
	if err := bus.DLQ().Delete(ctxT(t), legacy); err != nil {
		t.Fatal(err)
	}
	eventbustest.Eventually(t, "the legacy entry to be deleted", func() error {
		if _, err := bus.DLQ().Get(ctxT(t), legacy); !errors.Is(err, deadletter.ErrNotFound) {
			return fmt.Errorf("entry: %v", err)
		}
		return nil
	})
	if _, err := bus.DLQ().Get(ctxT(t), current); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("the retry of the legacy entry recreated an entry under the current ID: %v", err)
	}
}

// readEntryRecord reads dlqTopic from the start for the newest record of
// entry id.
func readEntryRecord(t *testing.T, brokers []string, dlqTopic, id string) *kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(dlqTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t)
	for ctx.Err() == nil {
		var found *kgo.Record
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if string(r.Key) == id && r.Value != nil {
				found = r
			}
		})
		if found != nil {
			return found
		}
	}
	t.Fatalf("no record of entry %s on %s", id, dlqTopic)
	return nil
}
