package outbox_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

// TestRelayPublishesOnlyCommittedEventsOnce checks that a rolled-back
// transaction's event is never published and a committed one is, once,
// under the ID chosen when it was written.
func TestRelayPublishesOnlyCommittedEventsOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool, bus, topic, rec, w := f.pool, f.bus, f.topic, f.rec, f.w
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
	f := newFixture(t)
	pool, bus, topic, rec, w := f.pool, f.bus, f.topic, f.rec, f.w
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
	f := newFixture(t)
	pool, bus, topic, rec, w := f.pool, f.bus, f.topic, f.rec, f.w
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
	f := newFixture(t)
	pool, brokers, topic, rec, w := f.pool, f.brokers, f.topic, f.rec, f.w
	r1 := startRelay(t, pool, eventbustest.NewBus(t, eventbus.Config{}, brokers...), outbox.RelayConfig{BatchSize: 10})
	r2 := startRelay(t, pool, eventbustest.NewBus(t, eventbus.Config{}, brokers...), outbox.RelayConfig{BatchSize: 10})
	eventbustest.Eventually(t, "the relays to share the shards", func() error {
		if s1, s2 := r1.Stats(), r2.Stats(); s1.Shards != outbox.Shards/2 || s2.Shards != outbox.Shards/2 {
			return fmt.Errorf("the relays hold %d and %d shards", s1.Shards, s2.Shards)
		}
		return nil
	})
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
	eventbustest.Eventually(t, "the relays to count every event sent", func() error {
		s1, s2 := r1.Stats(), r2.Stats()
		if s1.Sent+s2.Sent != keys*perKey {
			return fmt.Errorf("relays sent %d+%d events, want %d", s1.Sent, s2.Sent, keys*perKey)
		}
		return nil
	})
	s1, s2 := r1.Stats(), r2.Stats()
	t.Logf("relay 1: %+v, relay 2: %+v", s1, s2)
	if s1.Sent == 0 || s2.Sent == 0 {
		t.Fatalf("one relay sent everything (%d and %d): the shards were not shared", s1.Sent, s2.Sent)
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
		Breaker: breaker.Config{OpenTimeout: 200 * time.Millisecond}}, addr)
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
		if s := bus.BreakerState(); s != breaker.Open {
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
	reader := eventbustest.NewBus(t, eventbus.Config{}, addr) // the relay's bus has a 1 s delivery timeout
	eventbustest.MustSubscribe(t, reader, topic, rec.Handle, eventbus.InGroup(eventbustest.UniqueID("reader")), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
	events := rec.WaitFor(t, keys*perKey)
	d := checkOrder(t, events, keys, perKey)
	t.Logf("broker outage: %d events, 0 lost, %d duplicates", keys*perKey, d)
}

// TestRelayReconnectsToPostgres ends the relay's database session: it
// reconnects and sends what is written after.
func TestRelayReconnectsToPostgres(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool, bus, topic, rec, w := f.pool, f.bus, f.topic, f.rec, f.w
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

// TestRelayReportsItsBacklog checks Backlog and the collector: rows wait
// while no relay runs, and a row the bus refuses for good is set aside,
// counted, and does not hold up the rows behind it.
func TestRelayReportsItsBacklog(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	writerBus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	w := newWriter(t, writerBus, outbox.Config{})
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	var ids []string
	inTx(t, pool, func(tx pgx.Tx) error {
		for i, data := range []string{"small", strings.Repeat("x", 4096), "small again"} {
			id, err := w.Publish(t.Context(), tx, topic, data, meta)
			if err != nil {
				return fmt.Errorf("event %d: %w", i, err)
			}
			ids = append(ids, id)
		}
		return nil
	})
	// The relay's bus allows smaller events than the writer's.
	relayBus := eventbustest.NewBus(t, eventbus.Config{MaxEventBytes: 2048})
	r, err := outbox.NewRelay(pool, relayBus, outbox.RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Backlog(t.Context())
	if err != nil || b.Rows != 3 || b.OldestAge <= 0 {
		t.Fatalf("backlog before the relay ran: %+v, %v", b, err)
	}
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, relayBus, topic, rec.Handle, eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go r.Run(ctx)
	rec.WaitForID(t, ids[2])
	eventbustest.Eventually(t, "the backlog to hold only the dead row", func() error {
		b, err := r.Backlog(t.Context())
		if err != nil || b.Rows != 0 || b.Dead != 1 || r.Stats().Dead != 1 {
			return fmt.Errorf("backlog %+v (%v), stats %+v", b, err, r.Stats())
		}
		return nil
	})
	var lastErr string
	if err := pool.QueryRow(t.Context(), "SELECT last_error FROM eventbus_outbox WHERE event_id = $1", ids[1]).Scan(&lastErr); err != nil || !strings.Contains(lastErr, "limit") {
		t.Fatalf("the dead row's last_error: %q (%v)", lastErr, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collector())
	got, err := testutil.GatherAndCount(reg, "eventbus_outbox_backlog_rows", "eventbus_outbox_dead_rows", "eventbus_outbox_sent_total", "eventbus_outbox_up")
	if err != nil || got != 4 {
		t.Fatalf("gathered %d outbox metrics (%v), want 4", got, err)
	}
	if v := testutil.ToFloat64(gauge(t, reg, "eventbus_outbox_dead_rows")); v != 1 {
		t.Fatalf("eventbus_outbox_dead_rows %v, want 1", v)
	}
}

// gauge returns the one metric named name of reg, as a collector.
func gauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: "copy"}, func() float64 { return mf.GetMetric()[0].GetGauge().GetValue() })
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// TestRelayTakesOverTheShardsOfAStoppedRelay: when one of two relays
// stops (its session ends, its locks go with it), the other takes all the
// shards at its next poll and sends what is written after.
func TestRelayTakesOverTheShardsOfAStoppedRelay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool, bus, topic, rec, w := f.pool, f.bus, f.topic, f.rec, f.w
	r1 := startRelay(t, pool, bus, outbox.RelayConfig{})
	r2, err := outbox.NewRelay(pool, bus, outbox.RelayConfig{PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r2.Run(ctx) }()
	eventbustest.Eventually(t, "the relays to share the shards", func() error {
		if s1, s2 := r1.Stats(), r2.Stats(); s1.Shards != outbox.Shards/2 || s2.Shards != outbox.Shards/2 {
			return fmt.Errorf("the relays hold %d and %d shards", s1.Shards, s2.Shards)
		}
		return nil
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	eventbustest.Eventually(t, "the remaining relay to hold every shard", func() error {
		if s := r1.Stats(); s.Shards != outbox.Shards {
			return fmt.Errorf("it holds %d shards", s.Shards)
		}
		return nil
	})
	var ids []string
	inTx(t, pool, func(tx pgx.Tx) error {
		for k := range 64 { // keys in every shard, most likely
			id, err := w.Publish(t.Context(), tx, topic, k, eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey(fmt.Sprint("order-", k)))
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	for _, id := range ids {
		rec.WaitForID(t, id)
	}
}

// TestRelayVacuumsTheTableItEmpties: the rows the relay deletes leave
// index entries behind that every read walks over; after every so many
// deleted rows the relay vacuums the table itself.
func TestRelayVacuumsTheTableItEmpties(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r, err := outbox.NewRelay(f.pool, f.bus, outbox.RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	vacuums := outbox.SetVacuumEvery(r, 100)
	var last string
	inTx(t, f.pool, func(tx pgx.Tx) error {
		for n := range 300 {
			id, err := f.w.Publish(t.Context(), tx, f.topic, n, eventbus.PublishMetadata{TenantID: "acme"})
			if err != nil {
				return err
			}
			last = id
		}
		return nil
	})
	runRelay(t, r)
	f.rec.WaitForID(t, last)
	eventbustest.Eventually(t, "the relay to vacuum the table", func() error {
		if n := vacuums(); n == 0 {
			return fmt.Errorf("no vacuum")
		}
		if n := count(t, f.pool, "SELECT coalesce(max(vacuum_count), 0)::int FROM pg_stat_user_tables WHERE relname = 'eventbus_outbox'"); n == 0 {
			return fmt.Errorf("PostgreSQL counts no vacuum of the table yet")
		}
		return nil
	})
}
