package outbox_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/outbox"
)

// helperEnv, when set, makes the test binary a helper process of the
// crash tests instead of running tests: "relay DSN BROKERS" runs a relay,
// "inbox DSN BROKERS TOPIC GROUP" a subscription whose 10 ms handler
// inserts one effect row per event through the inbox, "writer DSN
// BROKERS TOPIC" a service that commits events and prints their IDs. The
// tests kill it with SIGKILL.
const helperEnv = "OUTBOX_TEST_HELPER"

// crashConsumer is the consumer config of the inbox crash test: a short
// session, so the group notices the killed member quickly.
var crashConsumer = eventbus.ConsumerConfig{SessionTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		if err := runHelper(strings.Fields(os.Getenv(helperEnv))); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(2)
		}
		return
	}
	os.Exit(m.Run())
}

func runHelper(args []string) error {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, args[1])
	if err != nil {
		return err
	}
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: strings.Split(args[2], ",")})
	if err != nil {
		return err
	}
	if err := client.Connect(ctx); err != nil {
		return err
	}
	bus, err := eventbus.NewBus(client, eventbus.Config{Consumer: crashConsumer})
	if err != nil {
		return err
	}
	switch args[0] {
	case "relay":
		r, err := outbox.NewRelay(pool, bus, outbox.RelayConfig{BatchSize: 10})
		if err != nil {
			return err
		}
		return r.Run(ctx) // until killed
	case "inbox":
		in, err := outbox.NewInbox(pool, outbox.InboxConfig{})
		if err != nil {
			return err
		}
		if _, err := eventbus.Subscribe(ctx, bus, eventbus.Name[json.RawMessage](args[3]), in.Handler(args[4], slowEffect), eventbus.InGroup(args[4]), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true})); err != nil {
			return err
		}
		select {} // until killed
	case "writer":
		return runWriter(ctx, pool, bus, args[3])
	}
	return fmt.Errorf("unknown helper %q", args[0])
}

// runWriter is a service that writes an order row and its event in one
// transaction, ten times (key "order-0", events 0 to 9), prints each
// committed event's ID on a line of its own, then "committed", and waits
// to be killed. No relay runs in it: its events are in the outbox only.
func runWriter(ctx context.Context, pool *pgxpool.Pool, bus *eventbus.Bus, topic string) error {
	w, err := outbox.NewWriter(bus, outbox.Config{})
	if err != nil {
		return err
	}
	for n := range 10 {
		var id string
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO orders (n) VALUES ($1)", n); err != nil {
				return err
			}
			id, err = w.Publish(ctx, tx, topic, seq{"order-0", n}, eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithPartitionKey("order-0"))
			return err
		})
		if err != nil {
			return err
		}
		fmt.Println(id)
	}
	fmt.Println("committed")
	select {} // until killed
}

// slowEffect is the 10 ms handler of the inbox crash test.
func slowEffect(ctx context.Context, tx pgx.Tx, ev eventbus.RawEvent) error {
	if _, err := tx.Exec(ctx, "INSERT INTO effects (event_id, grp) VALUES ($1, 'crash')", ev.ID); err != nil {
		return err
	}
	time.Sleep(10 * time.Millisecond) // the handler's own work, not a wait
	return nil
}

// startHelper runs this binary as a helper process (see helperEnv).
func startHelper(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	return startHelperOut(t, nil, args...)
}

// startHelperOut is startHelper with the helper's standard output to out.
func startHelperOut(t *testing.T, out io.Writer, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+strings.Join(args, " "))
	cmd.Stderr = os.Stderr
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// TestWriterKilledAfterCommitLosesNothing: a service process commits ten
// orders and their events, and is killed with SIGKILL before any relay
// ran; a relay started afterwards delivers every event, in order, once.
func TestWriterKilledAfterCommitLosesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.pool.Exec(t.Context(), "CREATE TABLE orders (n int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	helper := startHelperOut(t, pw, "writer", f.pool.Config().ConnString(), strings.Join(f.brokers, ","), f.topic)
	var ids []string
	lines := bufio.NewScanner(pr)
	for lines.Scan() && lines.Text() != "committed" {
		ids = append(ids, lines.Text())
	}
	if len(ids) != 10 {
		t.Fatalf("the writer committed %d events (%v), want 10", len(ids), lines.Err())
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	pw.Close()
	if n := count(t, f.pool, "SELECT count(*) FROM orders"); n != 10 {
		t.Fatalf("%d orders committed, want 10", n)
	}
	if n := count(t, f.pool, "SELECT count(*) FROM eventbus_outbox"); n != 10 {
		t.Fatalf("%d events in the outbox after the kill, want 10", n)
	}
	startRelay(t, f.pool, f.bus, outbox.RelayConfig{})
	events := f.rec.WaitFor(t, 10)
	for i, ev := range events {
		if ev.ID != ids[i] {
			t.Fatalf("event %d arrived as %s, want %s (the order of commit)", i, ev.ID, ids[i])
		}
	}
	if d := checkOrder(t, events, 1, 10); d != 0 {
		t.Fatalf("%d duplicates", d)
	}
}

// TestRelayKilledMidBatchLosesNothing kills a relay process with SIGKILL
// while it sends a backlog of 2,000 events (20 keys); another relay takes
// over: 0 lost, each key in order, duplicates counted and reported.
func TestRelayKilledMidBatchLosesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pool, brokers, bus, topic, rec, w := f.pool, f.brokers, f.bus, f.topic, f.rec, f.w
	const keys, perKey = 20, 100
	for n := range perKey {
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
	helper := startHelper(t, "relay", pool.Config().ConnString(), strings.Join(brokers, ","))
	eventbustest.Eventually(t, "the relay process to send some events", func() error {
		if n := rec.Len(); n < 200 {
			return fmt.Errorf("%d events arrived", n)
		}
		return nil
	})
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	left := count(t, pool, "SELECT count(*) FROM eventbus_outbox")
	if left == 0 {
		t.Fatal("the relay process sent everything before it was killed; nothing to test")
	}
	startRelay(t, pool, bus, outbox.RelayConfig{})
	waitEmpty(t, pool, "eventbus_outbox")
	// Every event arrived (by ID); the duplicates are those the killed
	// relay sent and did not delete.
	eventbustest.Eventually(t, "every event to arrive", func() error {
		ids := map[string]bool{}
		for _, ev := range rec.Events() {
			ids[ev.ID] = true
		}
		if len(ids) != keys*perKey {
			return fmt.Errorf("%d distinct events arrived, want %d", len(ids), keys*perKey)
		}
		return nil
	})
	d := checkOrder(t, rec.Events(), keys, perKey)
	t.Logf("relay killed with %d of %d events left: 0 lost, %d duplicates", left, keys*perKey, d)
}

// TestInboxConsumerKilledMidBacklog: a consumer whose 10 ms handler
// inserts one effect row per event through the inbox is killed with
// SIGKILL in the middle of a 1,000-event backlog and replaced: every event
// has its effect, none has two (the redelivered ones are skipped).
func TestInboxConsumerKilledMidBacklog(t *testing.T) {
	t.Parallel()
	pool := newPool(t, outbox.Config{})
	in := newInbox(t, pool, outbox.InboxConfig{})
	brokers := eventbustest.Brokers(t)
	bus := eventbustest.NewBus(t, eventbus.Config{Consumer: crashConsumer}, brokers...)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	group := eventbustest.UniqueID("billing")
	const events = 1000
	batch := make([]eventbus.BatchEvent, 0, eventbus.MaxBatchSize)
	for i := range events {
		batch = append(batch, eventbus.BatchEvent{EventType: topic, Data: i,
			Metadata: eventbus.PublishMetadata{TenantID: fmt.Sprintf("tenant-%d", i%16)}})
		if len(batch) == cap(batch) {
			if _, err := bus.PublishBatch(t.Context(), batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	helper := startHelper(t, "inbox", pool.Config().ConnString(), strings.Join(brokers, ","), topic, group)
	eventbustest.Eventually(t, "the consumer process to handle some events", func() error {
		if n := count(t, pool, "SELECT count(*) FROM effects"); n < 100 {
			return fmt.Errorf("%d effects", n)
		}
		return nil
	})
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	before := count(t, pool, "SELECT count(*) FROM effects")
	if before == events {
		t.Fatal("the consumer handled everything before it was killed; nothing to test")
	}
	var deliveries, ran atomic.Int64
	eventbustest.MustSubscribe(t, bus, topic, func(ctx context.Context, ev eventbus.RawEvent) error {
		deliveries.Add(1)
		did, err := in.Do(ctx, group, ev.ID, func(tx pgx.Tx) error { return slowEffect(ctx, tx, ev) })
		if did {
			ran.Add(1)
		}
		return err
	}, eventbus.InGroup(group))
	eventbustest.Eventually(t, "every event's effect", func() error {
		if n := count(t, pool, "SELECT count(DISTINCT event_id) FROM effects"); n != events {
			return fmt.Errorf("%d events have their effect", n)
		}
		return nil
	})
	if n := count(t, pool, "SELECT count(*) FROM effects"); n != events {
		t.Fatalf("%d effect rows for %d events: duplicates", n, events)
	}
	t.Logf("consumer killed after %d effects: 0 missing, 0 duplicate effects; the replacement got %d deliveries, skipped %d redelivered",
		before, deliveries.Load(), deliveries.Load()-ran.Load())
}
