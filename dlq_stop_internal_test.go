package eventbus

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/plexica/eventbus/embedded"
)

// TestDLQStopHoldsNoLockWhileWaiting: stopping the dead letter queue waits
// for the retry scheduler's loop, and that loop may need the queue's mutex
// (its first write to a new dlq.* topic calls noticeTopic). The stop must
// not hold the mutex while it waits, or neither would ever move on: here
// the scheduler's clock calls noticeTopic once the stop has begun, and the
// stop must return because the loop finished, not because its context
// expired.
func TestDLQStopHoldsNoLockWhileWaiting(t *testing.T) {
	t.Parallel()
	bus, ctx := internalBus(t, Config{DLQ: DLQConfig{RetryBackoff: 10 * time.Millisecond, SchedulerGroup: "stop-test-" + newUUID()}})
	q := bus.DLQ()
	// The scheduler ticks only for partitions it owns: give it one, with an
	// entry due at once.
	if _, err := q.RouteToDLQ(ctx, "core.user.created", RawEvent{ID: "e-1", Type: "core.user.created", TenantID: "acme", Timestamp: time.Now(), Data: []byte(`{}`)}, "mailer", context.Canceled); err != nil {
		t.Fatal(err)
	}
	stopping := make(chan struct{})
	var once sync.Once
	inTick := make(chan struct{})
	hook := func() time.Time {
		once.Do(func() {
			close(inTick)
			<-stopping
			q.noticeTopic() // what the loop's first write to a new topic does
		})
		return time.Now()
	}
	q.mu.Lock()
	q.now = hook // from here on only the scheduler reads the clock
	q.mu.Unlock()
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inTick:
	case <-ctx.Done():
		t.Fatal("the scheduler never ticked")
	}
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer stopCancel()
	go func() {
		// Let the stop take what it takes before the hook needs the mutex.
		q.mu.Lock()
		for !q.stopped {
			q.mu.Unlock()
			time.Sleep(time.Millisecond)
			q.mu.Lock()
		}
		q.mu.Unlock()
		close(stopping)
	}()
	q.stop(stopCtx)
	if stopCtx.Err() != nil {
		t.Fatal("the stop returned only when its context expired: it held the mutex the scheduler needed")
	}
	select {
	case <-q.sched.done:
	default:
		t.Fatal("the stop returned before the scheduler's loop finished")
	}
	_ = bus.Shutdown(ctx)
}

// internalBus starts an embedded broker and a bus on it for an internal
// test (package eventbustest imports this package, so it cannot serve
// here); both stop with the test. ctx ends a minute after the start.
func internalBus(t *testing.T, cfg Config) (*Bus, context.Context) {
	t.Helper()
	broker, err := embedded.Start(embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	client, err := NewClient(ClientConfig{Brokers: broker.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	if err := client.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	bus, err := NewBus(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Shutdown(context.Background()) })
	return bus, ctx
}
