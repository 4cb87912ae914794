package outbox_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

// TestRelayPublishesOnlyCommittedEventsOnce checks that a rolled-back
// transaction's event is never published and a committed one is, once,
// under the ID chosen when it was written.
func TestRelayPublishesOnlyCommittedEventsOnce(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.SubscribeOptions{})
	w := newWriter(t, bus, outbox.Config{})
	meta := eventbus.PublishMetadata{TenantID: "acme"}

	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Publish(t.Context(), tx, topic, "rolled back", meta); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	var id string
	inTx(t, pool, func(tx pgx.Tx) error {
		id, err = outbox.Publish(t.Context(), tx, w, eventbus.Name[string](topic), "committed", meta, eventbus.WithHeader("x-via", "outbox"))
		return err
	})
	r := startRelay(t, pool, bus, outbox.RelayConfig{})
	ev := rec.WaitForID(t, id)
	if string(ev.Data) != `"committed"` || ev.TenantID != "acme" {
		t.Fatalf("arrived as %+v", ev)
	}
	waitEmpty(t, pool, "eventbus_outbox")
	// One more event through the same relay: whatever came before it has
	// arrived by then.
	var last string
	inTx(t, pool, func(tx pgx.Tx) error {
		last, err = w.Publish(t.Context(), tx, topic, "last", meta)
		return err
	})
	rec.WaitForID(t, last)
	if got := rec.Events(); len(got) != 2 || got[0].ID != id {
		t.Fatalf("%d events arrived (%v), want the committed one then the last", len(got), got)
	}
	eventbustest.Eventually(t, "the relay to count 2 events sent", func() error {
		if s := r.Stats(); s.Sent != 2 || s.Shards != outbox.Shards {
			return fmt.Errorf("relay stats %+v, want 2 sent and every shard held", s)
		}
		return nil
	})
}

// TestRelayBatchInOneTransactionArrivesInOrderPerKey writes 300 events
// of 6 keys in one transaction.
func TestRelayBatchInOneTransactionArrivesInOrderPerKey(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.SubscribeOptions{})
	w := newWriter(t, bus, outbox.Config{})
	const keys, perKey = 6, 50
	inTx(t, pool, func(tx pgx.Tx) error {
		for n := range perKey {
			for k := range keys {
				key := fmt.Sprintf("order-%d", k)
				if _, err := w.Publish(t.Context(), tx, topic, seq{key, n}, eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey(key)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	startRelay(t, pool, bus, outbox.RelayConfig{})
	events := rec.WaitFor(t, keys*perKey)
	if d := checkOrder(t, events, keys, perKey); d != 0 {
		t.Fatalf("%d duplicates", d)
	}
}

// TestRelayDeliversTransactionsThatCommitOutOfOrder: transaction A writes
// first (the lower id) and commits after B. A relay that kept a cursor
// ("id > last sent") would have passed A's id when it sent B's event, and
// never send A's.
func TestRelayDeliversTransactionsThatCommitOutOfOrder(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.SubscribeOptions{})
	w := newWriter(t, bus, outbox.Config{})
	startRelay(t, pool, bus, outbox.RelayConfig{})
	meta := eventbus.PublishMetadata{TenantID: "acme"}

	txA, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback(t.Context())
	idA, err := w.Publish(t.Context(), txA, topic, "A", meta)
	if err != nil {
		t.Fatal(err)
	}
	var idB string
	inTx(t, pool, func(tx pgx.Tx) error {
		idB, err = w.Publish(t.Context(), tx, topic, "B", meta)
		return err
	})
	rec.WaitForID(t, idB)
	if err := txA.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec.WaitForID(t, idA)
	waitEmpty(t, pool, "eventbus_outbox")
}

// TestTwoRelaysKeepPerKeyOrder runs two relays (each with its own bus) on
// one table while 20 writers commit 30 events each, one key per writer,
// one transaction per event: every key's events arrive in commit order.
func TestTwoRelaysKeepPerKeyOrder(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	brokers := eventbustest.Brokers(t)
	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.SubscribeOptions{})
	w := newWriter(t, bus, outbox.Config{})
	r1 := startRelay(t, pool, eventbustest.NewBus(t, eventbus.Config{}, brokers...), outbox.RelayConfig{BatchSize: 10})
	r2 := startRelay(t, pool, eventbustest.NewBus(t, eventbus.Config{}, brokers...), outbox.RelayConfig{BatchSize: 10})
	const keys, perKey = 20, 30
	var wg sync.WaitGroup
	for k := range keys {
		wg.Go(func() {
			key := fmt.Sprintf("order-%d", k)
			for n := range perKey {
				err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
					_, err := w.Publish(t.Context(), tx, topic, seq{key, n}, eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey(key))
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	events := rec.WaitFor(t, keys*perKey)
	if d := checkOrder(t, events, keys, perKey); d != 0 {
		t.Fatalf("%d duplicates", d)
	}
	s1, s2 := r1.Stats(), r2.Stats()
	t.Logf("relay 1: %+v, relay 2: %+v", s1, s2)
	if s1.Shards+s2.Shards != outbox.Shards || s1.Sent+s2.Sent != keys*perKey {
		t.Fatalf("relays hold %d+%d shards (want %d in all) and sent %d+%d events (want %d)",
			s1.Shards, s2.Shards, outbox.Shards, s1.Sent, s2.Sent, keys*perKey)
	}
}

// TestRelayWaitsOutABrokerOutage stops the broker under a stream of
// commits: nothing is lost, the order per key holds, the relay catches up.
func TestRelayWaitsOutABrokerOutage(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	dir := t.TempDir()
	broker := eventbustest.StartEmbedded(t, embedded.Config{DataDir: dir})
	addr := broker.Addrs()[0]
	bus := eventbustest.NewBus(t, eventbus.Config{DeliveryTimeout: time.Second,
		Breaker: eventbus.BreakerConfig{OpenTimeout: 200 * time.Millisecond}}, addr)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	w := newWriter(t, bus, outbox.Config{})
	startRelay(t, pool, bus, outbox.RelayConfig{MaxBackoff: 500 * time.Millisecond})
	const keys, perKey = 4, 60
	write := func(n int) {
		inTx(t, pool, func(tx pgx.Tx) error {
			for k := range keys {
				key := fmt.Sprintf("order-%d", k)
				if _, err := w.Publish(t.Context(), tx, topic, seq{key, n}, eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey(key)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for n := range 20 {
		write(n)
	}
	waitEmpty(t, pool, "eventbus_outbox")
	broker.Close()
	for n := 20; n < 40; n++ { // commits while the broker is down
		write(n)
	}
	// The relay keeps failing until the breaker opens.
	eventbustest.Eventually(t, "the relay to open the breaker", func() error {
		if s := bus.BreakerState(); s != eventbus.BreakerOpen {
			return fmt.Errorf("breaker %s", s)
		}
		return nil
	})
	if n := count(t, pool, "SELECT count(*) FROM eventbus_outbox"); n != keys*20 {
		t.Fatalf("%d rows in the outbox with the broker down, want %d", n, keys*20)
	}
	eventbustest.StartEmbedded(t, embedded.Config{Addr: addr, DataDir: dir})
	for n := 40; n < perKey; n++ {
		write(n)
	}
	waitEmpty(t, pool, "eventbus_outbox")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.SubscribeOptions{GroupID: eventbustest.UniqueID("reader"), Delivery: eventbus.Delivery{FromBeginning: true}})
	events := rec.WaitFor(t, keys*perKey)
	d := checkOrder(t, events, keys, perKey)
	t.Logf("broker outage: %d events, 0 lost, %d duplicates", keys*perKey, d)
}

// TestRelayReconnectsToPostgres ends the relay's database session: it
// reconnects and sends what is written after.
func TestRelayReconnectsToPostgres(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.SubscribeOptions{})
	w := newWriter(t, bus, outbox.Config{})
	r := startRelay(t, pool, bus, outbox.RelayConfig{MinBackoff: 10 * time.Millisecond})
	eventbustest.Eventually(t, "the relay to hold the shards", func() error {
		if s := r.Stats(); s.Shards != outbox.Shards {
			return fmt.Errorf("%d shards held", s.Shards)
		}
		return nil
	})
	if n := count(t, pool, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'eventbus-outbox-relay'"); n != 1 {
		t.Fatalf("terminated %d relay sessions, want 1", n)
	}
	var id string
	inTx(t, pool, func(tx pgx.Tx) error {
		var err error
		id, err = w.Publish(t.Context(), tx, topic, "after", eventbus.PublishMetadata{TenantID: "acme"})
		return err
	})
	rec.WaitForID(t, id)
}
