package eventbus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/topic"
)

// Tests of the consumer engine's delivery guarantees (DESIGN.md section 6):
// order per key with concurrency across keys, a stuck key that holds only
// itself, start positions that survive a restart, bounded shutdown, and
// rebalances that lose nothing.

// partitionOf is the partition a record keyed key lands on in a topic of n
// partitions: Kafka's murmur2, as the bus's producer (franz-go's default
// partitioner), Java and KafkaJS pick it.
func partitionOf(key string, n int) int32 {
	return int32(kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&kgo.Record{Key: []byte(key)}, n))
}

// endOffsets returns the end offset of each partition of topic.
func endOffsets(t *testing.T, bus *eventbus.Bus, topic string) map[int32]int64 {
	t.Helper()
	adm, err := bus.Client().Admin()
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for p, o := range ends[topic] {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, p, o.Err)
		}
		out[p] = o.Offset
	}
	return out
}

// waitRecorded waits, at most timeout, until rec holds n events; it
// returns how many it holds then.
func waitRecorded(rec *eventbustest.Recorder, n int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for rec.Len() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // bounded poll
	}
	return rec.Len()
}

// releaseAtCleanup returns a channel that is closed when the test ends. Call
// it after the bus was created, so the release runs before the bus's
// shutdown (cleanups run last in, first out).
func releaseAtCleanup(t *testing.T) <-chan struct{} {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return release
}

// quiet is a config whose logs are discarded: for tests whose handlers fail
// on purpose, over and over.
func quiet(cfg eventbus.Config) eventbus.Config {
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

// TestPerKeyOrderWithConcurrency checks that, within ONE partition, events
// with the same key (the tenant) are handled one at a time in publish order,
// while events with different keys are handled concurrently: concurrency
// goes beyond the partition count.
func TestPerKeyOrderWithConcurrency(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	name := eventbustest.UniqueTopic(t, "core.order.placed")
	if err := bus.Client().Topics().Ensure(ctxT(t), name, topic.WithPartitions(1)); err != nil {
		t.Fatal(err)
	}
	const keys, perKey = 20, 5
	type item struct {
		K string `json:"k"`
		N int    `json:"n"`
	}
	// A backlog, keys interleaved: the engine has work for every key at once.
	var batch []eventbus.BatchEvent
	for n := range perKey {
		for k := range keys {
			key := fmt.Sprintf("tenant-%02d", k)
			batch = append(batch, eventbus.BatchEvent{EventType: name, Data: item{key, n}, Metadata: eventbus.PublishMetadata{TenantID: key}})
		}
	}
	res, err := bus.PublishBatch(ctxT(t), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != keys*perKey {
		t.Fatalf("published %d events, want %d", len(res), keys*perKey)
	}

	var mu sync.Mutex
	next := map[string]int{}     // key -> the n expected next
	inFlight := map[string]int{} // key -> handlers running
	running, maxRunning := 0, 0
	var violations []string
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, name, func(ctx context.Context, ev eventbus.RawEvent) error {
		var it item
		if err := json.Unmarshal(ev.Data, &it); err != nil {
			return err
		}
		mu.Lock()
		if inFlight[it.K] > 0 {
			violations = append(violations, fmt.Sprintf("%s#%d started while another %s handler ran", it.K, it.N, it.K))
		}
		if it.N != next[it.K] {
			violations = append(violations, fmt.Sprintf("%s#%d handled when #%d was due", it.K, it.N, next[it.K]))
		}
		next[it.K] = it.N + 1
		inFlight[it.K]++
		running++
		maxRunning = max(maxRunning, running)
		mu.Unlock()

		time.Sleep(time.Duration(1+rand.IntN(4)) * time.Millisecond) // the handler's work

		mu.Lock()
		inFlight[it.K]--
		running--
		mu.Unlock()
		return rec.Handle(ctx, ev)
	}, eventbus.InGroup(eventbustest.UniqueID("g")), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))

	if got := waitRecorded(rec, keys*perKey, 20*time.Second); got < keys*perKey {
		t.Fatalf("handled %d of %d events in 20 s", got, keys*perKey)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, v := range violations {
		t.Error(v)
	}
	if maxRunning < 2 {
		t.Errorf("at most %d handler ran at a time over %d keys in one partition; different keys must run concurrently", maxRunning, keys)
	}
	t.Logf("max concurrent handlers: %d", maxRunning)
}

// TestBlockedKeyDoesNotStopOthers checks that a handler that never returns
// holds only its own key: the events of 30 other tenants, on every
// partition including the blocked one's, are all handled.
func TestBlockedKeyDoesNotStopOthers(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	release := releaseAtCleanup(t)
	name := eventbustest.UniqueTopic(t, "core.user.created")
	const blocked, others = "blocked", 30
	entered := make(chan struct{}, 1)
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, name, func(ctx context.Context, ev eventbus.RawEvent) error {
		if ev.TenantID == blocked {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release // stuck until the test ends
			return nil
		}
		return rec.Handle(ctx, ev)
	}, eventbus.InGroup(eventbustest.UniqueID("g")))

	eventbustest.MustPublish(t, bus, name, "stuck", eventbus.PublishMetadata{TenantID: blocked})
	select {
	case <-entered:
	case <-time.After(15 * time.Second):
		t.Fatal("the blocking handler was not called within 15 s")
	}
	sameAsBlocked := 0
	for i := range others {
		tenant := fmt.Sprintf("tenant-%02d", i)
		if partitionOf(tenant, topic.DefaultPartitions) == partitionOf(blocked, topic.DefaultPartitions) {
			sameAsBlocked++
		}
		eventbustest.MustPublish(t, bus, name, i, eventbus.PublishMetadata{TenantID: tenant})
	}
	if got := waitRecorded(rec, others, 15*time.Second); got < others {
		t.Fatalf("with one tenant's handler blocked, %d of %d other tenants' events were handled in 15 s (%d share its partition)", got, others, sameAsBlocked)
	}
}

// TestStuckTenantDoesNotStallItsPartitionPastTheCap: with MaxPending 8, a
// tenant whose handler never returns is followed on its partition by 20
// events of another tenant, more than the cap. The finished events behind
// the stuck one do not count toward the cap, so the other tenant gets
// them all (it used to get 7: the partition was paused once 8 were held).
func TestStuckTenantDoesNotStallItsPartitionPastTheCap(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	release := releaseAtCleanup(t)
	name := eventbustest.UniqueTopic(t, "core.user.created")
	const stuck = "stuck"
	other := ""
	for i := 0; other == ""; i++ {
		if c := fmt.Sprintf("tenant-%02d", i); partitionOf(c, topic.DefaultPartitions) == partitionOf(stuck, topic.DefaultPartitions) {
			other = c
		}
	}
	entered := make(chan struct{}, 1)
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, name, func(ctx context.Context, ev eventbus.RawEvent) error {
		if ev.TenantID == stuck {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
			return nil
		}
		return rec.Handle(ctx, ev)
	}, eventbus.InGroup(eventbustest.UniqueID("g")), eventbus.WithDelivery(eventbus.Delivery{MaxPending: 8}))
	eventbustest.MustPublish(t, bus, name, "stuck", eventbus.PublishMetadata{TenantID: stuck})
	select {
	case <-entered:
	case <-time.After(eventbustest.WaitTimeout):
		t.Fatal("the stuck handler was not called")
	}
	for i := range 20 {
		eventbustest.MustPublish(t, bus, name, i, eventbus.PublishMetadata{TenantID: other})
	}
	rec.WaitFor(t, 20)
}

// TestRetryInPlaceHoldsOnlyItsKey checks that RetryInPlace retrying a
// failing event holds only that event's key: other tenants' events, those
// on the failing tenant's partition too, are all handled meanwhile.
func TestRetryInPlaceHoldsOnlyItsKey(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, quiet(fastInPlace()))
	name := eventbustest.UniqueTopic(t, "core.order.placed")
	const failing, others = "failing", 30
	var attempts atomic.Int64
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, name, func(ctx context.Context, ev eventbus.RawEvent) error {
		if ev.TenantID == failing {
			attempts.Add(1)
			return fmt.Errorf("ledger of %s is locked", failing)
		}
		return rec.Handle(ctx, ev)
	}, eventbus.InGroup(eventbustest.UniqueID("ledger")), eventbus.WithDelivery(eventbus.Delivery{OnFailure: eventbus.RetryInPlace}))

	eventbustest.MustPublish(t, bus, name, "never", eventbus.PublishMetadata{TenantID: failing})
	deadline := time.Now().Add(15 * time.Second)
	for attempts.Load() < 2 { // failed and retried at least once
		if time.Now().After(deadline) {
			t.Fatalf("the failing handler ran %d times in 15 s, want it retried", attempts.Load())
		}
		time.Sleep(10 * time.Millisecond) // bounded poll
	}
	failingPart := partitionOf(failing, topic.DefaultPartitions)
	onPart := map[int32]int{}
	for i := range others {
		tenant := fmt.Sprintf("tenant-%02d", i)
		onPart[partitionOf(tenant, topic.DefaultPartitions)]++
		eventbustest.MustPublish(t, bus, name, i, eventbus.PublishMetadata{TenantID: tenant})
	}
	if onPart[failingPart] == 0 {
		t.Fatalf("no other tenant shares partition %d with %s; pick other tenant names", failingPart, failing)
	}
	if got := waitRecorded(rec, others, 15*time.Second); got < others {
		t.Fatalf("while %s's event was retried in place, %d of %d other tenants' events were handled in 15 s (%d on its partition %d, per partition %v)",
			failing, got, others, onPart[failingPart], failingPart, onPart)
	}
}

// TestRestartDeliversEventsPublishedWhileDown checks that a group's start
// positions are durable from its first join, on every partition: events
// published while no member runs are delivered when one returns, also on
// partitions where the group had not handled (committed) anything yet.
func TestRestartDeliversEventsPublishedWhileDown(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	pub := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	name := eventbustest.UniqueTopic(t, "core.invoice.issued")
	group := eventbustest.UniqueID("billing")
	const first = "first"
	firstPart := partitionOf(first, topic.DefaultPartitions)

	before := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, before, name, rec.Handle, eventbus.InGroup(group))
	for i := range 3 {
		eventbustest.MustPublish(t, pub, name, i, eventbus.PublishMetadata{TenantID: first})
	}
	rec.WaitFor(t, 3)
	if err := before.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	// Five tenants over all three partitions, one of them on the partition
	// the group has handled events on.
	var tenants []string
	perPart := map[int32]int{}
	for i := 0; len(tenants) < 5 && i < 1000; i++ {
		tenant := fmt.Sprintf("tenant-%d", i)
		p := partitionOf(tenant, topic.DefaultPartitions)
		if (p == firstPart && perPart[p] == 0) || (p != firstPart && perPart[p] < 2) {
			tenants = append(tenants, tenant)
			perPart[p]++
		}
	}
	if len(tenants) != 5 {
		t.Fatalf("found tenants %v, want five over three partitions", tenants)
	}
	startEnds := endOffsets(t, pub, name)
	var ids []string
	for i, tenant := range tenants {
		ids = append(ids, eventbustest.MustPublish(t, pub, name, i, eventbus.PublishMetadata{TenantID: tenant}))
	}
	for p, end := range endOffsets(t, pub, name) {
		if got := int(end - startEnds[p]); got != perPart[p] {
			t.Fatalf("partition %d got %d of the events, want %d (the partitioner is not murmur2?)", p, got, perPart[p])
		}
	}

	after := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	rec2 := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, after, name, rec2.Handle, eventbus.InGroup(group))
	if got := waitRecorded(rec2, len(ids), 15*time.Second); got < len(ids) {
		var tenantsGot []string
		for _, ev := range rec2.Events() {
			tenantsGot = append(tenantsGot, fmt.Sprintf("%s(p%d)", ev.TenantID, partitionOf(ev.TenantID, topic.DefaultPartitions)))
		}
		t.Fatalf("after the restart %d of %d events published while the group was down arrived in 15 s: %v (the group had handled events on partition %d only; per partition %v)",
			got, len(ids), tenantsGot, firstPart, perPart)
	}
	assertIDs(t, "after restart", rec2.Events(), ids...)
}

// TestShutdownReturnsByDeadline checks that Shutdown(ctx) returns by ctx's
// deadline even when a handler ignores its context and never returns, and
// that it then reports the handlers still running (or nil).
func TestShutdownReturnsByDeadline(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	release := releaseAtCleanup(t)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	entered := make(chan struct{}, 1)
	eventbustest.MustSubscribe(t, bus, topic, func(context.Context, eventbus.RawEvent) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release // ignores its context
		return nil
	}, eventbus.InGroup(eventbustest.UniqueID("g")))
	eventbustest.MustPublish(t, bus, topic, "stuck", eventbus.PublishMetadata{TenantID: "acme"})
	select {
	case <-entered:
	case <-time.After(15 * time.Second):
		t.Fatal("the handler was not called within 15 s")
	}

	returned := make(chan struct{})
	var shutdownErr error
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		shutdownErr = bus.Shutdown(ctx)
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown with a 3 s deadline had not returned after 20 s (a handler ignores its context)")
	}
	if shutdownErr != nil && !strings.Contains(shutdownErr.Error(), "still running") {
		t.Fatalf("Shutdown returned %v; want nil or an error saying handlers are still running", shutdownErr)
	}
	t.Logf("Shutdown returned %v", shutdownErr)
}

// TestRebalanceWhileHandlersRun checks that a group survives a member
// joining and another leaving while handlers run: every event is handled at
// least once, and no event is handled by two members at the same time.
func TestRebalanceWhileHandlersRun(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	pub := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	topic := eventbustest.UniqueTopic(t, "core.order.shipped")
	group := eventbustest.UniqueID("shipping")
	const total, tenants = 300, 20

	var mu sync.Mutex
	inFlight := map[string]string{} // event ID -> member handling it
	handled := map[string]int{}
	var overlaps []string
	handler := func(member string) eventbus.Handler {
		return func(_ context.Context, ev eventbus.RawEvent) error {
			mu.Lock()
			if other, ok := inFlight[ev.ID]; ok {
				overlaps = append(overlaps, fmt.Sprintf("%s started %s while %s ran it", member, ev.ID, other))
			} else {
				inFlight[ev.ID] = member
			}
			mu.Unlock()
			time.Sleep(time.Duration(1+rand.IntN(4)) * time.Millisecond)
			mu.Lock()
			if inFlight[ev.ID] == member {
				delete(inFlight, ev.ID)
			}
			handled[ev.ID]++
			mu.Unlock()
			return nil
		}
	}

	first := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	eventbustest.MustSubscribe(t, first, topic, handler("first"), eventbus.InGroup(group))

	// The stream: an event every 5 ms, its progress reported.
	published := make(chan string, total)
	pubErr := make(chan error, 1)
	go func() {
		defer close(published)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := range total {
			<-tick.C
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			id, err := pub.Publish(ctx, topic, i, eventbus.PublishMetadata{TenantID: fmt.Sprintf("tenant-%02d", i%tenants)})
			cancel()
			if err != nil {
				pubErr <- fmt.Errorf("publish %d: %w", i, err)
				return
			}
			published <- id
		}
	}()
	var ids []string
	awaitPublished := func(n int) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for len(ids) < n {
			select {
			case id, ok := <-published:
				if !ok {
					select {
					case err := <-pubErr:
						t.Fatal(err)
					default:
						t.Fatalf("the stream ended after %d events", len(ids))
					}
				}
				ids = append(ids, id)
			case <-deadline:
				t.Fatalf("%d of %d events published in 20 s", len(ids), n)
			}
		}
	}

	awaitPublished(total / 3)
	second := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	eventbustest.MustSubscribe(t, second, topic, handler("second"), eventbus.InGroup(group))
	awaitPublished(2 * total / 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown of the first member: %v", err)
	}
	awaitPublished(total)

	missing := func() (n int, dups int) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if handled[id] == 0 {
				n++
			}
		}
		for _, c := range handled {
			dups += max(c-1, 0)
		}
		return n, dups
	}
	deadline := time.Now().Add(20 * time.Second)
	lost, dups := missing()
	for lost > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // bounded poll
		lost, dups = missing()
	}
	mu.Lock()
	defer mu.Unlock()
	for _, o := range overlaps {
		t.Error(o)
	}
	if lost > 0 {
		t.Fatalf("%d of %d events never handled (20 s after the last was published)", lost, total)
	}
	t.Logf("%d events: 0 lost, %d handled again after the rebalances", total, dups)
}

// TestPendingStaysBoundedWhileHandlersHang checks that memory stays bounded
// when handlers never return and a producer keeps publishing: once
// Delivery.MaxPending events are held, fetching pauses for the partitions
// that hold them, so what the subscription holds never passes the cap plus
// one poll (ConsumerConfig.MaxPollRecords), however much is published.
func TestPendingStaysBoundedWhileHandlersHang(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := eventbus.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	const maxPending, maxPoll, total = 100, 50, 3000
	bus := eventbustest.NewBus(t, eventbus.Config{Metrics: m, Consumer: eventbus.ConsumerConfig{MaxPollRecords: maxPoll}})
	release := releaseAtCleanup(t)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	var started atomic.Int64
	eventbustest.MustSubscribe(t, bus, topic, func(context.Context, eventbus.RawEvent) error {
		started.Add(1)
		<-release // never returns while the test runs
		return nil
	}, eventbus.InGroup("hung"), eventbus.WithDelivery(eventbus.Delivery{MaxPending: maxPending, MaxConcurrency: 8}))
	gauge := `eventbus_consumer_pending_events{group="hung",topic="` + topic + `"}`
	peak := 0.0
	sample := func() {
		if v := scrape(t, reg)[gauge]; v > peak {
			peak = v
		}
	}
	for i := 0; i < total; i += eventbus.MaxBatchSize {
		batch := make([]eventbus.BatchEvent, 0, eventbus.MaxBatchSize)
		for j := range eventbus.MaxBatchSize {
			batch = append(batch, eventbus.BatchEvent{EventType: topic, Data: i + j,
				Metadata: eventbus.PublishMetadata{TenantID: fmt.Sprintf("tenant-%d", (i+j)%40)}})
		}
		if _, err := bus.PublishBatch(ctxT(t), batch); err != nil {
			t.Fatal(err)
		}
		sample()
	}
	// Wait (bounded) until the cap is reached, then keep sampling while the
	// fetch loop would have had ample time to read the rest.
	eventbustest.Eventually(t, "the subscription to reach its cap", func() error {
		if sample(); peak < maxPending {
			return fmt.Errorf("the subscription held at most %.0f events; want it to reach the cap %d (is the gauge wired?)", peak, maxPending)
		}
		return nil
	})
	for range 50 {
		time.Sleep(20 * time.Millisecond) // bounded sampling
		sample()
	}
	if limit := float64(maxPending + maxPoll); peak > limit {
		t.Fatalf("the subscription held %.0f events of %d published with every handler hung; want at most MaxPending+MaxPollRecords = %.0f", peak, total, limit)
	}
	if n := started.Load(); n != 8 {
		t.Fatalf("%d handlers started; want exactly MaxConcurrency (8)", n)
	}
	t.Logf("%d published, every handler hung: at most %.0f held (cap %d)", total, peak, maxPending)
}

// TestStaticMemberResumesAtOnce checks fast restarts: with
// ConsumerConfig.InstanceID, a process killed with SIGKILL (it never left
// its group) that comes back under the same ID takes its partitions back at
// once. A dynamic member would wait for the dead one's session timeout
// (here a minute, longer than the test's bounded wait).
func TestStaticMemberResumesAtOnce(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	group := eventbustest.UniqueID("mailer")
	instance := eventbustest.UniqueID("pod")
	first := eventbustest.MustPublish(t, bus, topic, 0, eventbus.PublishMetadata{TenantID: "acme"})

	cmd, sc := startCrashHelper(t, strings.Join(brokers, ","), topic, group, instance)
	for sc.Scan() && sc.Text() != "handled "+first {
		if strings.HasPrefix(sc.Text(), "error") {
			t.Fatal(sc.Text())
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	restarted := eventbustest.NewBus(t, eventbus.Config{Consumer: eventbus.ConsumerConfig{InstanceID: instance, SessionTimeout: time.Minute}}, brokers...)
	rec := eventbustest.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := eventbus.Subscribe(ctx, restarted, eventbus.Name[json.RawMessage](topic), rec.Handle, eventbus.InGroup(group)); err != nil {
		t.Fatalf("the restarted static member did not get its partitions back within 20 s (session timeout 1 min): %v", err)
	}
	for i := range 6 {
		rec.WaitForID(t, eventbustest.MustPublish(t, bus, topic, i, eventbus.PublishMetadata{TenantID: fmt.Sprintf("t%d", i)}))
	}
}

// TestBackPressureNeverStallsDelivery publishes steady bursts against a
// tiny Delivery.MaxPending, so that back-pressure pauses and resumes
// partitions all the time while handlers return at once: every event must
// be handled. A pause that landed after the workers had drained (and
// resumed) its partition used to leave that partition paused for ever, and
// the subscription silently stopped consuming.
func TestBackPressureNeverStallsDelivery(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	var handled atomic.Int64
	eventbustest.MustSubscribe(t, bus, topic, func(context.Context, eventbus.RawEvent) error {
		handled.Add(1)
		return nil
	}, eventbus.InGroup("bursts"), eventbus.WithDelivery(eventbus.Delivery{MaxPending: 2, MaxConcurrency: 8}))
	const bursts, burst = 1000, 24
	for i := range bursts {
		batch := make([]eventbus.BatchEvent, 0, burst)
		for j := range burst {
			batch = append(batch, eventbus.BatchEvent{EventType: topic, Data: i*burst + j,
				Metadata: eventbus.PublishMetadata{TenantID: fmt.Sprintf("tenant-%d", j%12)}})
		}
		if _, err := bus.PublishBatch(ctxT(t), batch); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // the bursts' pace
	}
	eventbustest.Eventually(t, "every event of the bursts to be handled", func() error {
		if n := handled.Load(); n < bursts*burst {
			return fmt.Errorf("%d of %d events handled", n, bursts*burst)
		}
		return nil
	})
}
