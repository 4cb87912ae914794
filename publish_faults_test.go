package eventbus_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/embedded"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/topic"
)

// The tests of this file drive the publish path through the orders that
// faults and concurrent callers allow (issue 28). Each holds or fails
// broker requests with the embedded broker's control functions, so each
// runs on an embedded broker of its own, whatever the suite's brokers.

// faultBroker starts an embedded broker of its own for a fault test: it
// holds broker requests with the embedded broker's control functions, so
// it runs there even when EVENTBUS_TEST_BROKERS names a real cluster.
func faultBroker(t *testing.T) *embedded.Broker {
	t.Helper()
	return eventbustest.StartEmbedded(t, embedded.Config{})
}

// holdFirst holds the first request of kind key that the broker receives
// until release is called (or the test ends); held is closed when that
// request arrived. Later requests of that kind are served as usual.
func holdFirst(t *testing.T, c *kfake.Cluster, key kmsg.Key) (held <-chan struct{}, release func()) {
	t.Helper()
	heldC, releaseC := make(chan struct{}), make(chan struct{})
	release = sync.OnceFunc(func() { close(releaseC) })
	var first atomic.Bool
	c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
		if first.CompareAndSwap(false, true) {
			close(heldC)
			c.SleepControl(func() { <-releaseC })
		}
		c.DropControl()
		return nil, nil, false
	})
	t.Cleanup(release)
	return heldC, release
}

// incompressible returns n bytes of text that no codec shrinks much.
func incompressible(n int) string {
	b := make([]byte, n*3/4+3)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// TestNeighboursDoNotMakeValidEventsTooLarge is defect 1: two events
// under the size limit, buffered while a request is in flight, were packed
// into one batch above Kafka's default max.message.bytes (1,048,588) and
// both rejected with MESSAGE_TOO_LARGE. Each must be published. On the
// embedded broker the first request is held, so the two are packed on
// every run; on a real cluster (EVENTBUS_TEST_BROKERS) they are sent
// right behind it, which packs them whenever it is still in flight.
func TestNeighboursDoNotMakeValidEventsTooLarge(t *testing.T) {
	t.Parallel()
	var brokers []string
	var cluster *kfake.Cluster
	if brokers = eventbustest.RealBrokers(); brokers == nil {
		b := eventbustest.StartEmbedded(t, embedded.Config{})
		brokers, cluster = b.Addrs(), b.Cluster()
	}
	bus := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	topic := eventbustest.UniqueTopic(t, "core.document.uploaded")
	meta := eventbus.PublishMetadata{TenantID: "acme"} // one key: one partition
	if err := bus.Client().Topics().Ensure(ctxT(t), topic); err != nil {
		t.Fatal(err)
	}
	// Until the producer's first request is answered, franz-go keeps one
	// request in flight per broker, so the events published meanwhile
	// wait in one buffer.
	var held <-chan struct{}
	release := func() {}
	if cluster != nil {
		held, release = holdFirst(t, cluster, kmsg.Produce)
	}
	errs := make(chan error, 3)
	done := func(_ string, err error) { errs <- err }
	if err := bus.PublishAsync(ctxT(t), topic, "small", meta, done); err != nil {
		t.Fatal(err)
	}
	if cluster != nil {
		<-held
	}
	for range 2 {
		if err := bus.PublishAsync(ctxT(t), topic, incompressible(530_000), meta, done); err != nil {
			t.Fatalf("a 530 KB event was refused before sending: %v", err)
		}
	}
	release()
	for range 3 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("an event under the limit was not published: %v", err)
			}
		case <-ctxT(t).Done():
			t.Fatal("no outcome")
		}
	}
}

// TestBrokerSizeRejectionIsTheCallers is defect 2: a topic whose
// max.message.bytes is small rejects events; each rejection must wrap
// ErrEventTooLarge and must not count toward the breaker, so other topics
// stay available.
func TestBrokerSizeRejectionIsTheCallers(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{Breaker: breaker.Config{FailureThreshold: 3}})
	small := eventbustest.UniqueTopic(t, "core.thumbnail.generated")
	healthy := eventbustest.UniqueTopic(t, "core.order.placed")
	if err := bus.Client().Topics().Ensure(ctxT(t), small, topic.WithConfig("max.message.bytes", "2048")); err != nil {
		t.Fatal(err)
	}
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	for i := range 5 {
		_, err := bus.Publish(ctxT(t), small, incompressible(8000), meta)
		if !errors.Is(err, eventbus.ErrEventTooLarge) {
			t.Fatalf("publish %d to a topic with max.message.bytes 2048: %v; want ErrEventTooLarge", i, err)
		}
	}
	res, err := bus.PublishBatch(ctxT(t), []eventbus.BatchEvent{{EventType: small, Data: incompressible(8000), Metadata: meta}})
	if !errors.Is(err, eventbus.ErrEventTooLarge) || !errors.Is(res[0].Err, eventbus.ErrEventTooLarge) {
		t.Fatalf("batch to a topic with max.message.bytes 2048: %v; want ErrEventTooLarge", err)
	}
	if _, err := bus.Publish(ctxT(t), healthy, "fine", meta); err != nil {
		t.Fatalf("publish to another topic after size rejections: %v", err)
	}
	if s := bus.BreakerState(); s != breaker.Closed {
		t.Fatalf("breaker %s after size rejections, want closed", s)
	}
}

// TestCallersDeadlineSparesTheBreaker is defect 3: publishes whose
// caller's own deadline expired (before or while waiting for the broker)
// fail with context.DeadlineExceeded and do not count toward the breaker.
func TestCallersDeadlineSparesTheBreaker(t *testing.T) {
	t.Parallel()
	broker := faultBroker(t)
	bus := eventbustest.NewBus(t, eventbus.Config{Breaker: breaker.Config{FailureThreshold: 2}}, broker.Addrs()...)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	fresh := eventbustest.UniqueTopic(t, "core.order.shipped")
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	eventbustest.MustPublish(t, bus, topic, 0, meta)

	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for i, tp := range []string{topic, topic, fresh, fresh} {
		_, err := bus.Publish(expired, tp, i, meta)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, eventbus.ErrBrokerUnavailable) {
			t.Fatalf("publish %d under an expired deadline: %v; want context.DeadlineExceeded", i, err)
		}
	}
	// The deadline ends while the broker holds the request.
	_, release := holdFirst(t, broker.Cluster(), kmsg.Produce)
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if _, err := bus.Publish(short, topic, "held", meta); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, eventbus.ErrBrokerUnavailable) {
		t.Fatalf("publish whose deadline ended while the broker held it: %v; want context.DeadlineExceeded", err)
	}
	release()
	if s := bus.BreakerState(); s != breaker.Closed {
		t.Fatalf("breaker %s after publishes under expired deadlines, want closed", s)
	}
	if _, err := bus.Publish(ctxT(t), topic, "after", meta); err != nil {
		t.Fatalf("publish after the callers' deadlines: %v", err)
	}
}

// waitersIn counts the goroutines parked in a select directly inside a
// function whose name contains fn (the runtime's own frames are not
// shown in the stacks).
func waitersIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		// "goroutine 7 [select]:" then the function that selects.
		header, rest, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[select") {
			first, _, _ := strings.Cut(rest, "\n")
			if strings.Contains(first, fn) {
				count++
			}
		}
	}
	return count
}

// TestFirstPublishesDoNotShareCancellation is defect 4: two callers
// publish the first events of a topic; the one whose request creates it
// is cancelled meanwhile. The other, whose context is live, must publish.
func TestFirstPublishesDoNotShareCancellation(t *testing.T) {
	t.Parallel()
	broker := faultBroker(t)
	bus := eventbustest.NewBus(t, eventbus.Config{}, broker.Addrs()...)
	topic := eventbustest.UniqueTopic(t, "core.invoice.issued")
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	held, release := holdFirst(t, broker.Cluster(), kmsg.CreateTopics)

	first, cancelFirst := context.WithCancel(ctxT(t))
	firstErr := make(chan error, 1)
	go func() {
		_, err := bus.Publish(first, topic, "first", meta)
		firstErr <- err
	}()
	<-held
	const waitFn = "topicadmin.(*Admin)."
	before := waitersIn(waitFn)
	secondErr := make(chan error, 1)
	go func() {
		_, err := bus.Publish(ctxT(t), topic, "second", meta)
		secondErr <- err
	}()
	eventbustest.Eventually(t, "the second publish to wait for the topic", func() error {
		if n := waitersIn(waitFn); n <= before {
			return fmt.Errorf("%d goroutines wait for the topic, %d before the second publish", n, before)
		}
		return nil
	})
	cancelFirst()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled first publish: %v; want context.Canceled", err)
	}
	release()
	if err := <-secondErr; err != nil {
		t.Fatalf("the second publish, whose context is live, failed with the first caller's cancellation: %v", err)
	}
}

// TestFirstPublishHonoursDeliveryTimeout is defect 5: the first publish to
// a topic, whose creation the brokers do not answer, fails by
// Config.DeliveryTimeout with ErrBrokerUnavailable, like a send does.
func TestFirstPublishHonoursDeliveryTimeout(t *testing.T) {
	t.Parallel()
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	t.Run("creation held", func(t *testing.T) {
		t.Parallel()
		broker := faultBroker(t)
		bus := eventbustest.NewBus(t, eventbus.Config{DeliveryTimeout: time.Second}, broker.Addrs()...)
		holdFirst(t, broker.Cluster(), kmsg.CreateTopics)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := bus.Publish(ctx, eventbustest.UniqueTopic(t, "core.invoice.issued"), 1, meta)
		if !errors.Is(err, eventbus.ErrBrokerUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("first publish while the brokers do not create the topic: %v; want ErrBrokerUnavailable after the 1 s delivery timeout", err)
		}
	})
	t.Run("broker down", func(t *testing.T) {
		t.Parallel()
		broker := faultBroker(t)
		bus := eventbustest.NewBus(t, eventbus.Config{DeliveryTimeout: time.Second}, broker.Addrs()...)
		broker.Close()
		_, err := bus.Publish(ctxT(t), eventbustest.UniqueTopic(t, "core.invoice.issued"), 1, meta)
		if !errors.Is(err, eventbus.ErrBrokerUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("first publish with the broker down: %v; want ErrBrokerUnavailable", err)
		}
	})
}

// TestShutdownHonoursCtxWithPublishInFlight is defect 6: Shutdown returns
// by its context's deadline while a publish waits for the broker, and that
// publish fails with ErrShuttingDown saying it was not acknowledged.
func TestShutdownHonoursCtxWithPublishInFlight(t *testing.T) {
	t.Parallel()
	broker := faultBroker(t)
	bus := eventbustest.NewBus(t, eventbus.Config{DeliveryTimeout: 6 * time.Second}, broker.Addrs()...)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	eventbustest.MustPublish(t, bus, topic, 0, meta)
	held, _ := holdFirst(t, broker.Cluster(), kmsg.Produce)
	pubErr := make(chan error, 1)
	go func() {
		_, err := bus.Publish(ctxT(t), topic, "in flight", meta)
		pubErr <- err
	}()
	<-held
	asyncErr := make(chan error, 1)
	if err := bus.PublishAsync(ctxT(t), topic, "accepted before Shutdown", meta, func(_ string, err error) { asyncErr <- err }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = bus.Shutdown(ctx)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Shutdown with a 300 ms context took %s: it waited for the publish in flight (delivery timeout 6 s)", took)
	}
	err := <-pubErr
	if !errors.Is(err, eventbus.ErrShuttingDown) || !strings.Contains(err.Error(), "acknowledged") {
		t.Fatalf("the publish in flight when Shutdown closed the producer: %v; want ErrShuttingDown saying it was not acknowledged", err)
	}
	err = <-asyncErr
	if !errors.Is(err, eventbus.ErrShuttingDown) || !strings.Contains(err.Error(), "acknowledged") {
		t.Fatalf("the PublishAsync event accepted before Shutdown: %v; want ErrShuttingDown saying it was not acknowledged", err)
	}
}

// TestHandlerPublishesWhileShutdownDrains is defect 7: a handler that is
// running when Shutdown begins publishes its follow-up event, while
// publishes from outside are refused with ErrShuttingDown.
func TestHandlerPublishesWhileShutdownDrains(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	orders := eventbustest.UniqueTopic(t, "core.order.placed")
	invoices := eventbustest.UniqueTopic(t, "core.invoice.issued")
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	// Both topics exist before the handler runs.
	eventbustest.MustPublish(t, bus, invoices, "warm-up", meta)
	running, proceed := make(chan struct{}), make(chan struct{})
	followUp := make(chan error, 1)
	var once sync.Once
	eventbustest.MustSubscribe(t, bus, orders, func(ctx context.Context, ev eventbus.RawEvent) error {
		once.Do(func() { close(running) })
		<-proceed
		_, err := bus.Publish(ctx, invoices, "for "+ev.ID, eventbus.PublishMetadata{TenantID: ev.TenantID})
		followUp <- err
		return err
	}, eventbus.InGroup(eventbustest.UniqueID("billing")))
	eventbustest.MustPublish(t, bus, orders, "order", meta)
	<-running

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), eventbustest.WaitTimeout)
		defer cancel()
		shutdown <- bus.Shutdown(ctx)
	}()
	eventbustest.Eventually(t, "outside publishes to be refused", func() error {
		// No tenant: refused with ErrTenantRequired until Shutdown began.
		_, err := bus.Publish(ctxT(t), invoices, "outside", eventbus.PublishMetadata{})
		if !errors.Is(err, eventbus.ErrShuttingDown) {
			return fmt.Errorf("outside publish: %v", err)
		}
		return nil
	})
	close(proceed)
	if err := <-followUp; err != nil {
		t.Fatalf("the running handler's follow-up publish during Shutdown: %v", err)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestOneCallersDeadlineDoesNotFailAnother: a publish whose caller's
// deadline ends while the broker holds its request must not fail another
// caller's event of the same partition (franz-go fails the records behind
// a cancelled in-flight record with that record's context error), nor
// count toward the breaker.
func TestOneCallersDeadlineDoesNotFailAnother(t *testing.T) {
	t.Parallel()
	broker := faultBroker(t)
	bus := eventbustest.NewBus(t, eventbus.Config{}, broker.Addrs()...)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	meta := eventbus.PublishMetadata{TenantID: "acme"} // one key: one partition
	eventbustest.MustPublish(t, bus, topic, 0, meta)

	held, release := holdFirst(t, broker.Cluster(), kmsg.Produce)
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	shortErr := make(chan error, 1)
	go func() {
		_, err := bus.Publish(short, topic, "short", meta)
		shortErr <- err
	}()
	<-held
	otherErr := make(chan error, 1)
	go func() {
		_, err := bus.Publish(ctxT(t), topic, "other", meta)
		otherErr <- err
	}()
	if err := <-shortErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the publish whose deadline ended: %v; want context.DeadlineExceeded", err)
	}
	release()
	if err := <-otherErr; err != nil {
		t.Fatalf("another caller's publish of the same partition failed: %v", err)
	}
	if s := bus.BreakerState(); s != breaker.Closed {
		t.Fatalf("breaker %s, want closed", s)
	}
}

// TestSizeLimitCountsWhatTheBrokerCounts checks that Config.MaxEventBytes
// counts an event as a broker counts it against max.message.bytes (record
// framing and the traceparent header included): with both set to the same
// value, every event the bus sends is accepted, and the bus refuses the
// others before sending.
func TestSizeLimitCountsWhatTheBrokerCounts(t *testing.T) {
	t.Parallel()
	const limit = 2048
	bus := eventbustest.NewBus(t, eventbus.Config{MaxEventBytes: limit, Compression: eventbus.CompressionNone, TracerProvider: &spanRecorder{}})
	name := eventbustest.UniqueTopic(t, "core.note.added")
	if err := bus.Client().Topics().Ensure(ctxT(t), name, topic.WithConfig("max.message.bytes", fmt.Sprint(limit))); err != nil {
		t.Fatal(err)
	}
	accepted, refused := 0, 0
	for n := 1000; n <= 2100; n += 3 {
		_, err := bus.Publish(ctxT(t), name, strings.Repeat("a", n), eventbus.PublishMetadata{TenantID: "acme"}, eventbus.WithHeader("x-note", "n"))
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, eventbus.ErrEventTooLarge) && !strings.Contains(err.Error(), "broker refused"):
			refused++
		default:
			t.Fatalf("a %d-byte payload under a %d-byte limit on both sides: %v; want it sent or refused before sending", n, limit, err)
		}
	}
	if accepted == 0 || refused == 0 {
		t.Fatalf("%d accepted, %d refused: the sizes tried do not straddle the limit", accepted, refused)
	}
}

// TestDeletedTopicIsCreatedAgain checks that a topic deleted while in use
// is not remembered as created for ever: a publish that finds it unknown
// makes the next one create it again and publish to it, and neither
// counts toward the breaker.
func TestDeletedTopicIsCreatedAgain(t *testing.T) {
	t.Parallel()
	broker := faultBroker(t)
	bus := eventbustest.NewBus(t, eventbus.Config{DeliveryTimeout: 25 * time.Second, Breaker: breaker.Config{FailureThreshold: 1}}, broker.Addrs()...)
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	meta := eventbus.PublishMetadata{TenantID: "acme"}
	eventbustest.MustPublish(t, bus, topic, 0, meta)
	adm, err := bus.Client().Admin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteTopic(ctxT(t), topic); err != nil {
		t.Fatal(err)
	}
	// franz-go gives up on an unknown topic after its own retries (about
	// 20 s), within the delivery timeout.
	_, first := bus.Publish(ctxT(t), topic, 1, meta)
	if first == nil {
		t.Fatal("a publish to the deleted topic succeeded before the bus created it again")
	}
	if _, err := bus.Publish(ctxT(t), topic, 2, meta); err != nil {
		t.Fatalf("the publish after one found the topic deleted (%v): %v", first, err)
	}
	if exists, err := bus.Client().Topics().Exists(ctxT(t), topic); err != nil || !exists {
		t.Fatalf("the deleted topic was not created again (exists %t, %v)", exists, err)
	}
	if s := bus.BreakerState(); s != breaker.Closed {
		t.Fatalf("breaker %s after publishes to a deleted topic (%v), want closed", s, first)
	}
}

// TestBatchRefusesOneKeyAcrossCodecs checks that PublishBatch refuses to
// send events of one topic and key with different compressions, whose
// order the producers (one per codec) would not keep, and sends events of
// different keys with different compressions.
func TestBatchRefusesOneKeyAcrossCodecs(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.order.placed")
	acme, globex := eventbus.PublishMetadata{TenantID: "acme"}, eventbus.PublishMetadata{TenantID: "globex"}
	none := []eventbus.PublishOption{eventbus.WithCompression(eventbus.CompressionNone)}
	_, err := bus.PublishBatch(ctxT(t), []eventbus.BatchEvent{
		{EventType: topic, Data: 1, Metadata: acme},
		{EventType: topic, Data: 2, Metadata: acme, Options: none},
	})
	if !errors.Is(err, eventbus.ErrInvalidEvent) {
		t.Fatalf("one key, two codecs: %v; want ErrInvalidEvent", err)
	}
	if _, err := bus.PublishBatch(ctxT(t), []eventbus.BatchEvent{
		{EventType: topic, Data: 1, Metadata: acme},
		{EventType: topic, Data: 2, Metadata: globex, Options: none},
	}); err != nil {
		t.Fatalf("two keys, two codecs: %v", err)
	}
}
