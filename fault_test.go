package eventbus_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/topic"
)

// The crash helper runs in a child process (this test binary re-executed):
// it consumes the topic with handlers that take a random few milliseconds
// (so later events of other keys finish before earlier ones) and prints
// each handled event ID; the test kills it with SIGKILL mid-stream. Its
// environment variable holds "brokers topic group [instanceID]".
const crashHelperEnv = "EVENTBUS_CRASH_HELPER"

// crashHelperDLQEnv, set to any value besides crashHelperEnv, makes the
// crash helper run the bus's dead letter queue instead of a subscription
// (runCrashHelperDLQ).
const crashHelperDLQEnv = "EVENTBUS_CRASH_HELPER_DLQ"

// crashStaticSessionTimeout is the crash helper's session timeout as a
// static member: a restart under the same instance ID must not wait it out.
const crashStaticSessionTimeout = time.Minute

// stuckTenant's events never finish in the crash helper.
const stuckTenant = "stuck"

func TestMain(m *testing.M) {
	if os.Getenv(crashHelperEnv) != "" {
		if os.Getenv(crashHelperDLQEnv) != "" {
			runCrashHelperDLQ()
		} else {
			runCrashHelper()
		}
		return
	}
	os.Exit(m.Run())
}

// crashHelperBus connects the crash helper's bus (args as
// crashHelperEnv holds them) with cfg, its consumer configuration set
// from them: a static member with crashStaticSessionTimeout when they
// name an instance ID, else a dynamic one with a short session.
func crashHelperBus(args []string, cfg eventbus.Config) *eventbus.Bus {
	cfg.Consumer = eventbus.ConsumerConfig{
		// Short, so the group notices the crash quickly.
		SessionTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
	}
	if len(args) > 3 {
		cfg.Consumer = eventbus.ConsumerConfig{InstanceID: args[3], SessionTimeout: crashStaticSessionTimeout}
	}
	client, err := eventbus.NewClient(eventbus.ClientConfig{Brokers: strings.Split(args[0], ",")})
	if err == nil {
		err = client.Connect(context.Background())
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	bus, err := eventbus.NewBus(client, cfg)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	return bus
}

func runCrashHelper() {
	args := strings.Fields(os.Getenv(crashHelperEnv))
	topic, group := args[1], args[2]
	ctx := context.Background()
	bus := crashHelperBus(args, eventbus.Config{})
	var mu sync.Mutex
	_, err := eventbus.Subscribe(ctx, bus, eventbus.Name[json.RawMessage](topic), func(_ context.Context, ev eventbus.RawEvent) error {
		if ev.TenantID == stuckTenant {
			select {} // never returns: everything after it stays above the commit point
		}
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) // the handler's work
		mu.Lock()
		defer mu.Unlock()
		fmt.Println("handled", ev.ID)
		return nil
	}, eventbus.InGroup(group), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("subscribed")
	select {}
}

// runCrashHelperDLQ runs the bus's dead letter queue (DLQ().Start) with
// scheduler group "<group>.scheduler", then records a failure of group on
// topic (RouteToDLQ, which in a process that runs the queue returns once
// the entry's owner applied it) and prints "applied <entry ID>": this
// process then owns the entry's dlq.* partition. It waits for that up to
// twice crashStaticSessionTimeout, longer than any session of the group.
func runCrashHelperDLQ() {
	args := strings.Fields(os.Getenv(crashHelperEnv))
	topic, group := args[1], args[2]
	bus := crashHelperBus(args, eventbus.Config{DLQ: deadletter.Config{SchedulerGroup: group + ".scheduler"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*crashStaticSessionTimeout)
	defer cancel()
	err := bus.DLQ().Start(ctx)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("started")
	ev := eventbus.RawEvent{ID: eventbustest.UniqueID("e"), Type: topic, TenantID: "acme", Timestamp: time.Now(), Data: []byte(`{}`)}
	id, err := bus.DLQ().RouteToDLQ(ctx, topic, ev, group, errors.New("ledger down"))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("applied", id)
	select {}
}

// startCrashHelper starts the crash helper and returns it with its output.
func startCrashHelper(t *testing.T, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	return startCrashHelperEnv(t, nil, args...)
}

// startCrashHelperEnv is startCrashHelper with env added to the helper's
// environment (crashHelperDLQEnv for its DLQ mode).
func startCrashHelperEnv(t *testing.T, env []string, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+strings.Join(args, " "))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

func TestConsumerCrashLosesNothing(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	topic := eventbustest.UniqueTopic(t, "core.invoice.issued")
	group := eventbustest.UniqueID("billing")
	const total = 300
	var batch []eventbus.BatchEvent
	var ids []string
	for i := range total {
		batch = append(batch, eventbus.BatchEvent{EventType: topic, Data: i, Metadata: eventbus.PublishMetadata{TenantID: fmt.Sprintf("tenant-%d", i%7)}})
		if len(batch) == eventbus.MaxBatchSize {
			res, err := bus.PublishBatch(ctxT(t), batch)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				ids = append(ids, r.EventID)
			}
			batch = nil
		}
	}

	// Kill the consumer (SIGKILL: no shutdown, no last commit) once it
	// handled half the events; handlers of other keys are running then.
	cmd, sc := startCrashHelper(t, strings.Join(brokers, ","), topic, group)
	seen := map[string]int{}
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "handled "); ok {
			seen[id]++
			if len(seen) == total/2 {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
			}
		} else if strings.HasPrefix(sc.Text(), "error") {
			t.Fatal(sc.Text())
		}
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Success() {
		t.Fatalf("crash helper ended with %v, want it killed", err)
	}
	before := len(seen)

	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.InGroup(group), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
	// Wait until every event not handled before the crash has arrived.
	// count merges what the crashed consumer and the new one handled; it
	// also returns how many events the new one had in that snapshot.
	count := func() (missing, dups, handled int) {
		all := maps.Clone(seen)
		events := rec.Events()
		for _, ev := range events {
			all[ev.ID]++
		}
		for _, id := range ids {
			if all[id] == 0 {
				missing++
			}
		}
		for _, n := range all {
			dups += max(n-1, 0)
		}
		return missing, dups, len(events)
	}
	missing, dups, handled := count()
	for missing > 0 {
		rec.WaitFor(t, handled+1) // fails the test if nothing more arrives
		missing, dups, handled = count()
	}
	t.Logf("crash after %d handled: 0 lost, %d redelivered", before, dups)
}

func TestEmbeddedBrokerRestartKeepsEventsAndOffsets(t *testing.T) {
	dir := t.TempDir()
	broker := eventbustest.StartEmbedded(t, embedded.Config{DataDir: dir})
	addr := broker.Addrs()[0]
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("g")

	client := eventbustest.NewClient(t, addr)
	bus := eventbustest.NewBusOn(t, client, eventbus.Config{})
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, topic, rec.Handle, eventbus.InGroup(group))
	var ids []string
	for i := range 10 {
		ids = append(ids, eventbustest.MustPublish(t, bus, topic, i, eventbus.PublishMetadata{TenantID: "acme"}))
	}
	assertIDs(t, "before restart", rec.WaitFor(t, 10), ids...)
	if err := bus.Shutdown(ctxT(t)); err != nil { // commits the 10 handled events
		t.Fatal(err)
	}
	// Ten more, acknowledged but not consumed before the broker stops.
	publisher := eventbustest.NewBusOn(t, client, eventbus.Config{})
	for i := range 10 {
		ids = append(ids, eventbustest.MustPublish(t, publisher, topic, i, eventbus.PublishMetadata{TenantID: "acme"}))
	}
	if err := publisher.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	client.Close()
	broker.Close()

	eventbustest.StartEmbedded(t, embedded.Config{Addr: addr, DataDir: dir})
	after := eventbustest.NewBus(t, eventbus.Config{}, addr)
	rec2 := eventbustest.NewRecorder()
	// FromBeginning would replay everything if the committed offsets were
	// lost; the group must resume where it stopped.
	eventbustest.MustSubscribe(t, after, topic, rec2.Handle, eventbus.InGroup(group), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))
	assertIDs(t, "after restart", rec2.WaitFor(t, 10), ids[10:]...)
	last := eventbustest.MustPublish(t, after, topic, "last", eventbus.PublishMetadata{TenantID: "acme"})
	got := rec2.WaitFor(t, 11)
	if len(got) != 11 || got[10].ID != last {
		t.Fatalf("after restart got %d events; offsets were not kept", len(got))
	}
}

func TestCircuitBreakerOpensFailsFastAndCloses(t *testing.T) {
	dir := t.TempDir()
	broker := eventbustest.StartEmbedded(t, embedded.Config{DataDir: dir})
	addr := broker.Addrs()[0]
	var mu sync.Mutex
	var transitions []string
	bus := eventbustest.NewBus(t, eventbus.Config{
		DeliveryTimeout: time.Second,
		Breaker: breaker.Config{
			OpenTimeout: 200 * time.Millisecond,
			OnStateChange: func(from, to breaker.State) {
				mu.Lock()
				transitions = append(transitions, to.String())
				mu.Unlock()
			},
		},
	}, addr)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	eventbustest.MustPublish(t, bus, topic, 0, meta)
	broker.Close()

	for i := range 5 {
		_, err := bus.Publish(ctxT(t), topic, i, meta)
		if err == nil || errors.Is(err, eventbus.ErrCircuitOpen) {
			t.Fatalf("publish %d with the broker down: %v", i, err)
		}
	}
	if _, err := bus.Publish(ctxT(t), topic, 5, meta); !errors.Is(err, eventbus.ErrCircuitOpen) {
		t.Fatalf("6th publish: %v, want ErrCircuitOpen", err)
	}
	// Validation errors never count and still report themselves.
	if _, err := bus.Publish(ctxT(t), topic, 6, eventbus.PublishMetadata{}); !errors.Is(err, eventbus.ErrTenantRequired) {
		t.Fatalf("invalid publish while open: %v", err)
	}

	t.Logf("open at %s", time.Now().Format("15:04:05.000"))
	eventbustest.StartEmbedded(t, embedded.Config{Addr: addr, DataDir: dir})
	// The breaker half-opens after OpenTimeout; publish until it lets calls through.
	successes := 0
	eventbustest.Eventually(t, "the breaker to close (2 publishes through)", func() error {
		_, err := bus.Publish(ctxT(t), topic, "probe", meta)
		if err != nil {
			return fmt.Errorf("breaker never closed: %w", err)
		}
		if successes++; successes < 2 {
			return fmt.Errorf("%d publish through so far", successes)
		}
		return nil
	})
	t.Logf("closed at %s", time.Now().Format("15:04:05.000"))
	if bus.BreakerState() != breaker.Closed {
		t.Fatalf("breaker state %v after 2 successes", bus.BreakerState())
	}
	mu.Lock()
	defer mu.Unlock()
	got := strings.Join(transitions, ",")
	if !strings.HasPrefix(got, "open,half-open") || !strings.HasSuffix(got, "half-open,closed") {
		t.Fatalf("transitions %s, want open, half-open, ..., closed", got)
	}
}

// TestCrashSkipsWhatFinishedAboveAStuckEvent checks that a commit carries
// the offsets finished above its commit point: with one event stuck (its
// handler never returns) and everything after it on the partition
// finished, a consumer killed with SIGKILL and restarted handles the stuck
// event again and none of the others.
func TestCrashSkipsWhatFinishedAboveAStuckEvent(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	name := eventbustest.UniqueTopic(t, "core.invoice.issued")
	group := eventbustest.UniqueID("billing")
	if err := bus.Client().Topics().Ensure(ctxT(t), name, topic.WithPartitions(1)); err != nil {
		t.Fatal(err)
	}
	const others = eventbus.MaxBatchSize
	batch := []eventbus.BatchEvent{{EventType: name, Data: "stuck", Metadata: eventbus.PublishMetadata{TenantID: stuckTenant}}}
	for i := range others - 1 {
		batch = append(batch, eventbus.BatchEvent{EventType: name, Data: i, Metadata: eventbus.PublishMetadata{TenantID: fmt.Sprintf("tenant-%d", i%20)}})
	}
	res, err := bus.PublishBatch(ctxT(t), batch)
	if err != nil {
		t.Fatal(err)
	}
	stuckID := res[0].EventID

	cmd, sc := startCrashHelper(t, strings.Join(brokers, ","), name, group)
	handled := 0
	for handled < others-1 && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "handled ") {
			handled++
		} else if strings.HasPrefix(sc.Text(), "error") {
			t.Fatal(sc.Text())
		}
	}
	// Wait (bounded) until the group's commit lists every finished offset
	// above the stuck one, then crash.
	adm, err := bus.Client().Admin()
	if err != nil {
		t.Fatal(err)
	}
	eventbustest.Eventually(t, "the commit of the finished offsets", func() error {
		offsets, err := adm.FetchOffsets(ctxT(t), group)
		if err != nil {
			t.Fatal(err)
		}
		// "f1:<gap>.<length>" in base 36: offsets 1 to others-1.
		want := "f1:1." + strconv.FormatInt(others-2, 36)
		o, ok := offsets.Lookup(name, 0)
		if ok && o.At == 0 && o.Metadata == want {
			return nil
		}
		return fmt.Errorf("the commit is at %d with metadata %q; want 0 with the finished offsets 1..%d", o.At, o.Metadata, others-1)
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, name, rec.Handle, eventbus.InGroup(group))
	rec.WaitForID(t, stuckID)
	// A later event on the partition shows the restarted member has gone
	// past everything the crashed one finished.
	last := eventbustest.MustPublish(t, bus, name, "after", eventbus.PublishMetadata{TenantID: "tenant-0"})
	rec.WaitForID(t, last)
	if got := rec.Len(); got != 2 {
		t.Fatalf("the restarted consumer handled %d events; want 2 (the stuck one and the new one), none of the %d finished before the crash", got, others-1)
	}
}
